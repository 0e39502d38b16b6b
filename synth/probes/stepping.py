"""What every probe's `run` shares: the target's endpoint, the step it records into, the
in-flight mark a check timeout names, and failures with secrets masked."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from synth.checks.context import FlowContext, InFlight, StepRecorder
from synth.checks.failures import CheckFailure
from synth.config import TlsSettings
from synth.model import Failure, FailureType
from synth.probes.errors import ProbeError


@dataclass(frozen=True, slots=True)
class Problem:
    """One unmet expectation: what went wrong, what was expected, what was found."""

    message: str
    expected: str
    actual: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a probe connects, with the TLS settings that apply there."""

    host: str
    port: int
    tls: TlsSettings

    @property
    def label(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def endpoint(
    ctx: FlowContext,
    host: str | None,
    port: int | None,
    service: str | None,
    *,
    default_port: Callable[[str, int | None], int],
) -> Endpoint:
    """`host`/`port`, defaulting to those of the service's base URL (`default_port(scheme,
    url_port)` when the URL names none); TLS settings are the service's when the service is
    the target, else the environment's."""
    environment = ctx.environment
    if host is not None and service is None:
        return Endpoint(host, port or 443, environment.tls)
    target = ctx.target(service)
    parts = urlsplit(target.base_url)
    assert parts.hostname is not None  # validated with the configuration
    return Endpoint(
        host or parts.hostname,
        port or default_port(parts.scheme, parts.port),
        target.tls or environment.tls,
    )


def endpoint_title(kind: str, host: str | None, port: int | None, service: str) -> str:
    """The default step name of a probe of host:port ("tcp db.internal:5432"), written from
    its options before anything is resolved."""
    return f"{kind} {host or service}" + (f":{port}" if port is not None else "")


def service_host(ctx: FlowContext, service: str | None = None) -> str:
    """The host of the service's base URL."""
    hostname = urlsplit(ctx.target(service).base_url).hostname
    assert hostname is not None  # validated with the configuration
    return hostname


def timeout_s(ctx: FlowContext, timeout: float | None) -> float:
    """The probe's timeout, else the runner's request timeout."""
    return ctx.runner.request_timeout if timeout is None else timeout


@contextlib.asynccontextmanager
async def probe_step(ctx: FlowContext, name: str) -> AsyncIterator[StepRecorder]:
    """The step in progress, or an implicit step named after the probe."""
    current = ctx.current
    if current is not None:
        yield current
        return
    async with ctx.step(name) as recorder:
        recorder.implicit = True
        yield recorder


@contextlib.contextmanager
def probing(ctx: FlowContext, recorder: StepRecorder, kind: str, uri: str) -> Iterator[None]:
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


def record(ctx: FlowContext, recorder: StepRecorder, details: dict[str, Any]) -> None:
    """Add to the step's details, with secrets masked (a TXT record can hold one)."""
    redact = ctx.redactor.text
    for key, value in details.items():
        if isinstance(value, str):
            value = redact(value)
        elif isinstance(value, list):
            value = [redact(v) if isinstance(v, str) else v for v in value]
        recorder.details[key] = value


def record_facts(ctx: FlowContext, recorder: StepRecorder, facts: Any) -> None:
    """The step's typed facts (its last probe's), redacted."""
    recorder.facts = redacted(facts, ctx.redactor.text)


def redacted(facts: Any, redact: Callable[[str], str]) -> Any:
    """`facts` (a dataclass) with every text, and every text in a tuple, passed through
    `redact`: a TXT record or a certificate subject can hold a secret like any output."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        if isinstance(value, str):
            changes[field.name] = redact(value)
        elif isinstance(value, tuple):
            changes[field.name] = tuple(redact(v) if isinstance(v, str) else v for v in value)
    return dataclasses.replace(facts, **changes)


def failure(
    ctx: FlowContext, recorder: StepRecorder, type: FailureType, problems: list[Problem]
) -> CheckFailure:
    """The step's failure for unmet expectations, secrets masked."""
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


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
