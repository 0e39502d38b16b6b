"""DNS probe: ask a nameserver (or the system's) for one record type, with dnspython.

dnspython is imported on first use: it adds ~100 ms to start-up, and most runs never
query DNS directly. As a step: `flow.dns(name, record_type="MX", expect_contains=[...])`
or YAML `dns: {name: example.com, record_type: MX, expect_contains: [...]}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from synth.model import FailureType
from synth.probes import stepping
from synth.probes.contract import Probe
from synth.probes.errors import ProbeError
from synth.probes.options import Duration, Names, Port, ProbeOptions, Templated
from synth.probes.stepping import Problem

if TYPE_CHECKING:
    import dns.asyncresolver
    import dns.rdata
    import dns.resolver

    from synth.checks.context import FlowContext

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


# -- expectations (pure) -----------------------------------------------------------------


def normalize_answer(record_type: str, answer: str) -> str:
    """The comparable form of an answer: IP addresses canonical, names lower-case without
    the trailing dot; TXT text as is."""
    rdtype = record_type.upper()
    text = answer.strip()
    if rdtype == "TXT":
        return text
    if rdtype in ("A", "AAAA"):
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            return text.lower()
    return " ".join(t if t == "." else t.lower().rstrip(".") for t in text.split())


def answer_mismatch(
    record_type: str,
    answers: Iterable[str],
    *,
    expect: Iterable[str] | None = None,
    expect_contains: Iterable[str] | None = None,
) -> Problem | None:
    """Compare DNS answers with `expect` (exactly these) and `expect_contains` (at least
    these); None when both hold."""
    got = [normalize_answer(record_type, a) for a in answers]
    actual = ", ".join(got) or "no answers"
    if expect is not None:
        wanted = _normalized(record_type, expect)
        if wanted != set(got):
            missing = sorted(wanted - set(got))
            extra = sorted(set(got) - wanted)
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unexpected {', '.join(extra)}")
            return Problem(
                f"answers differ from expected ({'; '.join(parts)})",
                ", ".join(sorted(wanted)) or "no answers",
                actual,
            )
    if expect_contains is not None:
        wanted = _normalized(record_type, expect_contains)
        missing = sorted(wanted - set(got))
        if missing:
            return Problem(
                f"answers lack {', '.join(missing)}",
                f"answers including {', '.join(sorted(wanted))}",
                actual,
            )
    return None


def _normalized(record_type: str, values: Iterable[str]) -> set[str]:
    items = [values] if isinstance(values, str) else values
    return {normalize_answer(record_type, v) for v in items}


# -- as a step ---------------------------------------------------------------------------


def _record_type(value: str) -> str:
    import dns.rdatatype

    text = value.strip().upper()
    try:
        dns.rdatatype.from_text(text)
    except dns.rdatatype.UnknownRdatatype:
        raise ValueError(f"unknown DNS record type {value!r}") from None
    return text


class DnsOptions(ProbeOptions):
    """Resolve a name and compare the answers: `expect` exactly these, `expect_contains`
    at least these (regardless of order, case and a name's trailing dot)."""

    name: Templated | None = None
    record_type: Annotated[str, AfterValidator(_record_type)] = "A"
    expect: Names | None = None
    expect_contains: Names | None = None
    nameserver: str | None = None
    port: Port = 53
    timeout: Duration | None = None


async def run_dns(ctx: FlowContext, options: DnsOptions) -> DnsResult:
    """Query the name (default: the service's host); fails the step as `dns`."""
    name = options.name
    if name is None:
        name = stepping.service_host(ctx)
        if stepping.is_ip(name):
            raise ctx.fail(
                f"flow.dns() needs a name: service {ctx.service!r} is addressed by IP {name}",
                type=FailureType.SCRIPT_ERROR,
            )
    rdtype = options.record_type
    timeout_s = stepping.timeout_s(ctx, options.timeout)
    where = f"{options.nameserver}:{options.port}" if options.nameserver else ""
    async with stepping.probe_step(ctx, f"dns {rdtype} {name}") as recorder:
        stepping.record(ctx, recorder, {"name": name, "record_type": rdtype})
        with stepping.probing(ctx, recorder, "DNS", f"dns://{where}/{name}?type={rdtype}"):
            result = await probe_dns(
                name,
                record_type=rdtype,
                nameserver=options.nameserver,
                port=options.port,
                timeout_s=timeout_s,
            )
        details = {"answers": list(result.answers), "nameserver": result.nameserver}
        stepping.record(ctx, recorder, {**details, "dns_s": result.duration_s})
        stepping.record_facts(ctx, recorder, result)
        mismatch = answer_mismatch(
            rdtype, result.answers, expect=options.expect, expect_contains=options.expect_contains
        )
        if mismatch is not None:
            server = result.nameserver or "the system resolver"
            mismatch = Problem(
                f"DNS {rdtype} {name} at {server}: {mismatch.message}",
                mismatch.expected,
                mismatch.actual,
            )
            raise stepping.failure(ctx, recorder, FailureType.DNS, [mismatch])
    return result


def _title(options: DnsOptions, service: str) -> str:
    return f"dns {options.record_type} {options.name or service}"


PROBE = Probe(
    kind="dns",
    options=DnsOptions,
    facts=DnsResult,
    run=run_dns,
    title=_title,
    summary="resolve a name and compare the answers",
    templated=("name",),
)
