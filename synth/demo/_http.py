"""Minimal HTTP/1.1 over asyncio streams: just enough for the demo shop.

Persistent connections, Content-Length bodies, `Expect: 100-continue`; no chunked request
bodies. Kept byte-level on purpose so faults can trickle, truncate or reset responses.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
MAX_HEADERS = 100
BODY_TIMEOUT_S = 10.0
LINGER_TIMEOUT_S = 1.0
LINGER_MAX_BYTES = 4 * MAX_BODY_BYTES
TRICKLE_TICK_S = 0.05

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class HttpError(Exception):
    """A request the server cannot handle; answered with `status` and the connection closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    """A parsed request; header names are lower-cased, repeated headers joined with ', '."""

    method: str
    path: str
    query: str
    version: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after the response."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def json(self) -> object:
        """The body parsed as JSON; HttpError 400 when it is not."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "request body is not valid JSON") from None


@dataclass
class Response:
    """A response before serialisation: `payload` sent as JSON, unless `body` is given (the
    front end's pages and assets), which is sent as it is and never reshaped by the JSON
    faults."""

    status: int
    payload: object
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON error response `{"error": message}`."""
    return Response(status, {"error": message}, dict(headers or {}))


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle_timeout: float
) -> Request | None:
    """Read one request; None on a clean EOF or idle timeout, HttpError when malformed."""
    head = await _read_head(reader, idle_timeout)
    if head is None:
        return None
    method, target, version, headers = parse_head(head)
    path, query = _split_target(target)
    length = _content_length(headers)
    if "transfer-encoding" in headers:
        raise HttpError(501, "chunked request bodies are not supported; send Content-Length")
    if length > MAX_BODY_BYTES:
        raise HttpError(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
    if length and headers.get("expect", "").lower() == "100-continue":
        writer.write(f"{version} 100 Continue\r\n\r\n".encode())
        await writer.drain()
    body = await _read_body(reader, length)
    return Request(method, path, query, version, headers, body)


async def _read_head(reader: asyncio.StreamReader, idle_timeout: float) -> bytes | None:
    try:
        async with asyncio.timeout(idle_timeout):
            return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, "request head too large") from None
    except TimeoutError:
        return None


async def _read_body(reader: asyncio.StreamReader, length: int) -> bytes:
    if not length:
        return b""
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            return await reader.readexactly(length)
    except TimeoutError:
        raise HttpError(408, "timed out reading the request body") from None


def parse_head(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    """Parse a request head into (method, target, version, headers); HttpError 400 if bad."""
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= _TOKEN_CHARS or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.0", "HTTP/1.1"):
        raise HttpError(505 if version.startswith("HTTP/") else 400, "unsupported HTTP version")
    return method, target, version, _parse_headers(lines[1:])


def _parse_headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    fields = [line for line in lines if line]
    if len(fields) > MAX_HEADERS:
        raise HttpError(431, "too many request headers")
    for line in fields:
        name, sep, value = line.partition(":")
        if not sep or not name or not set(name) <= _TOKEN_CHARS:
            raise HttpError(400, "malformed header line")
        key = name.lower()
        value = value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _split_target(target: str) -> tuple[str, str]:
    if not (target.startswith("/") or target.startswith(("http://", "https://"))):
        raise HttpError(400, "malformed request target")
    parts = urlsplit(target)
    return unquote(parts.path or "/"), parts.query


def _content_length(headers: dict[str, str]) -> int:
    raw = headers.get("content-length")
    if raw is None:
        return 0
    values = {v.strip() for v in raw.split(",")}
    if len(values) != 1:
        raise HttpError(400, "conflicting Content-Length headers")
    value = values.pop()
    if not value.isascii() or not value.isdigit():
        raise HttpError(400, "invalid Content-Length")
    return int(value)


def render_head(status: int, headers: dict[str, str]) -> bytes:
    """The status line and header block, ending with the blank line."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(
    writer: asyncio.StreamWriter,
    status: int,
    headers: dict[str, str],
    body: bytes,
    bytes_per_s: float = 0,
) -> None:
    """Write a response; with `bytes_per_s` the body trickles after prompt headers."""
    head = render_head(status, {**headers, "Content-Length": str(len(body))})
    if bytes_per_s <= 0:
        writer.write(head + body)
        await writer.drain()
        return
    writer.write(head)
    await writer.drain()
    await _trickle(writer, body, bytes_per_s)


async def _trickle(writer: asyncio.StreamWriter, body: bytes, bytes_per_s: float) -> None:
    chunk = max(1, int(bytes_per_s * TRICKLE_TICK_S))
    for start in range(0, len(body), chunk):
        await asyncio.sleep(chunk / bytes_per_s)
        if writer.is_closing():
            raise ConnectionResetError("client went away during a slow body")
        writer.write(body[start : start + chunk])
        await writer.drain()


def reset(writer: asyncio.StreamWriter) -> None:
    """Abort the connection with a TCP RST (SO_LINGER on, timeout 0, then close)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def lingering_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then drain what the client still sends so it can read our last response.

    Closing with unread input makes the kernel send RST, which can destroy the response
    (e.g. a 413 sent while the client is still uploading).
    """
    try:
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(LINGER_TIMEOUT_S):
            received = 0
            while received < LINGER_MAX_BYTES:
                data = await reader.read(64 * 1024)
                if not data:
                    break
                received += len(data)
    except (TimeoutError, ConnectionError, OSError):
        pass
