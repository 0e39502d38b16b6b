"""TCP, DNS and TLS probes as steps of a flow (`flow.tcp`, `flow.dns`, `flow.tls`), with
expectations, and as whole checks declared in one line (`tcp_check`, `dns_check`,
`tls_check`).

A probe records into the step in progress, or, called outside `flow.step()`, into a step of
its own named after it ("tcp db.internal:5432"). Its result is the step's typed `facts`
(redacted; the step's last probe if it makes several), and their display form goes into
the step's `details`, so that reports can show them, also when the step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any, TypedDict, Unpack
from urllib.parse import urlsplit

from synth.checks.api import CheckDefinitionError, build_spec, collector
from synth.checks.context import FlowContext, InFlight, StepRecorder
from synth.checks.failures import CheckFailure
from synth.config import TlsSettings
from synth.model import CheckFunc, CheckSpec, Failure, FailureType, SourceLocation
from synth.probes.dns import DnsResult, probe_dns
from synth.probes.errors import ProbeError
from synth.probes.facts import redacted
from synth.probes.tcp import TcpResult, probe_tcp
from synth.probes.tls import TlsResult, probe_tls
from synth.units import parse_duration

if TYPE_CHECKING:
    from synth.checks.flow import Flow

__all__ = [
    "Answers",
    "CheckOptions",
    "DnsResult",
    "Problem",
    "TcpResult",
    "TlsResult",
    "answer_mismatch",
    "dns",
    "dns_check",
    "normalize_answer",
    "tcp",
    "tcp_check",
    "tls",
    "tls_check",
    "tls_problems",
]


Answers = Iterable[str]
"""DNS answers as check code writes them: `["192.0.2.1"]`, `["10 mail.example.com."]`."""


# -- flow steps ----------------------------------------------------------------------------


async def tcp(
    ctx: FlowContext,
    host: str | None = None,
    port: int | None = None,
    *,
    service: str | None = None,
    timeout: str | float | None = None,
) -> TcpResult:
    """Connect to `host:port` (default: the service's base URL host and port); fails the step
    as `dns`, `connect` or `timeout`."""
    endpoint = _endpoint(ctx, host, port, service, protocol="tcp")
    timeout_s = _timeout(ctx, timeout)
    async with _probe_step(ctx, f"tcp {endpoint.label}") as recorder:
        _record(ctx, recorder, {"target": endpoint.label})
        with _probing(ctx, recorder, "TCP", f"tcp://{endpoint.label}"):
            result = await probe_tcp(endpoint.host, endpoint.port, timeout_s=timeout_s)
        _record(
            ctx,
            recorder,
            {"address": result.address, "dns_s": result.dns_s, "connect_s": result.connect_s},
        )
        recorder.facts = redacted(result, ctx.redactor.text)
    return result


async def dns(
    ctx: FlowContext,
    name: str | None = None,
    *,
    record_type: str = "A",
    expect: Iterable[str] | None = None,
    expect_contains: Iterable[str] | None = None,
    nameserver: str | None = None,
    port: int = 53,
    timeout: str | float | None = None,
) -> DnsResult:
    """Query `name` (default: the service's host) for `record_type`. `expect`: the answers
    must be exactly these; `expect_contains`: they must include these. Answers compare
    regardless of order, case and a name's trailing dot. Fails the step as `dns`."""
    if name is None:
        name = _service_host(ctx, None)
        if _is_ip(name):
            raise ctx.fail(
                f"flow.dns() needs a name: service {ctx.service!r} is addressed by IP {name}",
                type=FailureType.SCRIPT_ERROR,
            )
    rdtype = record_type.upper()
    timeout_s = _timeout(ctx, timeout)
    where = f"{nameserver}:{port}" if nameserver else ""
    async with _probe_step(ctx, f"dns {rdtype} {name}") as recorder:
        _record(ctx, recorder, {"name": name, "record_type": rdtype})
        with _probing(ctx, recorder, "DNS", f"dns://{where}/{name}?type={rdtype}"):
            result = await probe_dns(
                name, record_type=rdtype, nameserver=nameserver, port=port, timeout_s=timeout_s
            )
        facts = {"answers": list(result.answers), "nameserver": result.nameserver}
        _record(ctx, recorder, {**facts, "dns_s": result.duration_s})
        recorder.facts = redacted(result, ctx.redactor.text)
        mismatch = answer_mismatch(
            rdtype, result.answers, expect=expect, expect_contains=expect_contains
        )
        if mismatch is not None:
            server = result.nameserver or "the system resolver"
            mismatch = Problem(
                f"DNS {rdtype} {name} at {server}: {mismatch.message}",
                mismatch.expected,
                mismatch.actual,
            )
            raise _failure(ctx, recorder, FailureType.DNS, [mismatch])
    return result


async def tls(
    ctx: FlowContext,
    host: str | None = None,
    port: int | None = None,
    *,
    service: str | None = None,
    server_name: str | None = None,
    min_days: float | None = 14,
    check_chain: bool = True,
    check_hostname: bool = True,
    timeout: str | float | None = None,
) -> TlsResult:
    """Read the certificate of `host:port` (default: the service's host, its port or 443)
    and fail the step as `tls` if it has expired, has fewer than `min_days` left, does not
    chain to a trusted CA (the environment's `tls.ca_file`, else the system CAs) or is
    not valid for the name. The certificate's facts go into the step's details."""
    endpoint = _endpoint(ctx, host, port, service, protocol="tls")
    timeout_s = _timeout(ctx, timeout)
    ca_file = str(endpoint.tls.ca_file) if endpoint.tls.ca_file else None
    async with _probe_step(ctx, f"tls {endpoint.label}") as recorder:
        _record(ctx, recorder, {"target": endpoint.label})
        with _probing(ctx, recorder, "TLS", f"tls://{endpoint.label}"):
            result = await probe_tls(
                endpoint.host,
                endpoint.port,
                server_name=server_name,
                ca_file=ca_file,
                timeout_s=timeout_s,
            )
        _record(ctx, recorder, _tls_details(result))
        recorder.facts = redacted(result, ctx.redactor.text)
        problems = tls_problems(
            result, min_days=min_days, check_chain=check_chain, check_hostname=check_hostname
        )
        if problems:
            raise _failure(ctx, recorder, FailureType.TLS, problems)
    return result


# -- expectations (pure) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """One unmet expectation: what went wrong, what was expected, what was found."""

    message: str
    expected: str
    actual: str


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


def tls_problems(
    result: TlsResult,
    *,
    min_days: float | None = 14,
    check_chain: bool = True,
    check_hostname: bool = True,
) -> list[Problem]:
    """Everything wrong with a certificate, the most urgent first: expired, untrusted,
    misnamed, expiring within `min_days` (None: not checked)."""
    problems: list[Problem] = []
    not_after = result.not_after.isoformat()
    if result.expired:
        problems.append(
            Problem(
                f"certificate has expired: not valid after {not_after} "
                f"({-result.days_left:.1f} days ago)",
                "a certificate that has not expired",
                f"expired {not_after}",
            )
        )
    # OpenSSL names only its first error; an expiry already reported above is not repeated.
    expiry_only = result.expired and "expired" in (result.verify_error or "")
    if check_chain and not result.chain_valid and not expiry_only:
        problems.append(
            Problem(
                f"certificate chain is not trusted: {result.verify_error}",
                "a chain to a trusted CA",
                f"{result.verify_error} (issuer {result.issuer})",
            )
        )
    if check_hostname and not result.hostname_valid:
        sans = ", ".join(result.sans) or "none"
        problems.append(
            Problem(
                f"certificate is not valid for {result.server_name} (SANs: {sans})",
                f"a SAN matching {result.server_name}",
                f"SANs: {sans}",
            )
        )
    if min_days is not None and not result.expired and result.days_left < min_days:
        problems.append(
            Problem(
                f"certificate expires in {result.days_left:.1f} days (minimum {min_days:g})",
                f"at least {min_days:g} days left",
                f"{result.days_left:.1f} days left, not valid after {not_after}",
            )
        )
    return problems


def _normalized(record_type: str, values: Iterable[str]) -> set[str]:
    items = [values] if isinstance(values, str) else values
    return {normalize_answer(record_type, v) for v in items}


# -- whole checks --------------------------------------------------------------------------


class CheckOptions(TypedDict, total=False):
    """The options of `@synth.check` that a one-line probe check accepts."""

    envs: Iterable[str]
    every: str | float | None
    cron: str | None
    timeout: str | float
    retries: int
    tags: Iterable[str]
    playbook: str | None
    description: str | None
    runbook: str | None


def tcp_check(
    name: str,
    *,
    service: str,
    host: str | None = None,
    port: int | None = None,
    **options: Unpack[CheckOptions],
) -> CheckSpec:
    """Declare a check whose only step connects to `host:port` (default: the service's).

    Example: `tcp_check("db-port", service="orders", host="db.internal", port=5432)`
    """

    async def run(flow: Flow) -> None:
        await flow.tcp(host, port)

    where = _where(host, port)
    return _declare(name, run, service, options, f"TCP connection to {where} is accepted")


def dns_check(
    name: str,
    *,
    service: str,
    query: str | None = None,
    record_type: str = "A",
    expect: Iterable[str] | None = None,
    expect_contains: Iterable[str] | None = None,
    nameserver: str | None = None,
    port: int = 53,
    **options: Unpack[CheckOptions],
) -> CheckSpec:
    """Declare a check whose only step resolves `query` (default: the service's host).

    Example: `dns_check("mx", service="mail", query="example.com", record_type="MX",
    expect_contains=["10 mail.example.com."])`
    """
    expected = _frozen(expect)
    contains = _frozen(expect_contains)

    async def run(flow: Flow) -> None:
        await flow.dns(
            query,
            record_type=record_type,
            expect=expected,
            expect_contains=contains,
            nameserver=nameserver,
            port=port,
        )

    described = f"{record_type.upper()} {query or 'the service host'} resolves"
    return _declare(name, run, service, options, described)


def tls_check(
    name: str,
    *,
    service: str,
    host: str | None = None,
    port: int | None = None,
    server_name: str | None = None,
    min_days: float | None = 14,
    check_chain: bool = True,
    check_hostname: bool = True,
    **options: Unpack[CheckOptions],
) -> CheckSpec:
    """Declare a check whose only step verifies the certificate at `host:port` (default:
    the service's), with at least `min_days` left.

    Example: `tls_check("shop-cert", service="shop", min_days=21, every="1h")`
    """

    async def run(flow: Flow) -> None:
        await flow.tls(
            host,
            port,
            server_name=server_name,
            min_days=min_days,
            check_chain=check_chain,
            check_hostname=check_hostname,
        )

    described = f"the certificate of {_where(host, port)} is valid"
    return _declare(name, run, service, options, described)


_OPTION_NAMES = frozenset(CheckOptions.__annotations__)


def _declare(
    name: str, func: CheckFunc, service: str, options: CheckOptions, description: str
) -> CheckSpec:
    source = _caller(depth=3)
    unknown = sorted(set(options) - _OPTION_NAMES)
    if unknown:
        raise CheckDefinitionError(
            f"check {name!r}: unknown option(s) {', '.join(unknown)}", source
        )
    given_description = options.get("description")
    spec = build_spec(
        name=name,
        func=func,
        service=service,
        envs=options.get("envs", ()),
        every=options.get("every"),
        cron=options.get("cron"),
        timeout=options.get("timeout", "30s"),
        retries=options.get("retries", 0),
        tags=options.get("tags", ()),
        playbook=options.get("playbook"),
        description=given_description if given_description is not None else description,
        runbook=options.get("runbook"),
        source=source,
        kind="python",
    )
    if collector.active is not None:
        collector.active.append(spec)
    func.__synth_check__ = spec  # type: ignore[attr-defined]
    return spec


def _caller(depth: int) -> SourceLocation | None:
    """Where the factory was called from: the checks file, for error messages."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return None
    return SourceLocation(path=frame.f_code.co_filename, line=frame.f_lineno)


def _where(host: str | None, port: int | None) -> str:
    if host is None:
        return "the service" + (f" on port {port}" if port is not None else "")
    return f"{host}:{port}" if port is not None else host


def _frozen(values: Iterable[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    return (values,) if isinstance(values, str) else tuple(values)


# -- plumbing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Endpoint:
    host: str
    port: int
    tls: TlsSettings

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _endpoint(
    ctx: FlowContext, host: str | None, port: int | None, service: str | None, *, protocol: str
) -> _Endpoint:
    """`host`/`port`, defaulting to those of the service's base URL; TLS settings are
    the service's when the service is the target, else the environment's."""
    environment = ctx.environment
    if host is not None and service is None:
        if port is None and protocol == "tcp":
            raise ctx.fail(f"flow.tcp({host!r}) needs a port", type=FailureType.SCRIPT_ERROR)
        return _Endpoint(host, port or 443, environment.tls)
    target = ctx.target(service)
    parts = urlsplit(target.base_url)
    assert parts.hostname is not None  # validated with the configuration
    if protocol == "tls":
        default_port = parts.port or 443
    else:
        default_port = parts.port or (443 if parts.scheme == "https" else 80)
    return _Endpoint(
        host or parts.hostname,
        port or default_port,
        target.tls or environment.tls,
    )


def _service_host(ctx: FlowContext, service: str | None) -> str:
    hostname = urlsplit(ctx.target(service).base_url).hostname
    assert hostname is not None  # validated with the configuration
    return hostname


def _timeout(ctx: FlowContext, timeout: str | float | None) -> float:
    if timeout is None:
        return ctx.runner.request_timeout
    return parse_duration(timeout)


@contextlib.asynccontextmanager
async def _probe_step(ctx: FlowContext, name: str) -> AsyncIterator[StepRecorder]:
    """The step in progress, or an implicit step named after the probe."""
    current = ctx.current
    if current is not None:
        yield current
        return
    async with ctx.step(name) as recorder:
        recorder.implicit = True
        yield recorder


@contextlib.contextmanager
def _probing(ctx: FlowContext, recorder: StepRecorder, kind: str, uri: str) -> Iterator[None]:
    """Mark the probe as in flight (a check timeout names it) and turn a network failure
    into the step's failure."""
    shown = ctx.redactor.text(uri)
    ctx.in_flight = InFlight(kind, shown)
    cancelled = False
    try:
        yield
    except ProbeError as error:
        failure = Failure(
            type=error.failure_type, message=ctx.redactor.text(error.message), url=shown
        )
        raise CheckFailure(failure, step=recorder.name) from None
    except asyncio.CancelledError:
        cancelled = True  # by the check's deadline: stay in flight so the timeout names it
        raise
    finally:
        if not cancelled:
            ctx.in_flight = None


def _record(ctx: FlowContext, recorder: StepRecorder, facts: dict[str, Any]) -> None:
    """Add facts to the step's details, with secrets masked (a TXT record can hold one)."""
    redact = ctx.redactor.text
    for key, value in facts.items():
        if isinstance(value, str):
            value = redact(value)
        elif isinstance(value, list):
            value = [redact(v) if isinstance(v, str) else v for v in value]
        recorder.details[key] = value


def _failure(
    ctx: FlowContext, recorder: StepRecorder, type: FailureType, problems: list[Problem]
) -> CheckFailure:
    redact = ctx.redactor.text
    return CheckFailure(
        Failure(
            type=type,
            message=redact("; ".join(p.message for p in problems)),
            expected=redact("; ".join(p.expected for p in problems)),
            actual=redact("; ".join(p.actual for p in problems)),
        ),
        step=recorder.name,
    )


def _tls_details(result: TlsResult) -> dict[str, Any]:
    return {
        "server_name": result.server_name,
        "subject": result.subject,
        "issuer": result.issuer,
        "not_before": result.not_before.astimezone(UTC).isoformat(),
        "not_after": result.not_after.astimezone(UTC).isoformat(),
        "days_left": round(result.days_left, 2),
        "sans": list(result.sans),
        "chain_valid": result.chain_valid,
        "hostname_valid": result.hostname_valid,
        "verify_error": result.verify_error,
        "tls_version": result.tls_version,
        "cipher": result.cipher,
        "handshake_s": result.handshake_s,
    }


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
