"""The name of a request made outside any `flow.step()`: its method and route, with ids
folded to `{id}` and secrets masked, so the name is a bounded metric label that never
carries a credential."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from synth.redact import MASK, Redactor

ID = "{id}"
_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_HEX = re.compile(r"(?=.*\d)[0-9a-f]{8,}", re.I)
# Opaque tokens: long runs of letters, digits, '-' or '_' with at least one digit
# (order ids like ord_8F3k2LmQ9x, base64url blobs).
_TOKEN = re.compile(r"(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9_\-.~=]{16,}")


def route_name(method: str, path: str, redactor: Redactor) -> str:
    """`GET /orders/{id}` for `GET /orders/8412?x=1`; secrets are masked first."""
    target = redactor.text(path)
    route = urlsplit(target).path if "://" in target else target.split("?", 1)[0]
    route = route.split("#", 1)[0] or "/"
    segments = [_segment(s, redactor) for s in route.split("/")]
    return f"{method.upper()} {'/'.join(segments)}"


def _segment(segment: str, redactor: Redactor) -> str:
    if not segment or segment == MASK:
        return segment
    decoded = unquote(segment)
    if redactor.text(decoded) != decoded:
        return MASK
    if any(p.fullmatch(decoded) for p in (_NUMBER, _UUID, _HEX, _TOKEN)):
        return ID
    return segment
