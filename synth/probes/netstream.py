"""Sockets that know when their data arrived, for timings a busy event loop cannot inflate.

A monitor running many checks on one event loop notices a response only when the loop
gets round to it; timing the request with the clock at that moment adds the loop's own
queueing to the target's latency, and the figure grows with the monitor's load. These
streams ask the kernel instead: every read returns the kernel's receive timestamp of the
data (`SO_TIMESTAMPNS`), and the TCP handshake time comes from the kernel's RTT sample
(`TCP_INFO`). TLS runs over memory BIOs on the same socket, so TLS reads carry the
timestamps too. Where the kernel gives no timestamp (another OS, timestamps not enabled
yet), the time the read returned is used, as before.

Sends are timed around the socket writes themselves, so the send phase is the network's
share, not the HTTP library's work of building the request.

The timestamps are wall-clock (`CLOCK_REALTIME`); they are turned into `perf_counter`
time by their age at the moment of the read, clamped to the wait, so a clock step can
only make a figure fall back to the noticed time, never go negative.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpcore2

from synth.probes.internals import is_socket_readable

# Linux: SO_TIMESTAMPNS (== SCM_TIMESTAMPNS) is 35 on every architecture synth ships for.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("qq")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size)
# struct tcp_info: 8 bytes of u8 fields, then u32s; tcpi_rtt (µs) is the 16th u32.
_TCPI_RTT_OFFSET = 68
_TCP_INFO_LEN = 104
_RECV_CHUNK = 65536
# A SYN retransmission takes at least a second; past that the kernel's RTT sample (taken
# from the handshake that succeeded) no longer describes the connect time.
_RETRANSMIT_FLOOR_S = 0.9
_CREDIBLE_AGE_S = 60.0


class ReceiveClock(Protocol):
    """Where a stream reports the receive times of its data: the current exchange's."""

    def on_receive(self, arrived: float) -> None:
        """Data read from the socket arrived at `arrived` (perf_counter time)."""

    def on_send(self, started: float, done: float) -> None:
        """Request bytes went to the socket between `started` and `done`."""


def _kernel_arrival(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The perf_counter time the data arrived, from its kernel timestamp; the time now
    when there is none or it is not credible (a clock step). Callers clamp it to the
    start of the phase it ends."""
    now = time.perf_counter()
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanos = _TIMESPEC.unpack_from(data)
            age: float = (time.time_ns() - (int(seconds) * 1_000_000_000 + int(nanos))) / 1e9
            if 0.0 <= age <= _CREDIBLE_AGE_S:
                return now - age
    return now


def connect_rtt(sock: socket.socket) -> float | None:
    """The kernel's round-trip sample of the TCP handshake, in seconds (Linux)."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, AttributeError):
        return None
    if len(info) < _TCPI_RTT_OFFSET + 4:
        return None
    rtt_us: int = struct.unpack_from("I", info, _TCPI_RTT_OFFSET)[0]
    return rtt_us / 1e6 if rtt_us > 0 else None


class TimestampedStream(httpcore2.AsyncNetworkStream):
    """A TCP (and, after `start_tls`, TLS) stream for httpcore2 whose reads report the
    kernel's receive time to the clock returned by `clock_of()`."""

    def __init__(self, sock: socket.socket, clock_of: Callable[[], ReceiveClock | None]) -> None:
        self._sock = sock
        self._clock_of = clock_of
        self._loop = asyncio.get_running_loop()
        self._ssl: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._closed = False

    # -- raw socket -----------------------------------------------------------------------

    async def _wait(self, writable: bool) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        fd = self._sock.fileno()

        def ready() -> None:
            if not future.done():
                future.set_result(None)

        if writable:
            self._loop.add_writer(fd, ready)
        else:
            self._loop.add_reader(fd, ready)
        try:
            await future
        finally:
            if writable:
                self._loop.remove_writer(fd)
            else:
                self._loop.remove_reader(fd)

    async def _recv_raw(self, max_bytes: int) -> bytes:
        while True:
            try:
                data, ancillary, _flags, _addr = self._sock.recvmsg(max_bytes, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                await self._wait(writable=False)
                continue
            if data:
                clock = self._clock_of()
                if clock is not None:
                    clock.on_receive(_kernel_arrival(ancillary))
            return data

    async def _send_raw(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self._sock.send(view)
            except (BlockingIOError, InterruptedError):
                await self._wait(writable=True)
                continue
            view = view[sent:]

    # -- TLS over memory BIOs -------------------------------------------------------------

    async def _flush_tls(self) -> None:
        pending = self._outgoing.read()
        if pending:
            await self._send_raw(pending)

    async def _fill_tls(self) -> None:
        data = await self._recv_raw(_RECV_CHUNK)
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def _handshake(self) -> None:
        assert self._ssl is not None
        while True:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush_tls()
                await self._fill_tls()
                continue
            await self._flush_tls()
            return

    async def _read_tls(self, max_bytes: int) -> bytes:
        assert self._ssl is not None
        while True:
            try:
                return self._ssl.read(max_bytes)
            except ssl.SSLWantReadError:
                await self._flush_tls()
                await self._fill_tls()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or a peer that closed without one

    # -- httpcore2.AsyncNetworkStream -----------------------------------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                if self._ssl is not None:
                    return await self._read_tls(max_bytes)
                return await self._recv_raw(max_bytes)
        except TimeoutError as exc:
            raise httpcore2.ReadTimeout(str(exc) or "read timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore2.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                if self._ssl is not None:
                    self._ssl.write(buffer)  # encrypting is our CPU, not the network's
                    started = time.perf_counter()
                    await self._flush_tls()
                else:
                    started = time.perf_counter()
                    await self._send_raw(buffer)
                clock = self._clock_of()
                if clock is not None:
                    clock.on_send(started, time.perf_counter())
        except TimeoutError as exc:
            raise httpcore2.WriteTimeout(str(exc) or "write timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpcore2.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ssl is not None:
            # Best effort close_notify; never wait for the peer's.
            with contextlib.suppress(ssl.SSLError, OSError):
                self._ssl.unwrap()
            with contextlib.suppress(OSError):
                pending = self._outgoing.read()
                if pending:
                    self._sock.send(pending)
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        self._ssl = ssl_context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        try:
            async with asyncio.timeout(timeout):
                await self._handshake()
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore2.ConnectTimeout(str(exc) or "TLS handshake timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            await self.aclose()
            raise httpcore2.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._ssl
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return self._closed or is_socket_readable(self._sock)
        with contextlib.suppress(OSError):
            if info == "client_addr":
                return self._sock.getsockname()
            if info == "server_addr":
                return self._sock.getpeername()
        return None


async def open_tcp(
    address: str,
    port: int,
    *,
    timeout: float | None,
    local_address: str | None,
    socket_options: Iterable[Any] | None,
) -> socket.socket:
    """A connected non-blocking TCP socket with receive timestamps on; httpcore2's
    ConnectError/ConnectTimeout on failure."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        for option in socket_options or ():
            sock.setsockopt(*option)
        if local_address:
            sock.bind((local_address, 0))
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, (address.strip("[]"), port))
    except TimeoutError as exc:
        sock.close()
        raise httpcore2.ConnectTimeout(f"connecting to {address}:{port} timed out") from exc
    except OSError as exc:
        sock.close()
        raise httpcore2.ConnectError(str(exc)) from exc
    except BaseException:
        sock.close()
        raise
    return sock


def handshake_time(sock: socket.socket, noticed_s: float) -> float:
    """The TCP connect time to report: the kernel's handshake RTT, unless the connect
    took retransmissions (then what was noticed) or the kernel gives none."""
    rtt = connect_rtt(sock)
    if rtt is None or noticed_s >= _RETRANSMIT_FLOOR_S:
        return noticed_s
    return min(rtt, noticed_s)
