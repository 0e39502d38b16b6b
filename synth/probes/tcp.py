"""TCP probe: resolve a name (timed apart from connecting), open a connection, close it.

`connect` is shared with the TLS probe, which continues on the open connection.
As a step: `flow.tcp(host, port)` or YAML `tcp: {host: db.internal, port: 5432}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import model_validator

from synth.model import FailureType
from synth.probes import stepping
from synth.probes.contract import Probe
from synth.probes.errors import ProbeError
from synth.probes.options import Duration, Port, ProbeOptions, Templated

if TYPE_CHECKING:
    from synth.checks.context import FlowContext


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


# -- as a step ---------------------------------------------------------------------------


class TcpOptions(ProbeOptions):
    """Connect to host:port (default: the service's host and port)."""

    host: Templated | None = None
    port: Port | None = None
    service: str | None = None
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _port_with_host(self) -> TcpOptions:
        if self.host is not None and self.service is None and self.port is None:
            raise ValueError("tcp with a host needs a port")
        return self


async def run_tcp(ctx: FlowContext, options: TcpOptions) -> TcpResult:
    """Connect to the endpoint; fails the step as `dns`, `connect` or `timeout`."""
    target = stepping.endpoint(
        ctx, options.host, options.port, options.service, default_port=_default_port
    )
    timeout_s = stepping.timeout_s(ctx, options.timeout)
    async with stepping.probe_step(ctx, f"tcp {target.label}") as recorder:
        stepping.record(ctx, recorder, {"target": target.label})
        with stepping.probing(ctx, recorder, "TCP", f"tcp://{target.label}"):
            result = await probe_tcp(target.host, target.port, timeout_s=timeout_s)
        stepping.record(
            ctx,
            recorder,
            {"address": result.address, "dns_s": result.dns_s, "connect_s": result.connect_s},
        )
        stepping.record_facts(ctx, recorder, result)
    return result


def _default_port(scheme: str, url_port: int | None) -> int:
    return url_port or (443 if scheme == "https" else 80)


def _title(options: TcpOptions, service: str) -> str:
    return stepping.endpoint_title("tcp", options.host or options.service, options.port, service)


PROBE = Probe(
    kind="tcp",
    options=TcpOptions,
    facts=TcpResult,
    run=run_tcp,
    title=_title,
    summary="open a TCP connection",
    templated=("host",),
)
