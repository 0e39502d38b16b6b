"""A probe step's typed facts in their JSON form: the result dataclass of its protocol
(`TcpResult`, `DnsResult`, `TlsResult`, ...), kept on `StepResult.facts` with its text
redacted, so outputs read `facts.not_after` instead of parsing `details["not_after"]`.

The kinds are those of `synth.probes.registry` (`{"kind": "tls", ...the fields}`).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from synth.probes.registry import PROBES

KINDS: Mapping[str, type] = {kind: probe.facts for kind, probe in PROBES.items()}
_KIND_OF: dict[type, str] = {cls: kind for kind, cls in KINDS.items()}


def facts_to_dict(facts: object) -> dict[str, Any]:
    """`{"kind": ..., field: value}`, datetimes as ISO 8601, tuples as lists."""
    kind = _KIND_OF.get(type(facts))
    if kind is None or not dataclasses.is_dataclass(facts) or isinstance(facts, type):
        raise ValueError(f"not probe facts: {type(facts).__name__}")
    data: dict[str, Any] = {"kind": kind}
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        data[field.name] = value
    return data


def facts_from_dict(data: Mapping[str, Any]) -> Any:
    """The facts `facts_to_dict` wrote; ValueError naming what is wrong."""
    kind = data.get("kind")
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"facts.kind must be one of {sorted(KINDS)}, not {kind!r}")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            raise ValueError(f"facts.{field.name} is missing")
        value = data[field.name]
        hint = hints[field.name]
        if hint is datetime:
            if not isinstance(value, str):
                raise ValueError(f"facts.{field.name} must be an ISO 8601 time")
            value = datetime.fromisoformat(value)
        elif typing.get_origin(hint) is tuple:
            if not isinstance(value, list):
                raise ValueError(f"facts.{field.name} must be a list")
            value = tuple(value)
        values[field.name] = value
    return cls(**values)
