"""Compiling a validated YAML check (`CheckModel`) to a `CheckSpec` whose function drives the
same `Flow` API as a Python check."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from synth.checks.api import build_spec
from synth.checks.failures import CheckFailure
from synth.checks.flow import Flow
from synth.checks.response import MISSING, Response
from synth.checks.templating import (
    SECRETS_PREFIX,
    Lookup,
    render,
    render_text,
)
from synth.checks.yaml.schema import Capture, CheckModel, Expect, Request, StepFields, was_given
from synth.model import CheckSpec, FailureType, SourceLocation
from synth.probes.options import ProbeOptions
from synth.probes.registry import PROBES

# -- compiling to a check function ------------------------------------------------------------

StepFunc = Callable[[Flow], Awaitable[None]]


class _CompiledCheck:
    """A compiled YAML check's function: its steps, in order. A slotted object rather than
    a closure registered in a weak set: ~390 B less a check (a function, its closure and
    a weak reference), in the agent and in every run process that loads it."""

    __slots__ = ("__name__", "steps", "synth_code_only")

    def __init__(self, name: str, steps: tuple[StepFunc, ...], synth_code_only: bool) -> None:
        self.__name__ = name
        self.steps = steps
        self.synth_code_only = synth_code_only

    async def __call__(self, flow: Flow) -> None:
        for step in self.steps:
            await step(flow)


def runs_only_synth_code(check: CheckSpec) -> bool:
    """Whether a check runs only synth's own code, its work bounded by the body cap: a YAML
    check without regular expressions (which can backtrack without bound). Such a run is
    safe on the agent's loop or in a run process (synth.agent.isolation)."""
    func = check.func
    return isinstance(func, _CompiledCheck) and func.synth_code_only


def compile_check(model: CheckModel, source: SourceLocation | None) -> CheckSpec:
    """Build the CheckSpec of a validated check (CheckDefinitionError if build_spec rejects)."""
    steps = tuple(_compile_step(step, model.service) for step in model.steps)
    name = model.name.replace("-", "_").replace(".", "_")
    run = _CompiledCheck(name, steps, synth_code_only=not _uses_regex(model))
    return build_spec(
        name=model.name,
        func=run,
        service=sys.intern(model.service),  # a few services, thousands of checks
        envs=model.envs,
        every=model.every,
        cron=model.cron,
        timeout=model.timeout,
        retries=model.retries,
        sensitivity=model.sensitivity,
        tags=model.tags,
        playbook=model.playbook,
        description=model.description,
        runbook=model.runbook,
        source=source,
        kind="yaml",
        follow_redirects=model.follow_redirects,
        max_redirects=model.max_redirects,
        uses_browser=any(_kind(step) == "browser" for step in model.steps),
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


def _compile_step(step: StepFields, service: str) -> StepFunc:
    name = step.title(service)
    if step.request is not None:
        return _request_step(name, step.request, step.expect or Expect(), step)
    chosen = step.probe()
    assert chosen is not None
    kind, options = chosen
    return _probe_step(name, kind, options)


def _probe_step(name: str, kind: str, options: ProbeOptions) -> StepFunc:
    """A step that runs one probe of the registry; its templated options (a host, a name)
    are rendered per run, with the flow's variables and secrets."""
    given = {key: getattr(options, key) for key in options.model_fields_set}
    templated = [key for key in PROBES[kind].templated if given.get(key) is not None]

    async def run_probe(flow: Flow) -> None:
        async with flow.step(name):
            values = dict(given)
            if templated:
                lookup = _lookup(flow, name)
                for key in templated:
                    value = values[key]
                    values[key] = (
                        render_text(value, lookup)
                        if isinstance(value, str)
                        else render(_plain(value), lookup)
                    )
            await flow.probe(kind, **values)

    return run_probe


def _kind(step: StepFields) -> str:
    chosen = step.probe()
    return chosen[0] if chosen is not None else "request"


def _plain(value: Any) -> Any:
    """Validated option models (a browser step's actions) as JSON-like data to render."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_none=True)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _request_step(name: str, request: Request, expect: Expect, step: StepFields) -> StepFunc:
    target = request.path if request.path is not None else request.url
    assert target is not None
    has_json = was_given(request, "json")
    secret = None
    if step.secret_captures:
        secret = _SecretCaptures(tuple(step.secret_captures), dict(step.capture))
    return _RequestStep(
        name=sys.intern(name),  # "get", "login": the same in thousands of checks
        method=sys.intern(request.method),
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
