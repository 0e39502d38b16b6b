"""The runner's side of a flow: the steps being recorded, the run's HTTP clients, what is
in flight, and the operations every kind of step shares (opening a step, building a
failure, finding a service). `Flow` (check code's API) and the probe steps both work on a
`FlowContext`; neither imports the other."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx2

from synth.browser.settings import BrowserSettings
from synth.checks.failures import CheckFailure, FlowAborted, assertion_failure, script_error
from synth.config import Environment, RunnerSettings, ServiceTarget, TlsSettings
from synth.model import (
    Artifact,
    DeployContext,
    Failure,
    FailureType,
    Phase,
    RequestRecord,
    Status,
    StepResult,
)
from synth.probes.http import SslContexts, new_client
from synth.probes.redirects import DEFAULT_MAX_REDIRECTS
from synth.redact import Redactor
from synth.spans import RunTracer

if TYPE_CHECKING:
    from playwright.async_api import Page

    from synth.browser.session import BrowserSession


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
    facts: object | None = None
    # Time the step's requests spent on this process rather than on the network: building
    # and redacting them, waiting for the loop, reading their JSON (see HttpTimings.total_s).
    # Left out of the step's duration, so that it is the target's latency in any process.
    local_wait_s: float = 0.0
    wire_s: float = 0.0  # the requests' own time: on the wire, or until they failed
    traceparent: str = ""  # the step span's, for requests a browser page makes

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
            facts=self.facts,
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
        follow_redirects: bool = True,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        browser: BrowserSettings | None = None,
    ) -> None:
        self.check_name = check_name
        self.browser_settings = browser or BrowserSettings()
        self.browser: BrowserSession | None = None
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
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

    async def page(self) -> Page:
        """The run's browser page (a fresh context on first use; synth.browser)."""
        if self.browser is None:
            from synth.browser.engine import engine_for_running_loop
            from synth.browser.session import BrowserSession

            self.browser = BrowserSession(self, engine_for_running_loop(self.browser_settings))
            if self.current is not None:
                self.browser.step_started(self.current)
        return await self.browser.page()

    async def finish_browser(self) -> tuple[Artifact, ...]:
        """Close the run's browser context, keeping its artifacts; a browser killed because
        it stopped answering fails the run as `script_error` naming that."""
        session = self.browser
        if session is None:
            return ()
        failed = any(recorder.failure is not None for recorder in self.steps)
        artifacts = await session.finish(failed)
        if session.hung is not None:
            recorder = next((r for r in self.steps if r.failure is not None), None)
            if recorder is None and self.steps:
                recorder = self.steps[-1]
            if recorder is not None:
                before = recorder.failure
                recorder.failure = Failure(
                    type=FailureType.SCRIPT_ERROR,
                    message=session.hung
                    + (f" (the step had failed: {before.message})" if before else ""),
                    expected=before.expected if before else None,
                    actual=before.actual if before else None,
                    url=before.url if before else None,
                )
        return artifacts

    async def aclose(self) -> None:
        if self.browser is not None:  # a run cancelled before it finished its browser
            await self.browser.finish(failed=False)
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
        if self.browser is not None:
            failure = self.browser.failure_for(error)
            if failure is not None:
                return failure
        if isinstance(error, AssertionError):
            return assertion_failure(error, self.redactor, self.check_file)
        return script_error(error, self.redactor)

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[StepRecorder]:
        """A named step; its name appears in reports, metrics and spans. A failure inside
        it fails the step and stops the flow."""
        ctx = self
        name = ctx.redactor.text(name)  # a name is shown everywhere: never a secret in it
        if ctx.current is not None:
            raise RuntimeError(f"step {name!r} is nested inside step {ctx.current.name!r}")
        now = time.perf_counter()
        recorder = StepRecorder(name=name, started=now, offset_s=now - ctx.started)
        ctx.steps.append(recorder)
        ctx.current = recorder
        interrupted = False
        with ctx.tracer.step_span(name) as span:
            recorder.traceparent = span.traceparent()
            if ctx.browser is not None:
                ctx.browser.step_started(recorder)
            try:
                yield recorder
                problem = ctx.browser.step_problem() if ctx.browser is not None else None
                if problem is not None:  # the page failed though the step's code did not
                    recorder.failure = problem
                    span.record_failure(problem)
                    raise FlowAborted
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
                if not interrupted and ctx.browser is not None:
                    await ctx.browser.step_ended(recorder)

    def fail(
        self,
        message: str,
        *,
        type: FailureType = FailureType.ASSERTION,
        expected: str | None = None,
        actual: str | None = None,
    ) -> CheckFailure:
        """A failure to raise from check code, its texts redacted."""
        redact = self.redactor.text
        return CheckFailure(
            Failure(
                type=type,
                message=redact(message),
                expected=redact(expected) if expected is not None else None,
                actual=redact(actual) if actual is not None else None,
            )
        )

    def target(self, service: str | None) -> ServiceTarget:
        """The base URL and settings of `service` (default: the check's) here."""
        name = service or self.service
        target = self.environment.services.get(name)
        if target is None:
            raise self.fail(
                f"service {name!r} has no base URL in environment {self.environment.name!r}; "
                f"add environments.{self.environment.name}.services.{name}.base_url",
                type=FailureType.SCRIPT_ERROR,
            )
        return target
