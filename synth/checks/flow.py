"""`Flow`: what a check function receives — named steps, HTTP calls relative to the
environment's services, values carried between steps, secrets, and protocol probes. The
run's state it works on is a `FlowContext` (synth.checks.context)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx2

from synth.checks.context import FlowContext, InFlight, StepRecorder
from synth.checks.failures import (
    CheckFailure,
)
from synth.checks.request_parts import (
    Sending,
    encode_body,
    parse_json,
    register_credential,
    register_userinfo,
)
from synth.checks.response import MISSING, Response
from synth.checks.step_names import route_name
from synth.config import ServiceTarget
from synth.model import (
    DeployContext,
    Failure,
    FailureType,
    HttpTimings,
    Phase,
    RequestRecord,
)
from synth.probes import registry
from synth.probes.dns import DnsResult
from synth.probes.errors import ProbeError
from synth.probes.http import Exchange, exchange
from synth.probes.redirects import next_hop, too_many_message
from synth.probes.tcp import TcpResult
from synth.probes.tls import TlsResult
from synth.redact import SENSITIVE_HEADERS
from synth.units import parse_duration

if TYPE_CHECKING:
    from playwright.async_api import Page


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

    def step(self, name: str) -> contextlib.AbstractAsyncContextManager[StepRecorder]:
        """A named step; its name appears in reports, metrics and spans. A failure inside
        it fails the step and stops the flow."""
        return self._ctx.step(name)

    def fail(
        self,
        message: str,
        *,
        type: FailureType = FailureType.ASSERTION,
        expected: str | None = None,
        actual: str | None = None,
    ) -> CheckFailure:
        """Build a failure to raise from check code: `raise flow.fail("cart is empty")`."""
        return self._ctx.fail(message, type=type, expected=expected, actual=actual)

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
        return self._ctx.target(service)

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
        follow_redirects: bool | None = None,
        max_redirects: int | None = None,
    ) -> Response:
        """Send a request to `path` on the check's service (or `service`, or an absolute
        URL). Outside a `flow.step()`, the request is a step of its own. Redirects are
        followed (each hop recorded) unless `follow_redirects=False`, up to `max_redirects`
        (the check's settings by default: on, 10)."""
        ctx = self._ctx
        options = Sending(
            method=method.upper(),
            path=path,
            service=service,
            params=params,
            headers=headers,
            json=json,
            data=data,
            content=content,
            timeout=timeout,
            follow_redirects=ctx.follow_redirects if follow_redirects is None else follow_redirects,
            max_redirects=ctx.max_redirects if max_redirects is None else max_redirects,
        )
        if options.max_redirects < 0:
            raise ValueError("max_redirects must be 0 or more")
        if ctx.current is None:
            name = route_name(options.method, path, ctx.redactor)
            async with self.step(name) as recorder:
                recorder.implicit = True
                return await self._send_timed(recorder, options)
        return await self._send_timed(ctx.current, options)

    async def _send_timed(self, step: StepRecorder, options: Sending) -> Response:
        """`_send`, with what it cost this process (all but its requests' own time)
        counted as the step's local wait. A request the deadline cuts off keeps its time."""
        started, wire_before = time.perf_counter(), step.wire_s
        try:
            response = await self._send(options)
        except CheckFailure:
            step.local_wait_s += _local_time(started, step.wire_s - wire_before)
            raise
        step.local_wait_s += _local_time(started, step.wire_s - wire_before)
        return response

    async def _send(self, options: Sending) -> Response:
        ctx = self._ctx
        method, path, service = options.method, options.path, options.service
        url = self.url(path, service=service)
        is_relative = not path.startswith(("http://", "https://"))
        target = self._target(service) if is_relative else None
        merged: dict[str, str] = {**ctx.environment.headers}
        if target is not None:
            merged.update(target.headers)
        merged.update(options.headers or {})
        for name, value in merged.items():
            if name.lower() in SENSITIVE_HEADERS:
                register_credential(ctx.redactor, value)
        body, content_type = encode_body(options.json, options.data, options.content)
        if content_type and not any(k.lower() == "content-type" for k in merged):
            merged["Content-Type"] = content_type
        tls = (target.tls if target is not None else None) or ctx.environment.tls
        timeout_s = (
            parse_duration(options.timeout)
            if options.timeout is not None
            else ctx.runner.request_timeout
        )
        full_url = httpx2.URL(url)
        if options.params:
            full_url = full_url.copy_merge_params(options.params)
        register_userinfo(ctx.redactor, url)
        client = ctx.client_for(tls)
        # One deadline for the whole chain of redirects, as for a single request.
        deadline = time.perf_counter() + timeout_s
        visited: list[str] = []
        while True:
            shown_url = ctx.redactor.url(str(full_url))
            visited.append(shown_url)
            budget_s = max(deadline - time.perf_counter(), 0.001)
            result = await self._hop(client, method, full_url, merged, body, timeout_s, budget_s)
            hop = (
                next_hop(
                    method=method,
                    url=result.url,
                    status=result.status_code,
                    response_headers=result.headers,
                    request_headers=merged,
                    content=body,
                )
                if options.follow_redirects
                else None
            )
            if hop is None:
                return self._response(result, shown_url, merged)
            if len(visited) > options.max_redirects:
                visited.append(ctx.redactor.url(hop.url))
                failure = Failure(
                    type=FailureType.HTTP_STATUS,
                    message=too_many_message(options.max_redirects, visited),
                    expected=f"at most {options.max_redirects} redirects",
                    actual=f"{result.status_code} to {visited[-1]}",
                    method=method,
                    url=visited[0],
                )
                raise CheckFailure(failure, step=ctx.current.name if ctx.current else None)
            register_userinfo(ctx.redactor, hop.url)
            method, merged, body = hop.method, hop.headers, hop.content
            full_url = httpx2.URL(hop.url)

    async def _hop(
        self,
        client: httpx2.AsyncClient,
        method: str,
        url: httpx2.URL,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float,
        budget_s: float,
    ) -> Exchange:
        """One request of the step, in its own span, recorded in the step."""
        ctx = self._ctx
        step = ctx.current
        assert step is not None
        shown_url = ctx.redactor.url(str(url))
        attributes: dict[str, str | int | float | bool] = {
            "http.request.method": method,
            "url.full": shown_url,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        if step.requests:
            attributes["http.request.resend_count"] = len(step.requests)
        ctx.in_flight = InFlight(method, shown_url)
        with ctx.tracer.http_span(method, shown_url, attributes) as span:
            sent = {**headers, "traceparent": span.traceparent()}
            sending = time.perf_counter()
            try:
                result = await exchange(
                    client,
                    method,
                    str(url),
                    headers=sent,
                    content=body,
                    timeout_s=timeout_s,
                    max_body_bytes=ctx.runner.max_body_bytes,
                    budget_s=budget_s,
                )
            except ProbeError as error:
                step.wire_s += time.perf_counter() - sending
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
        step.wire_s += result.timings.total_s
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
            )
        )
        return result

    def _response(
        self, result: Exchange, shown_url: str, request_headers: Mapping[str, str]
    ) -> Response:
        """The final response of a request; its JSON shape joins the step's last record."""
        ctx = self._ctx
        step = ctx.current
        assert step is not None
        parsed, shape = parse_json(result.headers, result.body, result.body_truncated, ctx.redactor)
        if shape:
            step.requests[-1] = replace(step.requests[-1], json_shape=shape)
        return Response(
            method=result.method,
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
            request_headers=request_headers,
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

    # -- browser (synth.browser) -------------------------------------------------------

    async def page(self) -> Page:
        """The run's browser page: Playwright's `Page` in a fresh browser context (no
        cookies or storage from other runs) whose base URL is the service's, so
        `await page.goto("/login")` works. Use it inside `flow.step()`: the step records
        the page's navigation timings and web vitals, fails on a 4xx/5xx document or an
        uncaught page error, and keeps a screenshot, trace and console log on failure.
        Requests to the environment's services carry the step's `traceparent`."""
        return await self._ctx.page()

    # -- protocol probes (synth.probes.registry) ---------------------------------------

    async def probe(self, kind: str, /, **options: Any) -> Any:
        """Run the probe `kind` of `synth.probes.registry` ("tcp", "dns", "tls", ...) with
        its options, the same keys as its YAML step; returns its facts. Outside a
        `flow.step()` it is a step of its own, named after it ("tcp db.internal:5432")."""
        return await registry.run_probe(self._ctx, kind, options)

    async def tcp(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        service: str | None = None,
        timeout: str | float | None = None,
    ) -> TcpResult:
        """Connect to `host:port` (default: the service's base URL host and port). Outside a
        `flow.step()` it is a step of its own, "tcp host:port"."""
        options = {"host": host, "port": port, "service": service, "timeout": timeout}
        result: TcpResult = await registry.run_probe(self._ctx, "tcp", options)
        return result

    async def dns(
        self,
        name: str | None = None,
        *,
        record_type: str = "A",
        expect: Iterable[str] | None = None,
        expect_contains: Iterable[str] | None = None,
        nameserver: str | None = None,
        port: int = 53,
        timeout: str | float | None = None,
    ) -> DnsResult:
        """Resolve `name` (default: the service's host): `expect` the exact answers, or
        `expect_contains` some of them, e.g. `await flow.dns("example.com", record_type="MX",
        expect_contains=["10 mail.example.com."])`. Fails as `dns`."""
        options = {
            "name": name,
            "record_type": record_type,
            "expect": expect,
            "expect_contains": expect_contains,
            "nameserver": nameserver,
            "port": port,
            "timeout": timeout,
        }
        result: DnsResult = await registry.run_probe(self._ctx, "dns", options)
        return result

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
    ) -> TlsResult:
        """Check the certificate of `host:port` (default: the service's): not expired, at
        least `min_days` left, trusted chain, valid for the name. Fails as `tls`; the
        certificate's facts (days_left, not_after, issuer, ...) go into the step details."""
        options = {
            "host": host,
            "port": port,
            "service": service,
            "server_name": server_name,
            "min_days": min_days,
            "check_chain": check_chain,
            "check_hostname": check_hostname,
            "timeout": timeout,
        }
        result: TlsResult = await registry.run_probe(self._ctx, "tls", options)
        return result


def _local_time(started: float, wire_s: float) -> float:
    return max(time.perf_counter() - started - wire_s, 0.0)


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
