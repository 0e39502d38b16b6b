"""What a flow's request sends: its options, its encoded body, and the credentials it
carries, registered with the run's redactor before anything is sent or shown."""

from __future__ import annotations

import base64
import json as jsonlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import httpx2

from synth.baseline.shape import json_shape
from synth.checks.response import MISSING
from synth.redact import Redactor


@dataclass(frozen=True, slots=True)
class Sending:
    """What `Flow.request` was asked to send."""

    method: str
    path: str
    service: str | None
    params: Mapping[str, Any] | None
    headers: Mapping[str, str] | None
    json: Any
    data: Mapping[str, Any] | None
    content: bytes | str | None
    timeout: str | float | None
    follow_redirects: bool
    max_redirects: int


def register_userinfo(redactor: Redactor, url: str) -> None:
    """httpx turns user:password@ into a Basic Authorization header: mask both forms."""
    parts = urlsplit(url)
    if parts.password:
        redactor.add(parts.password)
        redactor.add_basic_auth(unquote(parts.username or ""), unquote(parts.password))


def register_credential(redactor: Redactor, value: str) -> None:
    redactor.add(value)
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token", "apikey"):
        redactor.add(credential)
    if credential and scheme.lower() == "basic":
        try:
            _user, _, password = base64.b64decode(credential, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return
        redactor.add(password)


def encode_body(
    json: Any, data: Mapping[str, Any] | None, content: bytes | str | None
) -> tuple[bytes | None, str | None]:
    if json is not MISSING:
        return jsonlib.dumps(json).encode(), "application/json"
    if data is not None:
        return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
    if content is not None:
        return (content.encode() if isinstance(content, str) else content), None
    return None, None


def parse_json(
    headers: httpx2.Headers, body: bytes, truncated: bool, redactor: Redactor
) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """A JSON body decoded once (the check's `r.json()` reuses it) and its shape for the
    baseline; (MISSING, ()) for any other body."""
    if truncated or not body or "json" not in headers.get("content-type", "").lower():
        return MISSING, ()
    try:
        document = jsonlib.loads(body)
    except ValueError:
        return MISSING, ()
    return document, json_shape(document, redactor.text)
