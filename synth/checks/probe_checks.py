"""TCP, DNS and TLS probes as whole checks declared in one line: `tcp_check`, `dns_check`,
`tls_check` (each one step, `flow.tcp` / `flow.dns` / `flow.tls`)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypedDict, Unpack

from synth.checks.api import CheckDefinitionError, build_spec, collector
from synth.model import CheckFunc, CheckSpec, SourceLocation

if TYPE_CHECKING:
    from synth.checks.flow import Flow

__all__ = ["CheckOptions", "dns_check", "tcp_check", "tls_check"]


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
