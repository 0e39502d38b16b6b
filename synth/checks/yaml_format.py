"""The declarative form of a check: a YAML file compiled to the same `CheckSpec` as a
Python check, whose function drives the same `Flow` API, so both behave identically.

A file holds one check, or several under `checks: [...]`. Every problem is reported with
the file and line of the offending node, and the other checks of the file still load.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

import dns.rdatatype
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from yaml.composer import Composer, ComposerError

from synth.checks.api import CheckDefinitionError, build_spec
from synth.checks.failures import CheckFailure
from synth.checks.flow import Flow
from synth.checks.jsonpath import parse_path
from synth.checks.response import MISSING, Response
from synth.checks.templating import (
    RESERVED,
    SECRETS_PREFIX,
    Lookup,
    references,
    render,
    render_text,
    strings_in,
)
from synth.model import CheckSpec, FailureType, SourceLocation
from synth.redact import is_sensitive_name
from synth.units import parse_duration

if typing.TYPE_CHECKING:
    from synth.checks.loader import LoadProblem

Loc = tuple[str | int, ...]
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,80}")  # the rule of synth.checks.api.build_spec
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_STATUS_CLASS = re.compile(r"[1-5]xx")


class _KeyProblem(ValueError):
    """Raised by a model validator to blame one key (a location below the model)."""

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


# -- field types ------------------------------------------------------------------------------


def _duration(value: Any) -> float:
    if not isinstance(value, str | int | float):
        raise ValueError(f"not a duration: {value!r} (use e.g. 250ms, 30s, 5m)")
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def _template(value: str) -> str:
    references(value)
    return value


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


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


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


def _record_type(value: str) -> str:
    text = value.strip().upper()
    try:
        dns.rdatatype.from_text(text)
    except dns.rdatatype.UnknownRdatatype:
        raise ValueError(f"unknown DNS record type {value!r}") from None
    return text


Duration = Annotated[float, BeforeValidator(_duration)]
Templated = Annotated[str, AfterValidator(_template)]
JsonPath = Annotated[str, AfterValidator(_json_path)]
Regex = Annotated[str, AfterValidator(_regex)]
Variable = Annotated[str, AfterValidator(_variable)]
Names = Annotated[list[str], BeforeValidator(_one_or_many)]
Port = Annotated[int, Field(ge=1, le=65535)]
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
            raise _KeyProblem(("exists",), f"false contradicts {', '.join(sorted(others))}")
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
                raise _KeyProblem(("url",), "url must be absolute (http:// or https://)")
            if self.service is not None:
                raise _KeyProblem(("service",), "service applies to path, not to an absolute url")
        bodies = [key for key in ("json", "form", "body") if _given(self, key)]
        if len(bodies) > 1:
            raise _KeyProblem((bodies[1],), f"give one of json, form or body, not {bodies}")
        for key, value in (
            ("headers", self.headers),
            ("params", self.params),
            ("json", self.json_),
            ("form", self.form),
        ):
            inline = _inline_credential(value, ())
            if inline:
                raise _KeyProblem(
                    (key, *inline),
                    f"{inline[-1]!r} looks like a credential written inline; reference a "
                    "configured secret instead: ${secrets.NAME}",
                )
        password = urlsplit(self.url).password if self.url is not None else None
        if password and "${" not in password:
            raise _KeyProblem(("url",), "write the url's password as ${secrets.NAME}")
        return self


class TcpProbe(_Strict):
    """Connect to host:port (default: the service's host and port)."""

    host: Templated | None = None
    port: Port | None = None
    service: str | None = None
    timeout: Duration | None = None

    @model_validator(mode="after")
    def _port_with_host(self) -> TcpProbe:
        if self.host is not None and self.service is None and self.port is None:
            raise ValueError("tcp with a host needs a port")
        return self


class DnsProbe(_Strict):
    """Resolve a name and compare the answers."""

    name: Templated | None = None
    record_type: Annotated[str, AfterValidator(_record_type)] = "A"
    expect: Names | None = None
    expect_contains: Names | None = None
    nameserver: str | None = None
    port: Port = 53
    timeout: Duration | None = None


class TlsProbe(_Strict):
    """Handshake and check the certificate: chain, hostname, days until expiry."""

    host: Templated | None = None
    port: Port | None = None
    service: str | None = None
    server_name: str | None = None
    min_days: Annotated[float, Field(ge=0)] | None = 14
    check_chain: bool = True
    check_hostname: bool = True
    timeout: Duration | None = None


_STEP_KINDS = ("request", "tcp", "dns", "tls")


class Step(_Strict):
    """One named step: a request with expectations and captures, or a protocol probe."""

    name: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    request: Request | None = None
    tcp: TcpProbe | None = None
    dns: DnsProbe | None = None
    tls: TlsProbe | None = None
    expect: Expect | None = None
    capture: dict[Variable, Annotated[Capture, BeforeValidator(_capture_shorthand)]] = Field(
        default_factory=dict
    )
    secret_captures: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Step:
        kinds = [kind for kind in _STEP_KINDS if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "a step has exactly one of request, tcp, dns or tls"
                + (f", not {' and '.join(kinds)}" if kinds else "")
            )
        if kinds[0] != "request":
            for key in ("expect", "capture", "secret_captures"):
                if key in self.model_fields_set:
                    raise _KeyProblem((key,), f"{key} applies to request steps, not {kinds[0]}")
        for index, name in enumerate(self.secret_captures):
            if name not in self.capture:
                raise _KeyProblem(
                    ("secret_captures", index), f"{name!r} is not captured by this step"
                )
        return self

    def title(self, service: str) -> str:
        """The step's name, or one derived from what it does ("POST /api/login",
        "tcp db.internal:5432"); `service` is the check's."""
        if self.name is not None:
            return self.name
        if self.request is not None:
            target = self.request.path or self.request.url or ""
            return f"{self.request.method} {urlsplit(target).path or target}"
        if self.dns is not None:
            return f"dns {self.dns.record_type} {self.dns.name or service}"
        probe = self.tcp or self.tls
        assert probe is not None
        kind = "tcp" if self.tcp is not None else "tls"
        where = probe.host or probe.service or service
        return f"{kind} {where}" + (f":{probe.port}" if probe.port is not None else "")


class CheckModel(_Strict):
    """One declarative check; the same metadata as `@synth.check`."""

    name: str
    service: Annotated[str, Field(min_length=1)]
    envs: Names = Field(default_factory=list)
    every: Duration | None = None
    cron: str | None = None
    timeout: Duration = 30.0
    retries: Annotated[int, Field(ge=0, le=10)] = 0
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
            raise _KeyProblem(("cron",), "give either every or cron, not both")
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            title = step.title(self.service)
            if title in seen:
                raise _KeyProblem(
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
        used = step.model_dump(
            by_alias=True, exclude={"name", "capture", "secret_captures"}, exclude_none=True
        )
        for loc, text in _strings_with_loc(used, ()):
            for name in references(text):
                if name in RESERVED or name.startswith(SECRETS_PREFIX) or name in captured:
                    continue
                earlier = ", ".join(sorted(captured)) or "none"
                raise _KeyProblem(
                    ("steps", index, *loc),
                    f"${{{name}}} is used before any step captures it "
                    f"(captured by earlier steps: {earlier})",
                )
        captured.update(step.capture)


def _strings_with_loc(value: Any, loc: Loc) -> typing.Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_with_loc(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _strings_with_loc(item, (*loc, i))


def _given(model: BaseModel, key: str) -> bool:
    return any((f.alias or name) == key for name, f in _fields_set(model))


def _fields_set(model: BaseModel) -> list[tuple[str, Any]]:
    fields = type(model).model_fields
    return [(name, fields[name]) for name in model.model_fields_set]


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


# -- compiling to a check function ------------------------------------------------------------

StepFunc = Callable[[Flow], Awaitable[None]]


def compile_check(model: CheckModel, source: SourceLocation | None) -> CheckSpec:
    """Build the CheckSpec of a validated check (CheckDefinitionError if build_spec rejects)."""
    steps = tuple(_compile_step(step, model.service) for step in model.steps)

    async def run(flow: Flow) -> None:
        for step in steps:
            await step(flow)

    run.__name__ = run.__qualname__ = model.name.replace("-", "_").replace(".", "_")
    return build_spec(
        name=model.name,
        func=run,
        service=model.service,
        envs=model.envs,
        every=model.every,
        cron=model.cron,
        timeout=model.timeout,
        retries=model.retries,
        tags=model.tags,
        playbook=model.playbook,
        description=model.description,
        runbook=model.runbook,
        source=source,
        kind="yaml",
        bounded=not _uses_regex(model),
        follow_redirects=model.follow_redirects,
        max_redirects=model.max_redirects,
    )


def _uses_regex(model: CheckModel) -> bool:
    """Whether any expectation of the check is a regular expression (`matches`, or a JSON
    Schema `pattern`): a pattern can backtrack for as long as it likes."""
    for step in model.steps:
        expect = step.expect
        if expect is None:
            continue
        if expect.body_matches is not None:
            return True
        if any(c.matches is not None for c in expect.headers.values()):
            return True
        if any(j.matches is not None for j in expect.json_):
            return True
        if expect.schema_ is not None and _has_pattern(expect.schema_):
            return True
    return False


def _has_pattern(schema: object) -> bool:
    if isinstance(schema, dict):
        return any(
            key in ("pattern", "patternProperties") or _has_pattern(value)
            for key, value in schema.items()
        )
    if isinstance(schema, list):
        return any(_has_pattern(item) for item in schema)
    return False


def _compile_step(step: Step, service: str) -> StepFunc:
    name = step.title(service)
    if step.request is not None:
        return _request_step(name, step.request, step.expect or Expect(), step)
    if step.tcp is not None:
        tcp = step.tcp

        async def run_tcp(flow: Flow) -> None:
            async with flow.step(name):
                host = _render_optional(tcp.host, _lookup(flow, name))
                await flow.tcp(host, tcp.port, service=tcp.service, timeout=tcp.timeout)

        return run_tcp
    if step.dns is not None:
        probe = step.dns

        async def run_dns(flow: Flow) -> None:
            async with flow.step(name):
                await flow.dns(
                    _render_optional(probe.name, _lookup(flow, name)),
                    record_type=probe.record_type,
                    expect=probe.expect,
                    expect_contains=probe.expect_contains,
                    nameserver=probe.nameserver,
                    port=probe.port,
                    timeout=probe.timeout,
                )

        return run_dns
    tls = step.tls
    assert tls is not None

    async def run_tls(flow: Flow) -> None:
        async with flow.step(name):
            await flow.tls(
                _render_optional(tls.host, _lookup(flow, name)),
                tls.port,
                service=tls.service,
                server_name=tls.server_name,
                min_days=tls.min_days,
                check_chain=tls.check_chain,
                check_hostname=tls.check_hostname,
                timeout=tls.timeout,
            )

    return run_tls


def _request_step(name: str, request: Request, expect: Expect, step: Step) -> StepFunc:
    target = request.path if request.path is not None else request.url
    assert target is not None
    has_json = _given(request, "json")
    secret = None
    if step.secret_captures:
        secret = _SecretCaptures(tuple(step.secret_captures), dict(step.capture))
    return _RequestStep(
        name=name,
        method=request.method,
        target=target,
        service=request.service,
        timeout=request.timeout,
        params=request.params or None,
        headers=tuple(request.headers.items()) or None,
        has_json=has_json,
        json_body=request.json_ if has_json else None,
        form=request.form,
        body=request.body,
        follow_redirects=request.follow_redirects,
        max_redirects=request.max_redirects,
        expect=_shared_expectation(expect),
        captures=tuple(step.capture.items()) or None,
        secret=secret,
    )


@dataclass(frozen=True, slots=True)
class _RequestStep:
    """A compiled request step: plain values, not the validated models or a closure
    (~2.5 KB less a step: ~12 MB over 5,000 one-step checks in every process that loads
    them); identical expectations, common across checks, are one shared object."""

    name: str
    method: str
    target: str
    service: str | None
    timeout: float | None
    params: dict[str, Any] | None
    headers: tuple[tuple[str, str], ...] | None
    has_json: bool
    json_body: Any
    form: dict[str, Any] | None
    body: str | None
    follow_redirects: bool | None
    max_redirects: int | None
    expect: Expect
    captures: tuple[tuple[str, Capture], ...] | None
    secret: _SecretCaptures | None

    async def __call__(self, flow: Flow) -> None:
        async with flow.step(self.name):
            lookup = _lookup(flow, self.name)
            params, headers = self.params, self.headers
            response = await flow.request(
                self.method,
                render_text(self.target, lookup),
                service=self.service,
                params=(render(params, lookup) or None) if params else None,
                headers={k: render_text(v, lookup) for k, v in headers} if headers else None,
                json=render(self.json_body, lookup) if self.has_json else MISSING,
                data=render(self.form, lookup) if self.form is not None else None,
                content=_render_optional(self.body, lookup),
                timeout=self.timeout,
                follow_redirects=self.follow_redirects,
                max_redirects=self.max_redirects,
            )
            # Before any expectation can fail and show the body: redact secret captures.
            if self.secret is not None:
                self.secret.mark(flow, response, strict=False)
            _check(response, self.expect, lookup)
            if self.captures is not None:
                for variable, capture in self.captures:
                    flow.vars[variable] = _captured(response, capture)
            if self.secret is not None:
                self.secret.mark(flow, response, strict=True)


_EXPECTATIONS: dict[str, Expect] = {}
_EXPECTATIONS_MAX = 10_000


def _shared_expectation(expect: Expect) -> Expect:
    """One object for every equal expectation (they are never modified after loading)."""
    key = expect.model_dump_json(by_alias=True)
    found = _EXPECTATIONS.get(key)
    if found is None:
        if len(_EXPECTATIONS) >= _EXPECTATIONS_MAX:  # all different: sharing saves nothing
            return expect
        found = _EXPECTATIONS[key] = expect
    return found


@dataclass(frozen=True, slots=True)
class _SecretCaptures:
    """Captures marked secret: their values are redacted wherever the run shows them."""

    variables: tuple[str, ...]
    captures: dict[str, Capture]

    def mark(self, flow: Flow, response: Response, *, strict: bool) -> None:
        for variable in self.variables:
            if strict:
                value = flow.vars.get(variable)
            else:
                try:
                    value = _captured(response, self.captures[variable])
                except CheckFailure:
                    continue  # not there: the expectations or the capture will say so
            if value is not None:
                flow.mark_secret(value if isinstance(value, str) else json.dumps(value))


def _lookup(flow: Flow, step: str) -> Lookup:
    """Resolve `${...}` references during one step; an undefined variable is the check's
    own mistake, so it fails the step as `script_error`."""

    def lookup(name: str) -> Any:
        if name == "env":
            return flow.env
        if name.startswith(SECRETS_PREFIX):
            return flow.secret(name.removeprefix(SECRETS_PREFIX))
        if name in flow.vars:
            return flow.vars[name]
        known = ", ".join(sorted(flow.vars)) or "none"
        raise flow.fail(
            f"step {step!r} uses ${{{name}}}, which no earlier step captured "
            f"(captured so far: {known})",
            type=FailureType.SCRIPT_ERROR,
        )

    return lookup


def _render_optional(text: str | None, lookup: Lookup) -> str | None:
    return render_text(text, lookup) if text is not None else None


def _check(response: Response, expect: Expect, lookup: Lookup) -> None:
    response.expect_status(*expect.status)
    for header, condition in expect.headers.items():
        response.expect_header(
            header,
            _render_optional(condition.equals, lookup),
            contains=_render_optional(condition.contains, lookup),
            matches=condition.matches,
        )
    for item in expect.json_:
        given = item.model_fields_set
        response.expect_json(
            item.path,
            render(item.equals, lookup) if "equals" in given else MISSING,
            exists=item.exists,
            type=item.type,
            contains=render(item.contains, lookup) if "contains" in given else MISSING,
            matches=item.matches,
            gt=item.gt,
            ge=item.ge,
            lt=item.lt,
            le=item.le,
            length=item.length,
        )
    if expect.schema_ is not None:
        response.expect_schema(expect.schema_)
    if expect.body_contains is not None:
        response.expect_body_contains(render_text(expect.body_contains, lookup))
    if expect.body_matches is not None:
        response.expect_body_matches(expect.body_matches)
    if expect.max_latency is not None:
        response.expect_latency(expect.max_latency)


def _captured(response: Response, capture: Capture) -> Any:
    if capture.header is not None:
        response.expect_header(capture.header)
        return response.headers[capture.header]
    assert capture.json_ is not None
    return response.json_path(capture.json_)


# -- reading files ----------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"


class _PyLoader(yaml.SafeLoader):
    """The pure-Python loader; timestamps stay the strings they were written as."""


_PyLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)
_LIBYAML: type[_CLoader] | None = None

if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader, Composer):
        """libyaml's parser (several times faster than the pure-Python one) under PyYAML's
        composer, which (unlike libyaml's) composes one node at a time: a long `checks:`
        list never exists as one tree of nodes."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            Composer.__init__(self)

    _CLoader.add_constructor(
        "tag:yaml.org,2002:timestamp",
        lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
    )
    _LIBYAML = _CLoader


class _Lines:
    """Maps a location in the document (keys and indexes) to its 1-based line; a key's line
    is where the key is written. `root` is the node at `prefix` (one item of `checks:`, or
    the whole document)."""

    def __init__(self, root: yaml.Node, prefix: Loc = ()) -> None:
        self._prefix = prefix
        self._index: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int]] = []
        self._walk(root, prefix, set())

    def _walk(self, node: yaml.Node, loc: Loc, enclosing: set[int]) -> None:
        index = self._index
        if loc not in index:
            index[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return
        if isinstance(node, _StreamedChecks):  # its items were indexed one at a time
            self.duplicates.extend(node.duplicates)
            return
        if id(node) in enclosing:  # an alias to an enclosing node
            return
        enclosing.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                at = (*loc, key)
                if key in keys:
                    self.duplicates.append((at, key_node.start_mark.line + 1))
                    continue
                keys.add(key)
                index[at] = key_node.start_mark.line + 1
                self._walk(value_node, at, enclosing)
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                self._walk(item, (*loc, position), enclosing)
        enclosing.discard(id(node))

    def resolve(self, loc: Loc) -> Loc:
        """The part of `loc` written in the document: validation locations also carry parts
        the file does not have (a missing key, the union member pydantic tried)."""
        found: Loc = ()
        if loc[: len(self._prefix)] == self._prefix:
            found, loc = self._prefix, loc[len(self._prefix) :]
        for part in loc:
            if (*found, part) in self._index:
                found = (*found, part)
        return found

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its deepest part written in the document."""
        return self._index.get(self.resolve(loc), 1)


class _StreamedChecks(yaml.SequenceNode):
    """Stands for a `checks:` list whose items were loaded one by one as they were
    composed: what they gave, and the duplicate keys found in them."""

    def __init__(self, tag: str, start: Any) -> None:
        super().__init__(tag, [], start.start_mark, start.end_mark, flow_style=start.flow_style)
        self.specs: list[CheckSpec] = []
        self.problems: list[LoadProblem] = []
        self.duplicates: list[tuple[Loc, int]] = []


def load_yaml_checks(
    path: Path, *, keep: Callable[[str], bool] | None = None
) -> tuple[list[CheckSpec], list[LoadProblem]]:
    """Load the checks of one YAML file; each problem carries the file and line. With
    `keep`, only checks whose name it accepts are validated and compiled."""
    from synth.checks.loader import LoadProblem

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [LoadProblem(str(path), None, f"cannot read: {exc}")]
    # Specs carry the absolute path, like a Python check's code does; problems the given one.
    return parse_yaml_checks(text, str(path), source_path=os.path.abspath(path), keep=keep)


def parse_yaml_checks(
    text: str,
    shown: str,
    *,
    source_path: str | None = None,
    libyaml: bool = True,
    keep: Callable[[str], bool] | None = None,
) -> tuple[list[CheckSpec], list[LoadProblem]]:
    """Compile the checks in YAML `text`; problems name `shown` and the line, the specs'
    sources `source_path` (default: `shown`).

    The items of a `checks:` list are composed, validated and compiled one at a time, so a
    file of thousands of checks never holds all their nodes at once. libyaml parses when
    PyYAML has it; `libyaml=False` uses the pure-Python parser: slower, the same results
    except that it rejects a `?` in a flow mapping (`{path: /a?b=1}`) that libyaml reads."""
    from synth.checks.loader import LoadProblem

    fast = _LIBYAML if libyaml else None
    loader = fast(text) if fast is not None else _PyLoader(text)
    try:
        return _Reader(loader, shown, source_path or shown, keep).read()
    except yaml.YAMLError as exc:
        error = exc
    finally:
        loader.dispose()
    if fast is not None:
        # libyaml's messages say less ("found character that cannot start any token"); the
        # pure-Python parser names the character. Broken files are rare: parse it again.
        return parse_yaml_checks(text, shown, source_path=source_path, libyaml=False, keep=keep)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    return [], [LoadProblem(shown, line, f"invalid YAML: {_yaml_reason(error)}")]


class _Reader:
    """Reads one YAML document through the loader's event API (PyYAML's composer
    interface): a top-level `checks:` list is handled item by item as it is parsed."""

    def __init__(
        self,
        loader: _PyLoader | _CLoader,
        shown: str,
        source_path: str,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        # PyYAML's stubs type events loosely (optional, two Mark classes): use it untyped.
        self.loader: Any = loader
        self.shown = shown
        self.source_path = source_path
        self.keep = keep

    def _wanted(self, item: Any) -> bool:
        """Whether `keep` accepts the item's name (an item without one is loaded: it is
        reported wherever it is loaded)."""
        if self.keep is None or not isinstance(item, dict):
            return True
        name = item.get("name")
        return not isinstance(name, str) or self.keep(name)

    def read(self) -> tuple[list[CheckSpec], list[LoadProblem]]:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return [], []
        document = loader.get_event()
        start = loader.peek_event()
        streamed: _StreamedChecks | None = None
        if isinstance(start, yaml.MappingStartEvent) and start.anchor is None:
            root: yaml.Node = self._top_mapping()
            streamed = next((v for _, v in root.value if isinstance(v, _StreamedChecks)), None)
        else:
            root = self._compose(None, None)
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise ComposerError(
                "expected a single document in the stream",
                document.start_mark,
                "but found another document",
                loader.get_event().start_mark,
            )
        lines = _Lines(root)  # before constructing: merge keys (<<) rewrite nodes
        data = loader.construct_document(root)
        if data is None:
            return [], []
        return self._document(lines, data, streamed)

    def _compose(self, parent: yaml.Node | None, index: int | yaml.Node | None) -> yaml.Node:
        node: yaml.Node = self.loader.compose_node(parent, index)
        return node

    def _top_mapping(self) -> yaml.MappingNode:
        """Compose the document's mapping, loading the items of its `checks:` list as
        they come; that list is a `_StreamedChecks` in the result."""
        loader = self.loader
        start = loader.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.MappingNode, None, start.implicit)
        top = yaml.MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        while not loader.check_event(yaml.MappingEndEvent):
            key = self._compose(top, None)
            value_start = loader.peek_event()
            if (
                _is_checks(key)
                and not any(_is_checks(other) for other, _ in top.value)
                and isinstance(value_start, yaml.SequenceStartEvent)
                and value_start.anchor is None  # an anchored list may be aliased: compose it
            ):
                value: yaml.Node = self._stream_checks()
            else:
                value = self._compose(top, key)
            top.value.append((key, value))
        top.end_mark = loader.get_event().end_mark
        return top

    def _stream_checks(self) -> _StreamedChecks:
        loader = self.loader
        start = loader.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.SequenceNode, None, start.implicit)
        checks = _StreamedChecks(tag, start)
        index = 0
        while not loader.check_event(yaml.SequenceEndEvent):
            node = self._compose(checks, index)
            base: Loc = ("checks", index)
            lines = _Lines(node, base)  # before constructing: merge keys (<<) rewrite nodes
            item = loader.construct_document(node)
            if lines.duplicates:
                # Reported with the document's; a repeated key silently wins in YAML, so
                # don't guess: the item does not load.
                checks.duplicates.extend(lines.duplicates)
            elif self._wanted(item):
                spec, found = _load_one(item, base, lines, self.shown, self.source_path)
                checks.problems.extend(found)
                if spec is not None:
                    checks.specs.append(spec)
            index += 1
        checks.end_mark = loader.get_event().end_mark
        return checks

    def _document(
        self, lines: _Lines, data: Any, streamed: _StreamedChecks | None
    ) -> tuple[list[CheckSpec], list[LoadProblem]]:
        from synth.checks.loader import LoadProblem

        shown = self.shown
        if not isinstance(data, dict):
            return [], [LoadProblem(shown, 1, "expected a check (a mapping) or checks: [...]")]
        problems = [
            LoadProblem(shown, line, f"{_where(loc)}: duplicate key {loc[-1]!r}")
            for loc, line in lines.duplicates
        ]
        items: list[tuple[Loc, Any]]
        if "checks" in data:
            extra = [key for key in data if key != "checks"]
            if extra:
                problems.append(
                    LoadProblem(
                        shown,
                        lines.line((extra[0],)),
                        f"{extra[0]}: a file with 'checks:' holds only that list",
                    )
                )
            if streamed is not None:
                if any(loc == ("checks",) for loc, _ in lines.duplicates):
                    return [], problems  # two lists: which one is meant? don't guess
                return streamed.specs, problems + streamed.problems
            if not isinstance(data["checks"], list):
                problems.append(
                    LoadProblem(shown, lines.line(("checks",)), "checks: expected a list of checks")
                )
                return [], problems
            items = [(("checks", index), item) for index, item in enumerate(data["checks"])]
        else:
            items = [((), data)]
        specs: list[CheckSpec] = []
        for base, item in items:
            if any(loc[: len(base)] == base for loc, _ in lines.duplicates):
                continue  # reported above; a repeated key silently wins in YAML, so don't guess
            if not self._wanted(item):
                continue
            spec, found = _load_one(item, base, lines, shown, self.source_path)
            problems.extend(found)
            if spec is not None:
                specs.append(spec)
        return specs, problems


def _is_checks(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value == "checks"


def _load_one(
    item: Any, base: Loc, lines: _Lines, shown: str, source_path: str
) -> tuple[CheckSpec | None, list[LoadProblem]]:
    from synth.checks.loader import LoadProblem

    label = _label(item, base)
    if not isinstance(item, dict):
        return None, [LoadProblem(shown, lines.line(base), f"{label}: expected a mapping")]
    try:
        model = CheckModel.model_validate(item)
    except ValidationError as exc:
        problems: list[LoadProblem] = []
        for loc, message in _describe(exc):
            written = lines.resolve((*base, *loc))
            where = _where(written[len(base) :])
            text = f"{label}: {where}: {message}" if where else f"{label}: {message}"
            if not any(p.message == text for p in problems):
                problems.append(LoadProblem(shown, lines.line(written), text))
        return None, sorted(problems, key=lambda p: p.line or 0)
    source = SourceLocation(source_path, lines.line(base))
    try:
        return compile_check(model, source), []
    except CheckDefinitionError as exc:
        return None, [LoadProblem(shown, source.line, f"{label}: {exc.reason}")]


def _describe(exc: ValidationError) -> list[tuple[Loc, str]]:
    described: list[tuple[Loc, str]] = []
    for error in exc.errors():
        loc: Loc = tuple(error["loc"])
        cause = (error.get("ctx") or {}).get("error")
        kind = error["type"]
        if isinstance(cause, _KeyProblem):
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


def _where(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _label(item: Any, base: Loc) -> str:
    name = item.get("name") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return f"check {name!r}"
    return f"checks[{base[1]}]" if base else "check"


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        return ", ".join(parts) or str(exc)
    return str(exc)


__all__ = [
    "Capture",
    "CheckModel",
    "DnsProbe",
    "Expect",
    "HeaderCondition",
    "JsonExpectation",
    "Request",
    "Step",
    "TcpProbe",
    "TlsProbe",
    "compile_check",
    "load_yaml_checks",
    "parse_yaml_checks",
]
