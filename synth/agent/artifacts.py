"""Serving a run's artifacts (`GET /v1/runs/{run_id}/artifacts/{name}`) and linking them
from the run JSON.

Names are checked against one strict pattern before the store is asked (anything else is
a 404 saying why: no path ever reaches a file system). Only a few content types are served
as themselves — images and plain text inline, archives as downloads; any other stored type
is served as `application/octet-stream` to download — always with `nosniff` and a
sandboxing Content-Security-Policy, so nothing a page left behind runs in the API's origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from fastapi import Response

from synth.store import ArtifactInfo

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
# Stored artifacts never change: a browser may keep one this long (private: with
# `server.read_auth` it is a credentialed read).
MAX_AGE_S = 3600
OCTET_STREAM = "application/octet-stream"
# Served content type → shown in the browser (inline) or downloaded (attachment).
INLINE = {"image/png": True, "image/jpeg": True, "text/plain": True, "application/json": True}
SERVED = {**INLINE, "application/zip": False, OCTET_STREAM: False}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
OPENAPI_200: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The artifact's bytes (images, text and JSON inline; archives and "
        "anything else as a download)",
        "content": {media_type: _BINARY for media_type in SERVED},
    }
}


def valid_name(name: str) -> bool:
    """Whether `name` can be an artifact's name at all."""
    return _NAME.fullmatch(name) is not None


def served_type(content_type: str) -> str:
    """The content type an artifact stored with `content_type` is served as."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type if media_type in SERVED else OCTET_STREAM


def response(name: str, content_type: str, data: bytes) -> Response:
    """The answer serving one artifact (its name has passed `valid_name`)."""
    media_type = served_type(content_type)
    disposition = "inline" if INLINE.get(media_type, False) else "attachment"
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{name}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": f"private, max-age={MAX_AGE_S}",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def url(public_url: str | None, run_id: str, name: str) -> str:
    """Where the API serves an artifact: a path, or absolute under `server.public_url`."""
    path = f"/v1/runs/{quote(run_id, safe='')}/artifacts/{quote(name, safe='')}"
    return (public_url or "").rstrip("/") + path


def linked(
    public_url: str | None, run_id: str, listed: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Artifact metadata (`codec.artifact_to_dict`'s shape), each with its `url`."""
    return [{**item, "url": url(public_url, run_id, str(item["name"]))} for item in listed]


def info_to_dict(info: ArtifactInfo) -> dict[str, Any]:
    """A stored artifact's metadata in the run JSON's shape (`codec.artifact_to_dict`)."""
    return {
        "name": info.name,
        "content_type": info.content_type,
        "size": info.size,
        "step": info.step,
    }
