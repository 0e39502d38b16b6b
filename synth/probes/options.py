"""The value types of a probe's options, shared by every protocol and by the YAML schema:
one rule for a duration, a port, a `${...}` template or a one-or-many list, wherever it is
written."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from synth.checks.templating import references
from synth.units import parse_duration


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m)")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def _template(value: str) -> str:
    references(value)
    return value


def _one_or_many(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds, written as `250ms`, `30s`, `5m` or a number."""
Templated = Annotated[str, AfterValidator(_template)]
"""A text that may use `${name}` and `${secrets.NAME}`, rendered at run time."""
Names = Annotated[list[str], BeforeValidator(_one_or_many)]
"""One text or a list of them."""
Port = Annotated[int, Field(ge=1, le=65535)]


class ProbeOptions(BaseModel):
    """The options of one probe step: the body of its YAML key (`tcp: {host: ...}`) and the
    keyword arguments of `flow.probe(kind, ...)`. Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)
