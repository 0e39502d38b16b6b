"""Parsing of human-written durations ("250ms", "30s", "1m30s") and sizes ("1MiB")."""

from __future__ import annotations

import functools
import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_FACTOR = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: str | float | int) -> float:
    """Return seconds for a number (seconds) or a string like "250ms", "30s", "1m30s", "2h".

    Raises ValueError with the accepted forms when the text is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"duration must be a finite number: {value!r}")
        if value < 0:
            raise ValueError(f"duration must not be negative: {value!r}")
        return float(value)
    if not isinstance(value, str):  # JSON can carry lists, objects, null: not a duration
        raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, or a number)")
    return _duration_text(value)


@functools.lru_cache(maxsize=1024)
def _duration_text(value: str) -> float:
    """A written duration's seconds; cached: thousands of checks write the same few."""
    text = value.strip().replace(" ", "")
    if _NUMBER.fullmatch(text):
        return float(text)
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        raise ValueError(
            f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m, 1h30m, or a number of seconds)"
        )
    return total


def parse_size(value: str | int) -> int:
    """Return bytes for an int or a string like "512KiB", "1MB", "2048"."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"size must not be negative: {value!r}")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 1048576, 512KiB, 1MiB)")
    return int(float(match.group(1)) * _SIZE_FACTOR[(match.group(2) or "b").lower()])
