"""HTTP exchanges with phase timings and bounded bodies, on httpx2.

- SSL contexts are built once per TLS setting and shared: building one loads the CA bundle,
  which costs far more CPU than the request itself.
- Each run gets its own connection pool, so a run measures DNS, connect and TLS like a
  new user would, and steps within the run reuse the connection like a browser does.
- DNS is resolved by our network backend so its time is measured apart from connect;
  the other phases come from the transport's `trace` request extension.
- The whole exchange, body included, runs under one deadline, and the body is read up to a
  cap: a huge or trickling response ends in bounded time and memory.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpcore2
import httpx2

from synth.config import TlsSettings
from synth.errors import SynthError
from synth.model import FailureType, HttpTimings
from synth.probes.errors import ProbeError
from synth.probes.internals import AnyIOBackend, use_pool
from synth.probes.netstream import TimestampedStream, handshake_time, open_tcp


class DnsResolutionError(httpcore2.ConnectError, SynthError):
    """The target's name did not resolve."""


@dataclass(slots=True)
class _PhaseClock:
    """Collects the timestamps of one exchange: trace events mark when each phase began
    (a send happens the moment our code runs), and the stream reports when the kernel
    received the data that ended a phase, so the event loop's own queueing is not
    counted as the target's latency."""

    start: float
    dns_s: float | None = None
    connect_s: float | None = None
    connect_started: float | None = None
    connect_done: float | None = None
    tls_started: float | None = None
    tls_done: float | None = None
    send_started: float | None = None
    send_done: float | None = None
    headers_done: float | None = None
    last_receive: float | None = None
    wire_send_started: float | None = None  # around the socket writes (the stream's)
    wire_send_done: float | None = None

    def on_receive(self, arrived: float) -> None:
        self.last_receive = arrived

    def on_send(self, started: float, done: float) -> None:
        if self.wire_send_started is None:
            self.wire_send_started = started
        self.wire_send_done = done

    @property
    def _sent(self) -> tuple[float | None, float | None]:
        """When the request went out: its socket writes when the stream timed them, else
        the HTTP library's send events."""
        if self.wire_send_started is not None:
            return self.wire_send_started, self.wire_send_done
        return self.send_started, self.send_done

    def _arrival(self, now: float, phase_start: float | None) -> float:
        """When the data that ended a phase arrived: the kernel's time, never before the
        phase began nor after we noticed it."""
        arrived = self.last_receive if self.last_receive is not None else now
        if phase_start is not None:
            arrived = max(arrived, phase_start)
        return min(arrived, now)

    def timings(self, end: float) -> HttpTimings:
        connect = self.connect_s
        if connect is None:
            connect = _span(self.connect_started, self.connect_done)
            if connect is not None and self.dns_s is not None:
                connect = max(connect - self.dns_s, 0.0)
        body_end = self._arrival(end, self.headers_done)
        send_started, send_done = self._sent
        if send_done is not None and self.headers_done is not None:
            # A response that arrived before our send returned ends the send there: the
            # rest is this process not running yet (on loopback the write itself wakes the
            # server, which can take the CPU before we note the send done).
            send_done = min(send_done, self.headers_done)
        phases = HttpTimings(
            dns_s=self.dns_s,
            connect_s=connect,
            tls_s=_span(self.tls_started, self.tls_done),
            send_s=_span(send_started, send_done),
            first_byte_s=_span(send_done, self.headers_done),
            body_s=_span(self.headers_done, body_end),
        )
        # Time on the network: the phases' sum, without the gaps between them where the
        # exchange waited on this process (its CPU, its event loop), not on the target.
        total = sum(phases.as_dict().values())
        return replace(
            phases, total_s=total if phases.first_byte_s is not None else end - self.start
        )

    async def on_event(self, name: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        match name:
            case "connection.connect_tcp.started":
                self.connect_started = now
            case "connection.connect_tcp.complete":
                self.connect_done = now
            case "connection.start_tls.started":
                self.tls_started = now
            case "connection.start_tls.complete":
                self.tls_done = self._arrival(now, self.tls_started)
            case "http11.send_request_headers.started" | "http2.send_request_headers.started":
                self.send_started = now
            case "http11.send_request_body.complete" | "http2.send_request_body.complete":
                self.send_done = now
            case (
                "http11.receive_response_headers.complete"
                | "http2.receive_response_headers.complete"
            ):
                self.headers_done = self._arrival(now, self._sent[0])


def _span(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(end - start, 0.0)


_active_clock: contextvars.ContextVar[_PhaseClock | None] = contextvars.ContextVar(
    "synth_http_clock", default=None
)


class TimedDnsBackend(httpcore2.AsyncNetworkBackend):
    """Resolves names itself (timed, with a distinct error), then connects by address."""

    def __init__(self) -> None:
        self._inner = AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        last_error: Exception | None = None
        for address in addresses:
            started = time.perf_counter()
            try:
                sock = await open_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore2.ConnectTimeout:
                raise
            except httpcore2.ConnectError as exc:
                last_error = exc
                continue
            clock = _active_clock.get()
            if clock is not None:
                clock.connect_s = handshake_time(sock, time.perf_counter() - started)
            return TimestampedStream(sock, _active_clock.get)
        assert last_error is not None
        raise last_error

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        if _is_ip_literal(host):
            return [host]
        clock = _active_clock.get()
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"DNS lookup of {host} timed out") from None
        except socket.gaierror as exc:
            raise DnsResolutionError(f"cannot resolve {host}: {exc.strerror}") from exc
        finally:
            if clock is not None:
                clock.dns_s = time.perf_counter() - started
        seen: list[str] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in seen:
                seen.append(address)
        return seen

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _is_ip_literal(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host.strip("[]"))
        except OSError:
            continue
        return True
    return False


class SslContexts:
    """One SSL context per distinct TLS setting, built once and shared by every client."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}

    def get(self, tls: TlsSettings) -> ssl.SSLContext:
        key = (tls.verify, str(tls.ca_file) if tls.ca_file else None)
        context = self._contexts.get(key)
        if context is None:
            context = _build_context(tls.verify, tls.ca_file)
            self._contexts[key] = context
        return context


def _build_context(verify: bool, ca_file: Path | None) -> ssl.SSLContext:
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def new_client(context: ssl.SSLContext, *, user_agent: str) -> httpx2.AsyncClient:
    """A client with its own connection pool over a shared SSL context and timed DNS."""
    transport = httpx2.AsyncHTTPTransport(verify=context, trust_env=False)
    use_pool(
        transport,
        httpcore2.AsyncConnectionPool(ssl_context=context, network_backend=TimedDnsBackend()),
    )
    return httpx2.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": user_agent},
    )


@dataclass(frozen=True, slots=True)
class Exchange:
    """A completed HTTP exchange: status, headers, the body up to the cap, and timings."""

    method: str
    url: str
    status_code: int
    headers: httpx2.Headers
    body: bytes
    body_truncated: bool
    bytes_received: int
    timings: HttpTimings


async def exchange(
    client: httpx2.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    params: Any = None,
    content: bytes | None = None,
    timeout_s: float,
    max_body_bytes: int,
    budget_s: float | None = None,
) -> Exchange:
    """Send one request and read at most `max_body_bytes` of the body, all within
    `timeout_s` (or the `budget_s` left of it, after redirects); network failures raise
    ProbeError with their failure type."""
    allowed_s = timeout_s if budget_s is None else min(budget_s, timeout_s)
    clock = _PhaseClock(start=time.perf_counter())
    token = _active_clock.set(clock)
    request = client.build_request(
        method,
        url,
        headers=headers,
        params=params,
        content=content,
        timeout=httpx2.Timeout(allowed_s),
        extensions={"trace": clock.on_event},
    )
    chunks: list[bytes] = []
    received = 0
    truncated = False
    try:
        async with asyncio.timeout(allowed_s):
            response = await client.send(request, stream=True)
            try:
                async for chunk in response.aiter_bytes():
                    room = max_body_bytes - received
                    chunks.append(chunk[:room])
                    received += len(chunk)
                    if received > max_body_bytes:
                        truncated = True
                        break
            finally:
                await response.aclose()
    except TimeoutError:
        raise _timeout_error(clock, timeout_s) from None
    except httpx2.HTTPError as exc:
        if isinstance(exc, httpx2.TimeoutException) and _in_tls_handshake(clock):
            raise _timeout_error(clock, timeout_s) from exc
        raise classify_transport_error(exc, timeout_s) from exc
    finally:
        _active_clock.reset(token)
    end = time.perf_counter()
    return Exchange(
        method=method,
        url=str(request.url),
        status_code=response.status_code,
        headers=response.headers,
        body=b"".join(chunks),
        body_truncated=truncated,
        bytes_received=min(received, max_body_bytes) if truncated else received,
        timings=clock.timings(end),
    )


def _in_tls_handshake(clock: _PhaseClock) -> bool:
    return clock.tls_started is not None and clock.tls_done is None


def _timeout_error(clock: _PhaseClock, timeout_s: float) -> ProbeError:
    if _in_tls_handshake(clock):
        return ProbeError(
            FailureType.TIMEOUT, f"TLS handshake did not complete within {timeout_s:g}s"
        )
    return ProbeError(
        FailureType.TIMEOUT, f"no complete response within {timeout_s:g}s{_phase_hint(clock)}"
    )


def _phase_hint(clock: _PhaseClock) -> str:
    if clock.headers_done is not None:
        return " (headers arrived, the body did not finish)"
    if clock.send_done is not None:
        return " (request sent, waiting for the response headers)"
    if clock.connect_done is not None:
        return " (connected, request not sent)"
    return " (while connecting)"


def classify_transport_error(exc: BaseException, timeout_s: float) -> ProbeError:
    """Map an httpx2 error to the failure type an on-call engineer would name."""
    chain = _cause_chain(exc)
    if any(isinstance(e, DnsResolutionError | socket.gaierror) for e in chain):
        return ProbeError(FailureType.DNS, _first_message(chain, DnsResolutionError, exc))
    if isinstance(exc, httpx2.TimeoutException):
        kind = {
            httpx2.ConnectTimeout: "connecting",
            httpx2.ReadTimeout: "reading the response",
            httpx2.WriteTimeout: "sending the request",
            httpx2.PoolTimeout: "waiting for a connection",
        }.get(type(exc), "the request")
        return ProbeError(FailureType.TIMEOUT, f"timed out after {timeout_s:g}s {kind}")
    ssl_error = next((e for e in chain if isinstance(e, ssl.SSLError)), None)
    if ssl_error is not None:
        reason = getattr(ssl_error, "verify_message", None) or getattr(ssl_error, "reason", None)
        return ProbeError(FailureType.TLS, f"TLS handshake failed: {reason or ssl_error}")
    if isinstance(exc, httpx2.ConnectError):
        return ProbeError(FailureType.CONNECT, f"cannot connect: {_os_reason(chain, exc)}")
    if isinstance(exc, httpx2.ReadError | httpx2.WriteError | httpx2.RemoteProtocolError):
        return ProbeError(
            FailureType.CONNECT, f"connection failed mid-exchange: {_os_reason(chain, exc)}"
        )
    return ProbeError(FailureType.CONNECT, f"{type(exc).__name__}: {exc}")


def _cause_chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _first_message(chain: list[BaseException], kind: type[BaseException], fallback: Any) -> str:
    for error in chain:
        if isinstance(error, kind):
            return str(error)
    return str(fallback)


def _os_reason(chain: list[BaseException], fallback: BaseException) -> str:
    for error in chain:
        if isinstance(error, OSError) and error.errno:
            # asyncio's strerror is "Connect call failed (addr)"; the errno says why.
            return os.strerror(error.errno).lower()
        if isinstance(error, OSError) and error.strerror:
            return error.strerror.lower()
    text = str(fallback)
    return text or type(fallback).__name__
