"""TCP probe: resolve a name (timed apart from connecting), open a connection, close it.

`connect` is shared with the TLS probe, which continues on the open connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass

from synth.model import FailureType
from synth.probes.errors import ProbeError


@dataclass(frozen=True, slots=True)
class TcpResult:
    """A successful connection: the address used and how long each phase took (seconds).
    `dns_s` is None when `host` was an IP address."""

    host: str
    port: int
    address: str
    dns_s: float | None
    connect_s: float


@dataclass(slots=True)
class Stage:
    """What a probe is doing now, so that a timeout can say where it stopped."""

    doing: str


@dataclass(slots=True)
class Connection:
    """An open connection and the facts of how it was opened."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: str
    dns_s: float | None
    connect_s: float


async def probe_tcp(host: str, port: int, *, timeout_s: float) -> TcpResult:
    """Connect to `host:port` and close again, all within `timeout_s`.

    Raises ProbeError: `dns` when the name does not resolve, `connect` when every address
    refuses or is unreachable, `timeout` when time runs out (naming the phase).
    """
    stage = Stage(f"resolving {host}")
    try:
        async with asyncio.timeout(timeout_s):
            connection = await connect(host, port, stage)
    except TimeoutError:
        raise ProbeError(
            FailureType.TIMEOUT, f"timed out after {timeout_s:g}s {stage.doing}"
        ) from None
    await close(connection.writer)
    return TcpResult(
        host=host,
        port=port,
        address=connection.address,
        dns_s=connection.dns_s,
        connect_s=connection.connect_s,
    )


async def connect(host: str, port: int, stage: Stage) -> Connection:
    """Resolve `host` and connect to its addresses in turn until one accepts. The caller
    bounds the time; `stage` tells it which phase was running when time ran out."""
    addresses, dns_s = await resolve(host, port, stage)
    errors: list[str] = []
    for address in addresses:
        stage.doing = f"connecting to {_hostport(address, port)}"
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(address, port)
        except OSError as exc:
            errors.append(f"{_hostport(address, port)}: {_os_reason(exc)}")
            continue
        return Connection(reader, writer, address, dns_s, time.perf_counter() - started)
    raise ProbeError(FailureType.CONNECT, f"cannot connect to {host}:{port}: {'; '.join(errors)}")


async def resolve(host: str, port: int, stage: Stage) -> tuple[list[str], float | None]:
    """The addresses of `host` in the system resolver's order, and the time the lookup
    took (None for an IP address, which needs no lookup)."""
    literal = host.strip("[]")
    if _is_ip(literal):
        return [literal], None
    stage.doing = f"resolving {host}"
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError(FailureType.DNS, f"cannot resolve {host}: {exc.strerror or exc}") from None
    dns_s = time.perf_counter() - started
    addresses: list[str] = []
    for _family, _type, _proto, _canonical, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ProbeError(FailureType.DNS, f"cannot resolve {host}: no addresses")
    return addresses, dns_s


async def close(writer: asyncio.StreamWriter, *, grace_s: float = 1.0) -> None:
    """Close politely, but never wait on a peer that does not answer for more than
    `grace_s`: the probe's result is already known."""
    writer.close()
    try:
        async with asyncio.timeout(grace_s):
            await writer.wait_closed()
    except Exception:  # a reset or TLS error while closing says nothing about the target
        writer.transport.abort()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hostport(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
