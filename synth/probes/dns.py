"""DNS probe: ask a nameserver (or the system's) for one record type, with dnspython.

dnspython is imported on first use: it adds ~100 ms to start-up, and most runs never
query DNS directly.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from synth.model import FailureType
from synth.probes.errors import ProbeError

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rdata
    import dns.resolver

RECORD_TYPES = ("A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV")


@dataclass(frozen=True, slots=True)
class DnsResult:
    """The answers as text, in the order received: A "192.0.2.1", MX "10 mail.example.com.",
    TXT the record's strings joined, SRV "0 5 5060 sip.example.com."."""

    name: str
    record_type: str
    answers: tuple[str, ...]
    nameserver: str | None
    duration_s: float


_system_resolver: dns.asyncresolver.Resolver | None = None


async def probe_dns(
    name: str,
    *,
    record_type: str = "A",
    nameserver: str | None = None,
    port: int = 53,
    timeout_s: float,
) -> DnsResult:
    """Query `name` for `record_type` at `nameserver` (an IP address; default: the system
    resolver configuration), within `timeout_s`.

    Raises ValueError for an unsupported record type or a malformed nameserver, and
    ProbeError: `dns` for NXDOMAIN, no answer of that type or a failing server; `timeout`
    when no server answered in time.
    """
    import dns.exception
    import dns.resolver

    rdtype = record_type.upper()
    if rdtype not in RECORD_TYPES:
        raise ValueError(
            f"record type {record_type!r} is not supported ({', '.join(RECORD_TYPES)})"
        )
    try:
        resolver = _resolver(nameserver, port)
    except dns.resolver.NoResolverConfiguration:
        raise ProbeError(
            FailureType.DNS, "no nameserver configured for the system resolver"
        ) from None
    server = f"{nameserver}:{port}" if nameserver else _describe_system(resolver)
    asked = f"DNS {rdtype} {name} at {server}"
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            answer = await resolver.resolve(name, rdtype, lifetime=timeout_s, search=False)
    except (TimeoutError, dns.exception.Timeout):
        raise ProbeError(FailureType.TIMEOUT, f"{asked}: no answer within {timeout_s:g}s") from None
    except dns.resolver.NXDOMAIN:
        raise ProbeError(FailureType.DNS, f"{asked}: the name does not exist (NXDOMAIN)") from None
    except dns.resolver.NoAnswer:
        raise ProbeError(
            FailureType.DNS, f"{asked}: the name has no {rdtype} records (empty answer)"
        ) from None
    except dns.resolver.NoNameservers as exc:
        raise ProbeError(
            FailureType.DNS, f"{asked}: no usable answer ({_server_errors(exc)})"
        ) from None
    except dns.exception.DNSException as exc:  # a malformed name, an unparsable response
        raise ProbeError(FailureType.DNS, f"{asked}: {exc}") from None
    duration = time.perf_counter() - started
    rrset = answer.rrset
    answers = tuple(_text(rdata) for rdata in rrset) if rrset is not None else ()
    answered_by = f"{answer.nameserver}:{answer.port}" if answer.nameserver else None
    return DnsResult(
        name=name,
        record_type=rdtype,
        answers=answers,
        nameserver=answered_by,
        duration_s=duration,
    )


def _resolver(nameserver: str | None, port: int) -> dns.asyncresolver.Resolver:
    import dns.asyncresolver

    global _system_resolver
    if nameserver is None:
        # Reading /etc/resolv.conf once per process; the resolver keeps no cache.
        if _system_resolver is None:
            _system_resolver = dns.asyncresolver.Resolver()
        return _system_resolver
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.port = port
    return resolver


def _describe_system(resolver: dns.resolver.BaseResolver) -> str:
    servers = ", ".join(str(s) for s in resolver.nameservers)
    return f"the system resolver ({servers})"


def _server_errors(exc: dns.resolver.NoNameservers) -> str:
    import dns.rcode

    described: list[str] = []
    for server, _tcp, port, error, response in exc.kwargs.get("errors", []):
        if response is not None:
            reason = dns.rcode.to_text(response.rcode())
        else:
            reason = str(error) or type(error).__name__
        described.append(f"{server}:{port} answered {reason}")
    return "; ".join(described) or "every server failed"


def _text(rdata: dns.rdata.Rdata) -> str:
    import dns.rdtypes.ANY.TXT

    if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT):
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return rdata.to_text()
