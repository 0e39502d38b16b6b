"""The demo shop: a small HTTP/1.1 JSON service with runtime fault switches, and a web
front end for browser checks (`pages`: `/`, `/shop`, `/static/*`).

Built directly on asyncio streams so faults can act at the byte level (trickled, truncated
or reset responses). `run_in_thread` runs it on its own event loop for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, NamedTuple, TypeVar

from synth.demo._http import (
    MAX_HEAD_BYTES,
    HttpError,
    Request,
    Response,
    error,
    lingering_close,
    read_request,
    reset,
    send,
)
from synth.demo._store import TOKEN_TTL_S, Session, Store, StoreError
from synth.demo.faults import Faults, change_schema, change_type, truncate
from synth.demo.pages import LOGIN_PATH, SHOP_PATH, page, static

DEFAULT_USERNAME = "demo"
DEFAULT_PASSWORD = "demo-password"
MAX_RECORDS = 1000

_T = TypeVar("_T")
Params = dict[str, str]
Handler = Callable[[Request, Params], Response]
AuthedHandler = Callable[[Request, Params, Session], Response]


class RequestRecord(NamedTuple):
    """One received request as seen by the shop (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


class ShopServer:
    """The demo shop service. `faults` may be replaced or mutated at any time."""

    def __init__(
        self,
        *,
        version: str = "1.0.0",
        password: str = DEFAULT_PASSWORD,
        faults: Faults | None = None,
        idle_timeout: float = 15.0,
    ) -> None:
        self.version = version
        self.faults = faults or Faults()
        self.idle_timeout = idle_timeout
        self.requests: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self.store = Store()
        self._password = password
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._routes = self._build_routes()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port) and return the base URL."""
        if self._server is not None:
            raise RuntimeError("ShopServer already started")
        self._server = await asyncio.start_server(
            self._serve_connection, host, port, limit=MAX_HEAD_BYTES
        )
        return self.base_url

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping = True
        server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await server.wait_closed()
        await asyncio.sleep(0)  # let transports finish closing
        self._stopping = False

    async def __aenter__(self) -> ShopServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._sockname()[1])

    @property
    def base_url(self) -> str:
        """`http://host:port` of the listening socket."""
        host = str(self._sockname()[0])
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def _sockname(self) -> tuple[Any, ...]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("ShopServer is not started")
        return tuple(self._server.sockets[0].getsockname())

    # -- connections -------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._converse(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away; nothing to answer
        except asyncio.CancelledError:
            # stop() cancels us; finish normally, as Python 3.11's stream callback calls
            # task.exception() on a cancelled task and logs a spurious traceback.
            if not self._stopping:
                raise
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one persistent connection until either side closes it."""
        while True:
            try:
                request = await read_request(reader, writer, self.idle_timeout)
            except HttpError as exc:
                await self._reject(reader, writer, exc)
                return
            if request is None:
                return
            self.requests.append(RequestRecord(request.method, request.path, request.headers))
            if not await self._respond(request, writer):
                return

    async def _reject(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exc: HttpError
    ) -> None:
        body = json.dumps({"error": exc.message}).encode()
        await send(writer, exc.status, self._base_headers(keep_alive=False), body)
        await lingering_close(reader, writer)

    async def _respond(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        """Answer one request, applying faults; return whether to keep the connection."""
        faults = self.faults
        faulty = faults.applies_to(request.path)
        if faulty and faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        extra_ms = faults.extra_latency_ms(request.path)
        if extra_ms > 0:
            await asyncio.sleep(extra_ms / 1000)
        if faulty and faults.connection_reset:
            reset(writer)
            return False
        response = (_injected_error(faults) if faulty else None) or self._route(request)
        body = response.body
        if body is None:
            body = _json_body(response.payload, faults if faulty else None)
        headers = {**self._base_headers(request.keep_alive), **response.headers}
        if "traceparent" in request.headers:
            headers["X-Received-Traceparent"] = request.headers["traceparent"]
        rate = faults.slow_body_bytes_per_s if faulty else 0
        await send(writer, response.status, headers, body, rate)
        return request.keep_alive

    def _base_headers(self, keep_alive: bool) -> dict[str, str]:
        return {
            "Server": f"synth-demo-shop/{self.version}",
            "Content-Type": "application/json",
            "Connection": "keep-alive" if keep_alive else "close",
        }

    # -- routing -----------------------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/health", self._health),
            ("GET", LOGIN_PATH, self._page),
            ("GET", SHOP_PATH, self._page),
            ("GET", "/static/[^/]+", self._static),
            ("POST", "/api/login", self._login),
            ("GET", "/api/products", self._authed(self._products)),
            ("GET", "/api/products/(?P<id>[^/]+)", self._authed(self._product)),
            ("POST", "/api/cart/items", self._authed(self._add_item)),
            ("GET", "/api/cart", self._authed(self._cart)),
            ("POST", "/api/checkout", self._authed(self._checkout)),
            ("GET", "/api/orders/(?P<id>[^/]+)", self._authed(self._order)),
            ("GET", "/_faults", self._get_faults),
            ("PUT", "/_faults", self._put_faults),
            ("DELETE", "/_faults", self._delete_faults),
        ]
        return [_Route(method, re.compile(path), handler) for method, path, handler in table]

    def _route(self, request: Request) -> Response:
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            try:
                return route.handler(request, match.groupdict())
            except (HttpError, StoreError) as exc:
                return error(exc.status, exc.message)
        if allowed:
            return error(405, "method not allowed", {"Allow": ", ".join(allowed)})
        return error(404, "not found")

    def _authed(self, handler: AuthedHandler) -> Handler:
        """Wrap a handler so it only runs with a valid bearer token."""

        def guarded(request: Request, params: Params) -> Response:
            session = self._authenticate(request)
            if isinstance(session, Response):
                return session
            return handler(request, params, session)

        return guarded

    def _authenticate(self, request: Request) -> Session | Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        session = self.store.session(token.strip()) if scheme.lower() == "bearer" else None
        if session is None:
            return error(401, "missing or invalid token", {"WWW-Authenticate": "Bearer"})
        faults = self.faults
        injected = faults.expired_credentials and faults.applies_to(request.path)
        if injected or self.store.expired(session):
            challenge = 'Bearer error="invalid_token", error_description="token expired"'
            return error(401, "token expired", {"WWW-Authenticate": challenge})
        return session

    # -- handlers ----------------------------------------------------------------------------

    def _health(self, request: Request, params: Params) -> Response:
        return Response(200, {"status": "ok", "version": self.version})

    def _page(self, request: Request, params: Params) -> Response:
        return page(request.path)

    def _static(self, request: Request, params: Params) -> Response:
        faults = self.faults
        broken = faults.broken_js and faults.applies_to(request.path)
        return static(request.path, broken_js=broken)

    def _login(self, request: Request, params: Params) -> Response:
        body = _json_object(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return error(400, "username and password are required")
        user_ok = hmac.compare_digest(username.encode(), DEFAULT_USERNAME.encode())
        password_ok = hmac.compare_digest(password.encode(), self._password.encode())
        if not (user_ok and password_ok):
            return error(401, "invalid credentials")
        session = self.store.login()
        token = {"token": session.token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}
        return Response(200, token)

    def _products(self, request: Request, params: Params, session: Session) -> Response:
        items = [p.to_json() for p in self.store.products.values()]
        return Response(200, {"items": items, "count": len(items)})

    def _product(self, request: Request, params: Params, session: Session) -> Response:
        product = self.store.products.get(params["id"])
        if product is None:
            return error(404, "product not found")
        return Response(200, product.to_json())

    def _add_item(self, request: Request, params: Params, session: Session) -> Response:
        body = _json_object(request)
        self.store.add_item(session, body.get("product_id"), body.get("quantity", 1))
        return Response(201, self.store.cart(session))

    def _cart(self, request: Request, params: Params, session: Session) -> Response:
        return Response(200, self.store.cart(session))

    def _checkout(self, request: Request, params: Params, session: Session) -> Response:
        return Response(201, {"order": self.store.checkout(session)})

    def _order(self, request: Request, params: Params, session: Session) -> Response:
        order = self.store.order(session, params["id"])
        if order is None:
            return error(404, "order not found")
        return Response(200, {"order": order})

    def _get_faults(self, request: Request, params: Params) -> Response:
        return Response(200, self.faults.to_dict())

    def _put_faults(self, request: Request, params: Params) -> Response:
        try:
            self.faults = Faults.from_dict(_json_object(request))
        except ValueError as exc:
            return error(400, str(exc))
        return Response(200, self.faults.to_dict())

    def _delete_faults(self, request: Request, params: Params) -> Response:
        self.faults = Faults()
        return Response(200, self.faults.to_dict())


def _json_object(request: Request) -> dict[str, Any]:
    body = request.json()
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object")
    return body


def _json_body(payload: object, faults: Faults | None) -> bytes:
    """`payload` as JSON, reshaped by the JSON faults when `faults` apply to the request."""
    if faults is not None and faults.schema_change:
        payload = change_schema(payload)
    if faults is not None and faults.type_change:
        payload = change_type(payload, faults.type_change)
    body = json.dumps(payload).encode()
    if faults is not None and faults.corrupt_json:
        body = truncate(body)
    return body


def _injected_error(faults: Faults) -> Response | None:
    """The forced-status or random-500 response, if either fault fires."""
    if faults.status is not None:
        return error(faults.status, HTTPStatus(faults.status).phrase.lower())
    if faults.roll_error():
        return error(500, "internal server error")
    return None


# -- running on a background thread -----------------------------------------------------------


class ShopThread:
    """Handle on a ShopServer running on its own event loop in a daemon thread."""

    def __init__(self, server: ShopServer, loop: asyncio.AbstractEventLoop, base_url: str) -> None:
        self.server = server
        self.base_url = base_url
        self.port = server.port
        self._loop = loop

    def set_faults(self, **faults: Any) -> Faults:
        """Replace the active faults (unnamed ones are off); ValueError on bad names/values."""
        new = Faults.from_dict(faults)
        self._call(lambda: setattr(self.server, "faults", new))
        return new

    def clear_faults(self) -> None:
        """Switch every fault off."""
        self._call(lambda: setattr(self.server, "faults", Faults()))

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of the requests the shop has received (last 1000)."""
        return self._call(lambda: list(self.server.requests))

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run `fn` on the shop's loop and wait for its result."""

        async def run() -> _T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=5)


@contextmanager
def run_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    version: str = "1.0.0",
    password: str = DEFAULT_PASSWORD,
) -> Iterator[ShopThread]:
    """Run a ShopServer on a private event loop in a daemon thread for the block's duration."""
    server = ShopServer(version=version, password=password)
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future[str] = concurrent.futures.Future()
    thread = threading.Thread(
        target=_serve_forever, args=(server, loop, host, port, ready), name="synth-demo-shop"
    )
    thread.daemon = True
    thread.start()
    try:
        base_url = ready.result(timeout=10)
        yield ShopThread(server, loop, base_url)
    finally:
        with suppress(RuntimeError):  # the loop is already closed if startup failed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


def _serve_forever(
    server: ShopServer,
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    ready: concurrent.futures.Future[str],
) -> None:
    asyncio.set_event_loop(loop)
    try:
        try:
            ready.set_result(loop.run_until_complete(server.start(host, port)))
        except BaseException as exc:
            ready.set_exception(exc)
            return
        loop.run_forever()
        loop.run_until_complete(server.stop())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
