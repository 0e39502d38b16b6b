"""The one probe contract: what a protocol (`tcp`, `dns`, `tls`, ...) gives synth.

A protocol is one module in `synth.probes` that defines its options (a `ProbeOptions`
model), its facts (a frozen dataclass: the typed result) and a `Probe` value, plus one
line in `synth.probes.registry`. Python flows (`flow.probe("tcp", host=...)` and the
`flow.tcp(...)` shorthands) and YAML steps (`tcp: {host: ...}`) both reach it through
the registry: the YAML step key, the option validation, the default step name, the facts'
JSON form and their redaction all come from here.

`run(ctx, options)` runs inside a step (the one in progress, or one of its own named after
the probe — `synth.probes.stepping.probe_step`), records the facts on the step and returns
them; a network failure is a `ProbeError` and an unmet expectation a `CheckFailure`, each
with its failure type from the shared vocabulary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from synth.probes.options import ProbeOptions

if TYPE_CHECKING:
    from synth.checks.context import FlowContext

OptionsT = TypeVar("OptionsT", bound=ProbeOptions)
FactsT = TypeVar("FactsT")


@dataclass(frozen=True, slots=True)
class Probe(Generic[OptionsT, FactsT]):
    """One protocol. `kind` is its YAML key, its `flow.probe()` name and the `kind` of its
    facts in stored runs; `templated` names the options rendered with `${...}` per run."""

    kind: str
    options: type[OptionsT]
    facts: type[FactsT]
    run: Callable[[FlowContext, OptionsT], Awaitable[FactsT]]
    title: Callable[[OptionsT, str], str]
    """The step name of a YAML step without `name:`, from its options and the service."""
    summary: str
    """One line for error messages and docs: what the probe does."""
    templated: tuple[str, ...] = ()


AnyProbe = Probe[Any, Any]
