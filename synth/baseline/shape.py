"""The shape of a JSON body: its field paths and their types, never its values.

    json_shape({"order": {"total": 12.5, "items": [{"id": "a"}]}})
    == (("order", "object"), ("order.items", "array"), ("order.items[].id", "string"),
        ("order.total", "number"))

Bounded so that it stays cheap on any body: at most MAX_PATHS paths, MAX_DEPTH levels and
the first MAX_ITEMS elements of each array. Keys that look like identifiers (numbers,
hex, UUIDs) or that carry a secret become `*`, so that paths are neither unbounded nor
sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from synth.checks.jsonpath import json_type

MAX_PATHS = 256
MAX_DEPTH = 8
MAX_ITEMS = 5
MAX_KEYS = 100
MAX_KEY_CHARS = 64

Shape = tuple[tuple[str, str], ...]
_ID_LIKE = re.compile(r"^(?:\d+|[0-9a-fA-F-]{16,}|[A-Za-z0-9_\-]{32,})$")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][\w\-]*$")


def json_shape(document: Any, redact: Callable[[str], str] = lambda s: s) -> Shape:
    """Sorted (path, type) pairs of `document`; a path may appear with several types when
    array elements disagree. The root itself is not listed."""
    walker = _Walker(redact)
    walker.walk(document, "", 0)
    return tuple(sorted(walker.found))


class _Walker:
    """One walk over a document; key spellings are cached (array items repeat them)."""

    __slots__ = ("found", "keys", "redact")

    def __init__(self, redact: Callable[[str], str]) -> None:
        self.redact = redact
        self.found: set[tuple[str, str]] = set()
        self.keys: dict[str, str] = {}

    def walk(self, value: Any, path: str, depth: int) -> None:
        if depth >= MAX_DEPTH:
            return
        found = self.found
        if isinstance(value, dict):
            prefix = path + "." if path else ""
            for index, (key, child) in enumerate(value.items()):
                if index >= MAX_KEYS or len(found) >= MAX_PATHS:
                    return
                shown = self.keys.get(key)
                if shown is None:
                    shown = self.keys[key] = _key(str(key), self.redact)
                child_path = prefix + shown
                found.add((child_path, _TYPES.get(type(child)) or json_type(child)))
                if isinstance(child, _CONTAINERS):
                    self.walk(child, child_path, depth + 1)
        elif isinstance(value, list):
            child_path = path + "[]"
            for child in value[:MAX_ITEMS]:
                if len(found) >= MAX_PATHS:
                    return
                if isinstance(child, _CONTAINERS):
                    self.walk(child, child_path, depth + 1)
                else:
                    found.add((child_path, _TYPES.get(type(child)) or json_type(child)))


_CONTAINERS = (dict, list)
_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}


def _key(key: str, redact: Callable[[str], str]) -> str:
    if _ID_LIKE.match(key) or redact(key) != key or len(key) > MAX_KEY_CHARS:
        return "*"
    if not _PLAIN_KEY.match(key):
        return '["' + key.replace('"', "'").replace(".", "_") + '"]'
    return key


def container(path: str) -> str:
    """The object or array holding `path`: `order.items[].id` → `order.items`,
    `order.total` → `order`, `total` → `` (the root)."""
    if path.endswith("[]"):
        return path[:-2]
    cut = path.rfind(".")
    parent = path[:cut] if cut >= 0 else ""
    while parent.endswith("[]"):
        parent = parent[:-2]
    return parent
