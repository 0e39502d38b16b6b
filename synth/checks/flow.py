"""`Flow`: what a check function receives — named steps, HTTP calls relative to the
environment's services, values carried between steps, secrets, and protocol probes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json as jsonlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2

from synth.baseline.shape import json_shape
from synth.checks import probe_steps
from synth.checks.failures import (
    CheckFailure,
    FlowAborted,
    assertion_failure,
    script_error,
)
from synth.checks.response import MISSING, Response
from synth.config import Environment, RunnerSettings, ServiceTarget, TlsSettings
from synth.model import (
    DeployContext,
    Failure,
    FailureType,
    HttpTimings,
    Phase,
    RequestRecord,
    Status,
    StepResult,
)
from synth.probes.http import ProbeError, SslContexts, exchange, new_client
from synth.redact import SENSITIVE_HEADERS, Redactor
from synth.spans import RunTracer
from synth.units import parse_duration


@dataclass(slots=True)
class StepRecorder:
    """Mutable record of a step while the run is in progress; frozen at the end."""

    name: str
    started: float
    offset_s: float
    implicit: bool = False
    ended: float | None = None
    requests: list[RequestRecord] = field(default_factory=list)
    failure: Failure | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Time the step's requests spent waiting on this process rather than on the network
    # (see HttpTimings.total_s); left out of the step's duration.
    local_wait_s: float = 0.0

    def result(self, run_end: float) -> StepResult:
        end = self.ended if self.ended is not None else run_end
        return StepResult(
            name=self.name,
            status=Status.FAILED if self.failure else Status.PASSED,
            duration_s=max(end - self.started - self.local_wait_s, 0.0),
            started_offset_s=self.offset_s,
            requests=tuple(self.requests),
            failure=self.failure,
            details=dict(self.details),
        )


@dataclass(slots=True)
class InFlight:
    method: str
    url: str


class FlowContext:
    """The runner's side of a flow: records steps, owns the run's HTTP clients."""

    def __init__(
        self,
        *,
        check_name: str,
        service: str,
        check_file: str | None,
        environment: Environment,
        runner: RunnerSettings,
        tracer: RunTracer,
        ssl_contexts: SslContexts,
        phase: Phase,
        location: str,
        deploy: DeployContext | None,
    ) -> None:
        self.check_name = check_name
        self.service = service
        self.check_file = check_file
        self.environment = environment
        self.runner = runner
        self.tracer = tracer
        self.ssl_contexts = ssl_contexts
        self.phase = phase
        self.location = location
        self.deploy = deploy
        self.redactor = Redactor(s.get_secret_value() for s in environment.secrets.values())
        self.started = time.perf_counter()
        self.steps: list[StepRecorder] = []
        self.current: StepRecorder | None = None
        self.in_flight: InFlight | None = None
        self._clients: dict[int, httpx2.AsyncClient] = {}

    def client_for(self, tls: TlsSettings) -> httpx2.AsyncClient:
        context = self.ssl_contexts.get(tls)
        client = self._clients.get(id(context))
        if client is None:
            client = new_client(context, user_agent=self.runner.user_agent)
            self._clients[id(context)] = client
        return client

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def record_outside_step(self, failure: Failure, step: str | None) -> None:
        """A failure raised outside any `flow.step()` block: attach it to the implicit step
        of the response it concerns, or to a step named after the check."""
        for recorder in reversed(self.steps):
            if recorder.name == step and recorder.implicit and recorder.failure is None:
                recorder.failure = failure
                return
        now = time.perf_counter()
        recorder = StepRecorder(
            name=step or self.check_name, started=now, offset_s=now - self.started, ended=now
        )
        recorder.failure = failure
        self.steps.append(recorder)

    def mark_timeout(self, timeout_s: float) -> None:
        """The check's time ran out: the step in progress failed with `timeout`."""
        recorder = self.current
        if recorder is None:
            now = time.perf_counter()
            recorder = StepRecorder(name=self.check_name, started=now, offset_s=now - self.started)
            self.steps.append(recorder)
        recorder.ended = time.perf_counter()
        flight = self.in_flight
        recorder.failure = Failure(
            type=FailureType.TIMEOUT,
            message=f"check timed out after {timeout_s:g}s during step '{recorder.name}'",
            expected=f"whole check within {timeout_s:g}s",
            actual="still running" + (f": {flight.method} {flight.url}" if flight else ""),
            method=flight.method if flight else None,
            url=flight.url if flight else None,
        )

    def failure_for(self, error: BaseException) -> Failure:
        if isinstance(error, CheckFailure):
            return error.failure
        if isinstance(error, AssertionError):
            return assertion_failure(error, self.redactor, self.check_file)
        return script_error(error, self.redactor)


class Flow:
    """Passed to every check function. Values carried between steps live in `flow.vars`
    (or plain local variables)."""

    def __init__(self, context: FlowContext) -> None:
        self._ctx = context
        self.vars: dict[str, Any] = {}

    @property
    def env(self) -> str:
        """Name of the environment this run targets."""
        return self._ctx.environment.name

    @property
    def service(self) -> str:
        return self._ctx.service

    @property
    def phase(self) -> Phase:
        return self._ctx.phase

    @property
    def location(self) -> str:
        return self._ctx.location

    @property
    def deploy(self) -> DeployContext | None:
        return self._ctx.deploy

    # -- steps ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[StepRecorder]:
        """A named step; its name appears in reports, metrics and spans. A failure inside
        it fails the step and stops the flow."""
        ctx = self._ctx
        if ctx.current is not None:
            raise RuntimeError(f"step {name!r} is nested inside step {ctx.current.name!r}")
        now = time.perf_counter()
        recorder = StepRecorder(name=name, started=now, offset_s=now - ctx.started)
        ctx.steps.append(recorder)
        ctx.current = recorder
        interrupted = False
        with ctx.tracer.step_span(name) as span:
            try:
                yield recorder
            except FlowAborted:
                raise
            except Exception as error:  # every exception of check code becomes a failure
                recorder.failure = ctx.failure_for(error)
                span.record_failure(recorder.failure)
                raise FlowAborted from error
            except BaseException:
                # Cancelled by the check's deadline: stay current so the runner can say
                # which step timed out.
                interrupted = True
                raise
            finally:
                if recorder.ended is None:
                    recorder.ended = time.perf_counter()
                if not interrupted and ctx.current is recorder:
                    ctx.current = None

    def fail(
        self,
        message: str,
        *,
        type: FailureType = FailureType.ASSERTION,
        expected: str | None = None,
        actual: str | None = None,
    ) -> CheckFailure:
        """Build a failure to raise from check code: `raise flow.fail("cart is empty")`."""
        redact = self._ctx.redactor.text
        return CheckFailure(
            Failure(
                type=type,
                message=redact(message),
                expected=redact(expected) if expected is not None else None,
                actual=redact(actual) if actual is not None else None,
            )
        )

    # -- secrets ----------------------------------------------------------------------

    def secret(self, name: str) -> str:
        """The value of a configured secret; it is redacted from every output."""
        value = self._ctx.environment.secrets.get(name)
        if value is None:
            known = ", ".join(sorted(self._ctx.environment.secrets)) or "none"
            raise self.fail(
                f"secret {name!r} is not configured for environment {self.env!r} "
                f"(configured: {known}); add environments.{self.env}.secrets.{name}",
                type=FailureType.SCRIPT_ERROR,
            )
        return value.get_secret_value()

    def mark_secret(self, value: str) -> str:
        """Redact a value derived at run time (a session token) from every output."""
        self._ctx.redactor.add(value)
        return value

    # -- HTTP -------------------------------------------------------------------------

    def url(self, path: str, *, service: str | None = None) -> str:
        """The absolute URL of `path` on a service of this environment."""
        if path.startswith(("http://", "https://")):
            return path
        target = self._target(service)
        return target.base_url + ("" if path.startswith("/") else "/") + path

    def _target(self, service: str | None) -> ServiceTarget:
        name = service or self._ctx.service
        target = self._ctx.environment.services.get(name)
        if target is None:
            raise self.fail(
                f"service {name!r} has no base URL in environment {self.env!r}; "
                f"add environments.{self.env}.services.{name}.base_url",
                type=FailureType.SCRIPT_ERROR,
            )
        return target

    async def request(
        self,
        method: str,
        path: str,
        *,
        service: str | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = MISSING,
        data: Mapping[str, Any] | None = None,
        content: bytes | str | None = None,
        timeout: str | float | None = None,
    ) -> Response:
        """Send a request to `path` on the check's service (or `service`, or an absolute
        URL). Outside a `flow.step()`, the request is a step of its own."""
        if self._ctx.current is None:
            name = f"{method.upper()} {urlsplit(path).path or path}"
            return await self._implicit_step(
                name, method, path, service, params, headers, json, data, content, timeout
            )
        return await self._send(
            method, path, service, params, headers, json, data, content, timeout
        )

    async def _implicit_step(self, name: str, *args: Any) -> Response:
        async with self.step(name) as recorder:
            recorder.implicit = True
            return await self._send(*args)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        service: str | None,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        json: Any,
        data: Mapping[str, Any] | None,
        content: bytes | str | None,
        timeout: str | float | None,
    ) -> Response:
        ctx = self._ctx
        method = method.upper()
        url = self.url(path, service=service)
        is_relative = not path.startswith(("http://", "https://"))
        target = self._target(service) if is_relative else None
        merged: dict[str, str] = {**ctx.environment.headers}
        if target is not None:
            merged.update(target.headers)
        merged.update(headers or {})
        for name, value in merged.items():
            if name.lower() in SENSITIVE_HEADERS:
                _register_credential(ctx.redactor, value)
        body, content_type = _encode_body(json, data, content)
        if content_type and not any(k.lower() == "content-type" for k in merged):
            merged["Content-Type"] = content_type
        tls = (target.tls if target is not None else None) or ctx.environment.tls
        timeout_s = parse_duration(timeout) if timeout is not None else ctx.runner.request_timeout
        full_url = httpx2.URL(url)
        if params:
            full_url = full_url.copy_merge_params(params)
        shown_url = ctx.redactor.url(str(full_url))
        step = ctx.current
        assert step is not None
        parts = urlsplit(url)
        if parts.password:
            # httpx turns user:password@ into a Basic Authorization header: mask both forms.
            user, password = unquote(parts.username or ""), unquote(parts.password)
            ctx.redactor.add(parts.password)
            ctx.redactor.add(password)
            userinfo = f"{user}:{password}".encode()
            ctx.redactor.add(base64.b64encode(userinfo).decode())
        attributes: dict[str, str | int | float | bool] = {
            "http.request.method": method,
            "url.full": shown_url,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        ctx.in_flight = InFlight(method, shown_url)
        with ctx.tracer.http_span(method, shown_url, attributes) as span:
            merged["traceparent"] = span.traceparent()
            try:
                result = await exchange(
                    ctx.client_for(tls),
                    method,
                    url,
                    headers=merged,
                    params=params,
                    content=body,
                    timeout_s=timeout_s,
                    max_body_bytes=ctx.runner.max_body_bytes,
                )
            except ProbeError as error:
                failure = Failure(
                    type=error.failure_type,
                    message=ctx.redactor.text(error.message),
                    method=method,
                    url=shown_url,
                )
                step.requests.append(
                    RequestRecord(
                        method=method,
                        url=shown_url,
                        status_code=None,
                        timings=HttpTimings(),
                        trace_id=span.trace_id,
                        span_id=span.span_id,
                    )
                )
                span.record_failure(failure)
                raise CheckFailure(failure, step=step.name) from None
            except asyncio.CancelledError:
                raise  # keep in_flight: the runner names the request the deadline cut off
            finally:
                if not _cancelling():
                    ctx.in_flight = None
            span.set_attributes({"http.response.status_code": result.status_code})
        step.local_wait_s += max(result.wall_s - result.timings.total_s, 0.0)
        parsed, shape = _parse_json(result.headers, result.body, result.body_truncated, ctx)
        step.requests.append(
            RequestRecord(
                method=method,
                url=shown_url,
                status_code=result.status_code,
                timings=result.timings,
                bytes_received=result.bytes_received,
                body_truncated=result.body_truncated,
                trace_id=span.trace_id,
                span_id=span.span_id,
                json_shape=shape,
            )
        )
        return Response(
            method=method,
            url=shown_url,
            status_code=result.status_code,
            headers=result.headers,
            content=result.body,
            truncated=result.body_truncated,
            timings=result.timings,
            step=step.name,
            redactor=ctx.redactor,
            excerpt_chars=ctx.runner.excerpt_chars,
            parsed=parsed,
        )

    async def get(self, path: str, **kwargs: Any) -> Response:
        """GET `path`; keyword arguments as for `request`."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Response:
        """POST `path`; keyword arguments as for `request`."""
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> Response:
        """PUT `path`; keyword arguments as for `request`."""
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> Response:
        """PATCH `path`; keyword arguments as for `request`."""
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Response:
        """DELETE `path`; keyword arguments as for `request`."""
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> Response:
        """HEAD `path`; keyword arguments as for `request`."""
        return await self.request("HEAD", path, **kwargs)

    # -- protocol probes (synth.checks.probe_steps) -------------------------------------

    async def tcp(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        service: str | None = None,
        timeout: str | float | None = None,
    ) -> probe_steps.TcpResult:
        """Connect to `host:port` (default: the service's base URL host and port). Outside a
        `flow.step()` it is a step of its own, "tcp host:port"."""
        return await probe_steps.tcp(self, host, port, service=service, timeout=timeout)

    async def dns(
        self,
        name: str | None = None,
        *,
        record_type: str = "A",
        expect: probe_steps.Answers | None = None,
        expect_contains: probe_steps.Answers | None = None,
        nameserver: str | None = None,
        port: int = 53,
        timeout: str | float | None = None,
    ) -> probe_steps.DnsResult:
        """Resolve `name` (default: the service's host): `expect` the exact answers, or
        `expect_contains` some of them, e.g. `await flow.dns("example.com", record_type="MX",
        expect_contains=["10 mail.example.com."])`. Fails as `dns`."""
        return await probe_steps.dns(
            self,
            name,
            record_type=record_type,
            expect=expect,
            expect_contains=expect_contains,
            nameserver=nameserver,
            port=port,
            timeout=timeout,
        )

    async def tls(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        service: str | None = None,
        server_name: str | None = None,
        min_days: float | None = 14,
        check_chain: bool = True,
        check_hostname: bool = True,
        timeout: str | float | None = None,
    ) -> probe_steps.TlsResult:
        """Check the certificate of `host:port` (default: the service's): not expired, at
        least `min_days` left, trusted chain, valid for the name. Fails as `tls`; the
        certificate's facts (days_left, not_after, issuer, ...) go into the step details."""
        return await probe_steps.tls(
            self,
            host,
            port,
            service=service,
            server_name=server_name,
            min_days=min_days,
            check_chain=check_chain,
            check_hostname=check_hostname,
            timeout=timeout,
        )


def _parse_json(
    headers: httpx2.Headers, body: bytes, truncated: bool, ctx: FlowContext
) -> tuple[Any, tuple[tuple[str, str], ...]]:
    """A JSON body decoded once (the check's `r.json()` reuses it) and its shape for the
    baseline; (MISSING, ()) for any other body."""
    if truncated or not body or "json" not in headers.get("content-type", "").lower():
        return MISSING, ()
    try:
        document = jsonlib.loads(body)
    except ValueError:
        return MISSING, ()
    return document, json_shape(document, ctx.redactor.text)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _register_credential(redactor: Redactor, value: str) -> None:
    redactor.add(value)
    scheme, _, credential = value.partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token", "apikey"):
        redactor.add(credential)


def _encode_body(
    json: Any, data: Mapping[str, Any] | None, content: bytes | str | None
) -> tuple[bytes | None, str | None]:
    if json is not MISSING:
        return jsonlib.dumps(json).encode(), "application/json"
    if data is not None:
        from urllib.parse import urlencode

        return urlencode(data, doseq=True).encode(), "application/x-www-form-urlencoded"
    if content is not None:
        return (content.encode() if isinstance(content, str) else content), None
    return None, None
