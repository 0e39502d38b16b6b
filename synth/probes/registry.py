"""Every protocol synth can probe, by the name a check uses for it. Adding a protocol is
one module in `synth.probes` (its options, facts and `PROBE`) plus one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from synth.model import FailureType
from synth.probes import browser, dns, tcp, tls
from synth.probes.contract import AnyProbe

if TYPE_CHECKING:
    from synth.checks.context import FlowContext

PROBES: Mapping[str, AnyProbe] = {
    probe.kind: probe
    for probe in (
        tcp.PROBE,
        dns.PROBE,
        tls.PROBE,
        browser.PROBE,
    )
}


def probe_named(kind: str) -> AnyProbe:
    """The probe of `kind`; KeyError naming the known ones."""
    try:
        return PROBES[kind]
    except KeyError:
        raise KeyError(f"no probe {kind!r}: synth knows {', '.join(PROBES)}") from None


async def run_probe(ctx: FlowContext, kind: str, options: Mapping[str, Any]) -> Any:
    """Validate `options` for the probe of `kind` and run it in the flow; a bad option or
    an unknown kind fails the step as a script error naming it."""
    probe = PROBES.get(kind)
    if probe is None:
        raise ctx.fail(
            f"flow.probe({kind!r}): no such probe; synth knows {', '.join(PROBES)}",
            type=FailureType.SCRIPT_ERROR,
        )
    try:
        validated = probe.options.model_validate(options)
    except ValidationError as error:
        raise ctx.fail(
            f"flow.{kind}(): {option_problems(error)}", type=FailureType.SCRIPT_ERROR
        ) from None
    return await probe.run(ctx, validated)


def option_problems(error: ValidationError) -> str:
    """A validation error as `key: reason; key: reason`."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)
