"""The JSON path dialect of expectations and captures."""

from __future__ import annotations

from typing import Any

import pytest

from synth.checks.jsonpath import PathNotFound, json_type, parse_path, resolve

ORDER: dict[str, Any] = {
    "order": {
        "id": "o-1",
        "items": [{"id": "p-1", "qty": 2}, {"id": "p-2", "qty": 1}],
        "odd-key": True,
        "note": None,
    },
    "count": 2,
}


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("$", []),
        ("", []),
        ("$.order", ["order"]),
        ("$.order.items[0].id", ["order", "items", 0, "id"]),
        ("order.items.0.id", ["order", "items", 0, "id"]),
        ("$.order.items[-1]", ["order", "items", -1]),
        ('$["odd-key"]', ["odd-key"]),
        ("$['with space']", ["with space"]),
        ("$.odd-key", ["odd-key"]),
        ("$.snake_case2", ["snake_case2"]),
        ("  $.order.id  ", ["order", "id"]),
        ("$[1][0]", [1, 0]),
    ],
)
def test_parse_path(path: str, parts: list[str | int]) -> None:
    assert parse_path(path) == parts


@pytest.mark.parametrize(
    ("path", "rest"),
    [("a..b", "..b"), ("a b", " b"), ("a[x]", "[x]"), ("a[", "["), ("$.a.", ".")],
)
def test_parse_path_rejects_invalid_paths(path: str, rest: str) -> None:
    with pytest.raises(ValueError, match="invalid JSON path") as raised:
        parse_path(path)
    assert repr(rest) in str(raised.value)


@pytest.mark.parametrize(("path", "rest"), [("$.items[0]id", "id"), ("$.1a", ".1a")])
def test_parse_path_rejects_segments_run_together(path: str, rest: str) -> None:
    # Without a separator these silently became ["items", 0, "id"] and [1, "a"]: a typo (or
    # a key that starts with a digit) must be an error, not a different path.
    with pytest.raises(ValueError, match="invalid JSON path") as raised:
        parse_path(path)
    assert repr(rest) in str(raised.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("$", ORDER),
        ("$.count", 2),
        ("$.order.id", "o-1"),
        ("$.order.items[1].id", "p-2"),
        ("order.items.0.qty", 2),
        ("$.order.items[-1].id", "p-2"),
        ("$.order.items[-2].id", "p-1"),
        ('$.order["odd-key"]', True),
        ("$.order.note", None),
    ],
)
def test_resolve(path: str, value: Any) -> None:
    assert resolve(ORDER, path) == value


def test_resolve_top_level_array() -> None:
    assert resolve([10, 20, 30], "$[2]") == 30


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("$.order.missing", "$.order.missing does not exist"),
        ("$.order.items[5]", "$.order.items[5] does not exist (array has 2 items)"),
        ("$.order.items[-3]", "$.order.items[-3] does not exist (array has 2 items)"),
        ("$.order.id[0]", "$.order.id[0] does not exist (not an array)"),
        ("$.order.items.first", "$.order.items.first does not exist"),
        ("$.order.items[0].id.more", "$.order.items[0].id.more does not exist"),
        ("$.order.note.x", "$.order.note.x does not exist"),
    ],
)
def test_resolve_missing_names_where_it_stopped(path: str, message: str) -> None:
    with pytest.raises(PathNotFound) as raised:
        resolve(ORDER, path)
    assert str(raised.value) == message


def test_path_not_found_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        resolve({}, "$.a")


def test_resolve_invalid_path_is_value_error() -> None:
    with pytest.raises(ValueError, match="invalid JSON path"):
        resolve(ORDER, "$..order")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (False, "boolean"),
        (0, "number"),
        (1.5, "number"),
        ("", "string"),
        ([], "array"),
        ({}, "object"),
    ],
)
def test_json_type(value: Any, name: str) -> None:
    assert json_type(value) == name
