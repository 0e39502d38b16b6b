"""The one strict JSON reader for request bodies: every API route and CD-tool hook reads
its body through `load`, so what one endpoint refuses none accepts.

Refused with the reason, before anything acts on the body:
- nesting deeper than `MAX_DEPTH` (Python's parser would overflow its recursion limit on
  a 64 KiB body of brackets) and bodies that are not UTF-8 or not JSON: 400;
- values no store or client can round-trip: `NaN`, `Infinity`, numbers too large for a
  float or with more digits than Python converts, strings (keys included) holding NUL
  (PostgreSQL refuses it) or a lone surrogate (UTF-8 cannot encode it): 422.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from synth.errors import SynthError

MAX_DEPTH = 64
MAX_INT_DIGITS = 30

# Possessive, and an unterminated string runs to the end: one linear pass whatever the input.
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_OPENING = frozenset(b"[{")


class BadJson(SynthError, ValueError):
    """The body cannot be accepted; `status` is 400 (not JSON) or 422 (unacceptable value)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def load(body: bytes) -> Any:
    """The decoded body, or BadJson saying what is wrong and where."""
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise BadJson(400, f"body is nested {depth} levels deep; at most {MAX_DEPTH} are accepted")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson(400, "body is not UTF-8") from None
    try:
        data = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise BadJson(
            400, f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    _check_strings(data, "")
    return data


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in `body` (brackets inside strings ignored)."""
    brackets = _STRINGS.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _constant(name: str) -> Any:
    raise BadJson(422, f"{name} is not a JSON number; send a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(422, f"number {text[:40]!r} is out of range")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise BadJson(422, f"integer with {len(text)} digits is out of range")
    return int(text)


def _check_strings(value: Any, path: str) -> None:
    if isinstance(value, str):
        _check_string(value, path or "(body)")
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            _check_string(key, f"key {where!r}")
            _check_strings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{path}[{index}]")


def _check_string(text: str, where: str) -> None:
    if "\x00" in text:
        raise BadJson(422, f"{_printable(where)}: NUL characters are not accepted")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadJson(
            422, f"{_printable(where)}: a lone UTF-16 surrogate (\\ud800-\\udfff) is not text"
        ) from None


def _printable(where: str) -> str:
    return where.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")[:200]
