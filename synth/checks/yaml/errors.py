"""Problem messages for YAML checks: validation errors turned into `file:line: message`,
with close-match suggestions for unknown keys."""

from __future__ import annotations

import types
import typing
from difflib import get_close_matches
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from synth.checks.yaml.schema import CheckModel, KeyProblem, Loc


def describe_errors(exc: ValidationError) -> list[tuple[Loc, str]]:
    described: list[tuple[Loc, str]] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        kind = error["type"]
        if isinstance(cause, KeyProblem):
            loc, message = (*loc, *cause.loc), cause.message
        elif isinstance(cause, ValueError):
            message = str(cause)
        elif kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}" + _suggest(str(loc[-1]), loc[:-1])
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
        else:
            message = error["msg"]
        described.append((loc, message))
    return described


def _suggest(key: str, parent: Loc) -> str:
    allowed = _keys_at(CheckModel, parent)
    close = get_close_matches(key, allowed, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(allowed)})" if allowed else ""


def _keys_at(model: Any, loc: Loc) -> list[str]:
    """The keys the schema allows at `loc` (walking model fields, lists and dicts)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if str(part) not in fields:
                return []
            annotation = fields[str(part)].annotation
        elif typing.get_origin(annotation) in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    for _ in range(10):  # Annotated and Optional nest a few levels at most
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            break
    return annotation


def location_text(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def item_label(item: Any, base: Loc) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return f"check {name!r}"
    return f"checks[{base[1]}]" if base else "check"


def yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        return ", ".join(parts) or str(exc)
    return str(exc)
