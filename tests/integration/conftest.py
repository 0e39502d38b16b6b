"""Real servers for integration tests: HTTP and HTTPS on 127.0.0.1 ephemeral ports.

A test declares routes (path → handler); each handler gets an `Exchange` with the parsed
request and byte-level control of the reply, so it can answer normally, stall, trickle,
stream without end or reset the connection. Every server records the requests it saw and
stops (unblocking every handler) when the test ends.

The fixtures every integration test shares (shop, start_agent, agent_store, otlp_http,
otlp_grpc, pagerduty, pushgateway) are defined in their helper modules and registered
here, once. Certificates come from `certs.write_self_signed`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import pytest
import trustme
from agent_harness import agent_store_fixture, shop_fixture, start_agent_fixture  # noqa: F401
from certs import write_self_signed
from otlp_receiver import otlp_grpc_fixture, otlp_http_fixture  # noqa: F401
from pagerduty_standin import pagerduty_fixture  # noqa: F401
from pushgateway import pushgateway_fixture  # noqa: F401

LOOPBACK = "127.0.0.1"
IDLE_TIMEOUT_S = 5.0  # a handler blocked on a silent client gives up after this
MAX_REQUEST_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Recorded:
    """A request as the server received it; header names lower-cased."""

    method: str
    target: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Exchange:
    """One request being answered by a route handler."""

    def __init__(self, handler: _Handler, request: Recorded) -> None:
        self._handler = handler
        self.request = request

    @property
    def server(self) -> HttpServer:
        return self._handler.server.owner

    def respond(
        self, status: int, body: Any = b"", *, headers: Mapping[str, str] | None = None
    ) -> None:
        """A complete response: bytes as-is, str as text, anything else as JSON."""
        if isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, content_type = json.dumps(body).encode(), "application/json"
        handler = self._handler
        handler.send_response(status)
        extra = dict(headers or {})
        if not any(k.lower() == "content-type" for k in extra):
            handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    def send_head(self, status: int, headers: Mapping[str, str]) -> None:
        """Status line and headers only; the handler writes the body itself with `write`.
        The connection closes after this exchange."""
        handler = self._handler
        handler.close_connection = True
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()

    def write(self, data: bytes) -> bool:
        """Send raw bytes; False once the client has gone."""
        try:
            self._handler.wfile.write(data)
        except OSError:
            return False
        return True

    def pause(self, seconds: float) -> bool:
        """Wait; False (early) when the server is stopping."""
        return not self.server.stopping.wait(seconds)

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), whatever was sent so far."""
        handler = self._handler
        handler.close_connection = True
        connection = handler.connection
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.rfile.close()
        connection.close()


Route = Callable[[Exchange], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpServer
    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.ssl_context is not None:
            # The handshake runs in the handler thread, never in the accept loop.
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-stream and failed handshakes are expected here: keep them
        # for debugging instead of printing tracebacks.
        self.owner.errors.append(repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        owner = self.server.owner
        owner.track(self.connection, add=True)
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except BaseException:
                owner.track(self.connection, add=False)  # finish() will not run
                raise

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner.track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; requests are recorded instead

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_REQUEST_BODY)) if length > 0 else b""
        parts = urlsplit(self.path)
        request = Recorded(
            method=self.command,
            target=self.path,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_port=int(self.client_address[1]),
        )
        owner = self.server.owner
        owner.record(request)
        exchange = Exchange(self, request)
        route = owner.routes.get(parts.path)
        if route is None:
            exchange.respond(404, {"error": f"no route for {parts.path}"})
        else:
            route(exchange)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class HttpServer:
    """A threaded HTTP(S) server on 127.0.0.1 with the given routes."""

    def __init__(
        self,
        routes: Mapping[str, Route],
        *,
        ssl_context: ssl.SSLContext | None = None,
        url_host: str = LOOPBACK,
    ) -> None:
        self.routes = dict(routes)
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self._requests: list[Recorded] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.owner = self
        self._server.ssl_context = ssl_context
        self.port = int(self._server.server_address[1])
        scheme = "https" if ssl_context is not None else "http"
        self.base_url = f"{scheme}://{url_host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def hits(self, path: str) -> int:
        """How many requests for `path` arrived so far (the current one included)."""
        with self._lock:
            return sum(1 for r in self._requests if r.path == path)

    def record(self, request: Recorded) -> None:
        with self._lock:
            self._requests.append(request)

    def track(self, connection: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake every handler (sleeping or blocked on a socket), join."""
        self.stopping.set()
        self._server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                # The plain socket call: SSLSocket.shutdown would drop its TLS state
                # under the handler thread's feet.
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        self._server.server_close()  # joins the handler threads
        self._thread.join(timeout=5)


class StartServer(Protocol):
    def __call__(self, routes: Mapping[str, Route]) -> HttpServer: ...


CertKind = Literal["valid", "expired", "self_signed", "wrong_host"]


class StartTlsServer(Protocol):
    def __call__(self, routes: Mapping[str, Route], *, cert: CertKind = "valid") -> HttpServer: ...


@pytest.fixture
def http_server() -> Iterator[StartServer]:
    """`http_server({"/path": handler})` → a started HttpServer, stopped after the test."""
    servers: list[HttpServer] = []

    def start(routes: Mapping[str, Route]) -> HttpServer:
        server = HttpServer(routes).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def test_ca() -> trustme.CA:
    """A certificate authority made for this test."""
    return trustme.CA()


@pytest.fixture
def ca_file(test_ca: trustme.CA, tmp_path: Path) -> Path:
    """The test CA's certificate as a PEM file (for `tls.ca_file`)."""
    path = tmp_path / "test-ca.pem"
    path.write_bytes(test_ca.cert_pem.bytes())
    return path


@pytest.fixture
def tls_server(test_ca: trustme.CA, tmp_path: Path) -> Iterator[StartTlsServer]:
    """`tls_server(routes, cert=...)` → an HTTPS server at https://localhost:<port>.

    cert: "valid" (issued by `test_ca` for localhost and 127.0.0.1), "expired" (the same,
    expired yesterday), "wrong_host" (issued by `test_ca` for another name) or
    "self_signed" (signed by its own key, trusted by nobody).
    """
    servers: list[HttpServer] = []

    def start(routes: Mapping[str, Route], *, cert: CertKind = "valid") -> HttpServer:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        now = dt.datetime.now(dt.UTC)
        if cert == "valid":
            test_ca.issue_cert("localhost", LOOPBACK).configure_cert(context)
        elif cert == "expired":
            test_ca.issue_cert(
                "localhost",
                LOOPBACK,
                not_before=now - dt.timedelta(days=10),
                not_after=now - dt.timedelta(days=1),
            ).configure_cert(context)
        elif cert == "wrong_host":
            test_ca.issue_cert("other-host.invalid").configure_cert(context)
        else:
            cert_file, key_file = write_self_signed(tmp_path, "localhost")
            context.load_cert_chain(cert_file, key_file)
        server = HttpServer(routes, ssl_context=context, url_host="localhost").start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
