"""The YAML check schema: pydantic models of a check file, with the value rules
(durations, templates, JSON paths, statuses, record types) and `${name}` use-before-capture."""

from __future__ import annotations

import functools
import json
import re
import typing
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from synth.checks.jsonpath import parse_path
from synth.checks.templating import (
    RESERVED,
    SECRETS_PREFIX,
    references,
    strings_in,
)
from synth.errors import SynthError
from synth.probes.options import Duration, Names, ProbeOptions, Templated
from synth.probes.registry import PROBES
from synth.redact import is_sensitive_name

Loc = tuple[str | int, ...]
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,80}")  # the rule of synth.checks.api.build_spec
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_STATUS_CLASS = re.compile(r"[1-5]xx")


class KeyProblem(SynthError, ValueError):
    """Raised by a model validator to blame one key (a location below the model)."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


# -- field types ------------------------------------------------------------------------------


def _templates_in(value: Any) -> Any:
    for text in strings_in(value):
        references(text)
    return value


def _json_path(value: str) -> str:
    parse_path(value)
    return value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
    return value


def _variable(value: str) -> str:
    if not _VARIABLE.fullmatch(value) or value in RESERVED:
        raise ValueError(
            f"invalid variable name {value!r}: use letters, digits and '_' "
            f"(not {' or '.join(sorted(RESERVED))})"
        )
    return value


def _status(value: Any) -> tuple[int | str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("give at least one status")
    wanted: list[int | str] = []
    for item in items:
        if isinstance(item, str) and _STATUS_CLASS.fullmatch(item.strip().lower()):
            wanted.append(item.strip().lower())
            continue
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item.strip())
        if not isinstance(item, int) or isinstance(item, bool) or not 100 <= item <= 599:
            raise ValueError(
                f"invalid status {item!r}: use a code (200), a list ([200, 204]) or a class (2xx)"
            )
        wanted.append(item)
    return tuple(wanted)


def _header_condition(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return {"equals": value} if isinstance(value, str) else value


def _param_value(value: Any) -> Any:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int | float | bool) for item in items):
        raise ValueError("expected a string, number or boolean, or a list of them")
    return _templates_in(value)


def _capture_shorthand(value: Any) -> Any:
    return {"json": value} if isinstance(value, str) else value


def _json_value(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON value: {exc}") from None
    return value


JsonPath = Annotated[str, AfterValidator(_json_path)]
Regex = Annotated[str, AfterValidator(_regex)]
Variable = Annotated[str, AfterValidator(_variable)]
ParamValue = Annotated[Any, AfterValidator(_param_value)]
Templates = Annotated[Any, AfterValidator(_templates_in)]
JsonType = Literal["string", "number", "boolean", "null", "array", "object"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- expectations and captures ----------------------------------------------------------------


class HeaderCondition(_Strict):
    """`{equals | contains | matches}`; a plain string means equals; `{}` means present."""

    equals: Templated | None = None
    contains: Templated | None = None
    matches: Regex | None = None


class JsonExpectation(_Strict):
    """One `expect.json` entry: conditions on the value at a JSON path (all must hold)."""

    path: JsonPath
    exists: bool | None = None
    equals: Templates = None
    type: JsonType | None = None
    contains: Templates = None
    matches: Regex | None = None
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    length: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> JsonExpectation:
        others = self.model_fields_set - {"path", "exists"}
        if self.exists is False and others:
            raise KeyProblem(("exists",), f"false contradicts {', '.join(sorted(others))}")
        return self


class Expect(_Strict):
    """What a request step's response must satisfy; status defaults to 2xx."""

    status: Annotated[tuple[int | str, ...], BeforeValidator(_status)] = ("2xx",)
    headers: dict[str, Annotated[HeaderCondition, BeforeValidator(_header_condition)]] = Field(
        default_factory=dict
    )
    json_: list[JsonExpectation] = Field(default_factory=list, alias="json")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    body_contains: Templated | None = None
    body_matches: Regex | None = None
    max_latency: Duration | None = None

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            import jsonschema  # ~3 MB a process; most checks never validate a schema

            try:
                jsonschema.validators.validator_for(value).check_schema(value)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"invalid JSON Schema: {exc.message}") from None
        return value


class Capture(_Strict):
    """A value to keep for later steps: a JSON path (the plain-string form) or a header."""

    json_: JsonPath | None = Field(default=None, alias="json")
    header: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Capture:
        if (self.json_ is None) == (self.header is None):
            raise ValueError("give a JSON path ($.token) or {header: name}")
        return self


# -- requests and probes ----------------------------------------------------------------------


class Request(_Strict):
    """The HTTP request of a step; strings may hold `${...}` references."""

    method: str = "GET"
    path: Templated | None = None
    url: Templated | None = None
    service: str | None = None
    headers: dict[str, Templated] = Field(default_factory=dict)
    params: dict[str, ParamValue] = Field(default_factory=dict)
    json_: Annotated[Any, AfterValidator(_json_value), AfterValidator(_templates_in)] = Field(
        default=None, alias="json"
    )
    form: dict[str, ParamValue] | None = None
    body: Templated | None = None
    timeout: Duration | None = None
    follow_redirects: bool | None = None
    max_redirects: Annotated[int, Field(ge=0, le=100)] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().upper()
            if value not in _METHODS:
                raise ValueError(f"unknown method {value!r} (use {', '.join(sorted(_METHODS))})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Request:
        if (self.path is None) == (self.url is None):
            raise ValueError("give either path (on the check's service) or url (absolute)")
        if self.url is not None:
            if not self.url.startswith(("http://", "https://")):
                raise KeyProblem(("url",), "url must be absolute (http:// or https://)")
            if self.service is not None:
                raise KeyProblem(("service",), "service applies to path, not to an absolute url")
        bodies = [key for key in ("json", "form", "body") if was_given(self, key)]
        if len(bodies) > 1:
            raise KeyProblem((bodies[1],), f"give one of json, form or body, not {bodies}")
        for key, value in (
            ("headers", self.headers),
            ("params", self.params),
            ("json", self.json_),
            ("form", self.form),
        ):
            inline = _inline_credential(value, ())
            if inline:
                raise KeyProblem(
                    (key, *inline),
                    f"{inline[-1]!r} looks like a credential written inline; reference a "
                    "configured secret instead: ${secrets.NAME}",
                )
        password = urlsplit(self.url).password if self.url is not None else None
        if password and "${" not in password:
            raise KeyProblem(("url",), "write the url's password as ${secrets.NAME}")
        return self


_PROBE_KINDS = tuple(PROBES)
_STEP_KINDS = ("request", *_PROBE_KINDS)


class StepFields(_Strict):
    """One named step: a request with expectations and captures, or a protocol probe (one
    key per probe of `synth.probes.registry`, added to `Step` below)."""

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    request: Request | None = None
    expect: Expect | None = None
    capture: dict[Variable, Annotated[Capture, BeforeValidator(_capture_shorthand)]] = Field(
        default_factory=dict
    )
    secret_captures: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> StepFields:
        kinds = [kind for kind in _STEP_KINDS if getattr(self, kind, None) is not None]
        if len(kinds) != 1:
            raise ValueError(
                f"a step has exactly one of {', '.join(_STEP_KINDS[:-1])} or {_STEP_KINDS[-1]}"
                + (f", not {' and '.join(kinds)}" if kinds else "")
            )
        if kinds[0] != "request":
            for key in ("expect", "capture", "secret_captures"):
                if key in self.model_fields_set:
                    raise KeyProblem((key,), f"{key} applies to request steps, not {kinds[0]}")
        for index, name in enumerate(self.secret_captures):
            if name not in self.capture:
                raise KeyProblem(
                    ("secret_captures", index), f"{name!r} is not captured by this step"
                )
        return self

    def probe(self) -> tuple[str, ProbeOptions] | None:
        """The probe this step runs and its options; None for a request step."""
        for kind in _PROBE_KINDS:
            options = getattr(self, kind, None)
            if options is not None:
                return kind, options
        return None

    def title(self, service: str) -> str:
        """The step's name, or one derived from what it does ("POST /api/login",
        "tcp db.internal:5432"); `service` is the check's."""
        if self.name is not None:
            return self.name
        if self.request is not None:
            target = self.request.path or self.request.url or ""
            return f"{self.request.method} {urlsplit(target).path or target}"
        chosen = self.probe()
        assert chosen is not None
        kind, options = chosen
        return PROBES[kind].title(options, service)


if typing.TYPE_CHECKING:
    Step = StepFields
else:
    Step = create_model(
        "Step",
        __base__=StepFields,
        __module__=__name__,
        **{kind: (probe.options | None, None) for kind, probe in PROBES.items()},
    )


class CheckModel(_Strict):
    """One declarative check; the same metadata as `@synth.check`."""

    name: str
    service: Annotated[str, Field(min_length=1)]
    envs: Names = Field(default_factory=list)
    every: Duration | None = None
    cron: str | None = None
    timeout: Duration = 30.0
    retries: Annotated[int, Field(ge=0, le=10)] | None = None
    sensitivity: Literal["low", "medium", "high"] | None = None
    follow_redirects: bool = True
    max_redirects: Annotated[int, Field(ge=0, le=100)] = 10
    tags: Names = Field(default_factory=list)
    playbook: str | None = None
    description: str = ""
    runbook: str | None = None
    steps: Annotated[list[Step], Field(min_length=1)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("name must be 1-80 characters of letters, digits, '_', '-' or '.'")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: float | None) -> float | None:
        if value is not None and value < 1:
            raise ValueError("every must be at least 1s")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value)
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CheckModel:
        if self.every is not None and self.cron is not None:
            raise KeyProblem(("cron",), "give either every or cron, not both")
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            title = step.title(self.service)
            if title in seen:
                raise KeyProblem(
                    ("steps", index, "name") if step.name else ("steps", index),
                    f"duplicate step name {title!r} (also steps[{seen[title]}]); "
                    "step names label metrics and reports",
                )
            seen[title] = index
        _captured_before_use(self.steps)
        return self


def _captured_before_use(steps: list[Step]) -> None:
    """Every `${name}` a step uses is captured by an earlier step (a step's own captures
    are taken after its request and expectations)."""
    captured: set[str] = set()
    for index, step in enumerate(steps):
        if not _may_reference(step):
            captured.update(step.capture)
            continue
        used = step.model_dump(
            by_alias=True, exclude={"name", "capture", "secret_captures"}, exclude_none=True
        )
        for loc, text in _strings_with_loc(used, ()):
            for name in references(text):
                if name in RESERVED or name.startswith(SECRETS_PREFIX) or name in captured:
                    continue
                earlier = ", ".join(sorted(captured)) or "none"
                raise KeyProblem(
                    ("steps", index, *loc),
                    f"${{{name}}} is used before any step captures it "
                    f"(captured by earlier steps: {earlier})",
                )
        captured.update(step.capture)


def _may_reference(step: StepFields) -> bool:
    """False when no string the step uses holds `${` (most steps): JSON escapes neither
    `$` nor `{`, so a string holding it holds it in the step's JSON too."""
    try:
        text = step.model_dump_json(
            by_alias=True, exclude={"name", "capture", "secret_captures"}, exclude_none=True
        )
    except ValueError:  # pydantic's serialization errors are ValueErrors: look closer
        return True
    return "${" in text


def _strings_with_loc(value: Any, loc: Loc) -> typing.Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_with_loc(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings_with_loc(item, (*loc, i))


def was_given(model: BaseModel, key: str) -> bool:
    """Whether the check's file wrote `key` (a field's alias, or its name)."""
    return _field_named(type(model), key) in model.model_fields_set


@functools.cache
def _field_named(model: type[BaseModel], key: str) -> str | None:
    """The field of `model` that `key` is written for."""
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return name
    return None


def _inline_credential(value: Any, loc: Loc) -> Loc | None:
    """Where the first credential-named key with a literal value (not a `${...}` reference)
    is, below `loc`."""
    if isinstance(value, dict):
        for key, item in value.items():
            if (
                isinstance(key, str)
                and is_sensitive_name(key)
                and isinstance(item, str)
                and item.strip()
                and "${" not in item
            ):
                return (*loc, key)
            found = _inline_credential(item, (*loc, str(key)))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _inline_credential(item, (*loc, index))
            if found is not None:
                return found
    return None
