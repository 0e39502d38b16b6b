"""A small JSON path dialect for expectations and captures: `$.order.items[0].id`,
`order.items.0.id` and `$["odd-key"]` all work."""

from __future__ import annotations

import re
from typing import Any

from synth.errors import SynthError

_TOKEN = re.compile(
    r"""\.?([A-Za-z_][\w\-]*)|\[(\d+|-\d+)\]|\[["']([^"']*)["']\]|\.(\d+)(?![\w\-])"""
)


class PathNotFound(SynthError, LookupError):
    """The path does not exist in the document; says where it stopped."""


def parse_path(path: str) -> list[str | int]:
    """Split a path into keys and indexes; ValueError for text that is not a path."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        # A name without its dot only starts a path: `a[0]b` is a typo, not ["a", 0, "b"].
        if not match or (match.group(1) is not None and pos > 0 and text[pos] != "."):
            raise ValueError(f"invalid JSON path {path!r} at {text[pos:]!r}")
        name, index, quoted, dotted_index = match.groups()
        if name is not None:
            parts.append(name)
        elif quoted is not None:
            parts.append(quoted)
        else:
            parts.append(int(index if index is not None else dotted_index))
        pos = match.end()
    return parts


def resolve(document: Any, path: str) -> Any:
    """The value at `path`, or PathNotFound naming the missing segment."""
    current = document
    walked = "$"
    for part in parse_path(path):
        if isinstance(part, int):
            if not isinstance(current, list) or not -len(current) <= part < len(current):
                size = len(current) if isinstance(current, list) else None
                raise PathNotFound(
                    f"{walked}[{part}] does not exist"
                    + (f" (array has {size} items)" if size is not None else " (not an array)")
                )
            current = current[part]
            walked += f"[{part}]"
        else:
            if not isinstance(current, dict) or part not in current:
                raise PathNotFound(f"{walked}.{part} does not exist")
            current = current[part]
            walked += f".{part}"
    return current


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
