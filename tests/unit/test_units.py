"""parse_duration and parse_size: the human units every config and check field accepts."""

from __future__ import annotations

import pytest

from synth.units import parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1m30s", 90.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("0.5s", 0.5),
        ("1s500ms", 1.5),
        (" 2 h ", 7200.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_text(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("number", "seconds"), [(0, 0.0), (12, 12.0), (0.25, 0.25)])
def test_parse_duration_numbers_are_seconds(number: float, seconds: float) -> None:
    result = parse_duration(number)
    assert result == seconds
    assert isinstance(result, float)


def test_parse_duration_numeric_string_is_seconds() -> None:
    # Environment overrides (SYNTH_RUNNER__REQUEST_TIMEOUT=30) always arrive as strings, and
    # the error message itself offers "a number of seconds".
    assert parse_duration("30") == 30.0
    assert parse_duration("2.5") == 2.5


@pytest.mark.parametrize("text", ["", "abc", "5 minutes", "5m30", "m5", "-5s", "1.s", "5x", "s"])
def test_parse_duration_rejects_non_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration") as raised:
        parse_duration(text)
    assert "250ms" in str(raised.value)  # the message shows accepted forms


@pytest.mark.parametrize("value", [-1, -0.5])
def test_parse_duration_rejects_negative_numbers(value: float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        parse_duration(value)


def test_parse_duration_rejects_bool() -> None:
    with pytest.raises(ValueError, match="not a duration: True"):
        parse_duration(True)


@pytest.mark.parametrize("value", [[], {}, None, ["5s"]])
def test_parse_duration_rejects_other_json_values(value: object) -> None:
    # A deploy event's `settle` comes from JSON: a list there was a 500, not a 422.
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(value)  # type: ignore[arg-type]


def test_parse_duration_rejects_nan() -> None:
    # NaN passes `value < 0` and would make every timeout comparison false.
    with pytest.raises(ValueError, match="duration"):
        parse_duration(float("nan"))


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2048", 2048),
        ("10b", 10),
        ("1kb", 1000),
        ("1KiB", 1024),
        ("512KiB", 512 * 1024),
        ("1MB", 1_000_000),
        ("1MiB", 1024**2),
        ("1 mib", 1024**2),
        ("2GB", 2 * 1000**3),
        ("1GiB", 1024**3),
        ("1.5KiB", 1536),
        (" 3 KB ", 3000),
    ],
)
def test_parse_size_text(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_parse_size_int_is_bytes() -> None:
    assert parse_size(4096) == 4096


@pytest.mark.parametrize("text", ["", "lots", "1TB", "1e3", "-1KiB", "KiB", "1 Ki B"])
def test_parse_size_rejects_non_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="not a size") as raised:
        parse_size(text)
    assert "512KiB" in str(raised.value)


def test_parse_size_rejects_bool() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(True)


def test_parse_size_rejects_negative_int() -> None:
    # A negative byte limit (max_body_bytes: -1) would silently disable or break the limit.
    with pytest.raises(ValueError, match="size"):
        parse_size(-1)
