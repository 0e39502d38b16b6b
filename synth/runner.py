"""Run one RunRequest (one check × one environment) and return one immutable RunResult.

Every trigger — `synth run`, the scheduler, deploy verification, pytest — calls this.
The runner opens the run, step and request spans; every other output consumes the result.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

from synth.alerting.policy import retries_for
from synth.checks.context import FlowContext
from synth.checks.failures import FlowAborted
from synth.checks.flow import Flow
from synth.config import Environment, Settings, resolve_environment
from synth.model import Artifact, FailedAttempt, Phase, RunRequest, RunResult, Status
from synth.probes.http import SslContexts
from synth.redact import redacting_run
from synth.spans import IdTracer, RunTracer
from synth.warmup import prepare_tls, tls_settings, warm_http

RetryElsewhere = Callable[[RunRequest, RunResult], Awaitable[RunResult | None]]
"""Asks another location to retry a failed run: its attempt, or None (retry here)."""


class Runner:
    """Runs checks with shared SSL contexts and resolved environments; safe to use from
    many concurrent tasks."""

    def __init__(
        self,
        settings: Settings,
        *,
        tracer: RunTracer | None = None,
        retry_elsewhere: RetryElsewhere | None = None,
    ) -> None:
        self.settings = settings
        self.tracer: RunTracer = tracer or IdTracer()
        self.retry_elsewhere = retry_elsewhere
        self._ssl_contexts = SslContexts()
        self._environments: dict[str, Environment] = {}
        self._warm = False

    def environment(self, name: str) -> Environment:
        """The resolved environment (secrets read once); ConfigError when unusable."""
        env = self._environments.get(name)
        if env is None:
            env = resolve_environment(self.settings, name)
            self._environments[name] = env
        return env

    async def warm_up(self) -> None:
        """Pay this process's one-off costs (SSL contexts, resolver, HTTP code paths) before
        the first run, so no run's latency holds them (synth.warmup). Once per runner;
        never raises."""
        if self._warm:
            return
        self._warm = True
        prepare_tls(self._ssl_contexts, tls_settings(self.settings))
        await warm_http(self._ssl_contexts, user_agent=self.settings.runner.user_agent)

    async def run(self, request: RunRequest, *, retries: int | None = None) -> RunResult:
        """Run the check, retrying a failed attempt up to its retries (synth.alerting.policy;
        `retries` overrides) after a jittered `runner.retry_delay`; the last attempt is the
        result, carrying the failed attempts before it. A scheduled run's first retry is
        asked of another location when there is one (`retry_elsewhere`), so a fault of
        this location's network is not mistaken for the target's."""
        environment = self.environment(request.environment)
        if retries is None:
            retries = retries_for(request.check, self.settings)
        failed: list[FailedAttempt] = []
        attempt = 1
        result = await self._attempt(request, environment, attempt)
        while True:
            if result.passed or attempt > retries:
                return replace(result, failed_attempts=tuple(failed)) if failed else result
            if result.failure is not None:
                failed.append(
                    FailedAttempt(attempt, result.failure, result.failed_step, result.trace_id)
                )
            delay = self.settings.runner.retry_delay
            await asyncio.sleep(delay * (0.5 + random.random()))  # jitter
            attempt += 1
            elsewhere = None
            ask = self.retry_elsewhere if request.phase is Phase.SCHEDULED else None
            if attempt == 2 and ask is not None:
                elsewhere = await ask(request, result)
            if elsewhere is not None:
                result = replace(
                    elsewhere,
                    phase=request.phase,
                    location=request.location,
                    attempts=attempt,
                    attempt_location=elsewhere.location,
                    tags=request.check.tags,
                )
            else:
                result = await self._attempt(request, environment, attempt)

    async def _attempt(
        self, request: RunRequest, environment: Environment, attempt: int
    ) -> RunResult:
        check = request.check
        started_at = datetime.now(UTC)
        with self.tracer.run_span(request) as run_span:
            ctx = FlowContext(
                check_name=check.name,
                service=check.service,
                check_file=check.source.path if check.source else None,
                environment=environment,
                runner=self.settings.runner,
                tracer=self.tracer,
                ssl_contexts=self._ssl_contexts,
                phase=request.phase,
                location=request.location,
                deploy=request.deploy,
                follow_redirects=check.follow_redirects,
                max_redirects=check.max_redirects,
                browser=self.settings.browser,
            )
            artifacts: tuple[Artifact, ...] = ()
            try:
                with redacting_run(ctx.redactor):
                    await self._run_flow(ctx, request)
                    end = time.perf_counter()  # before the artifacts are collected
                    artifacts = await ctx.finish_browser()
            finally:
                await ctx.aclose()
            steps = tuple(recorder.result(end) for recorder in ctx.steps)
            failed = next((s for s in steps if s.status is Status.FAILED), None)
            failure = failed.failure if failed else None
            if failure is not None:
                run_span.record_failure(failure)
            status = Status.FAILED if failed else Status.PASSED
            run_span.set_attributes({"synth.attempt": attempt, "synth.result": status.value})
            return RunResult(
                run_id=uuid.uuid4().hex,
                check=check.name,
                service=check.service,
                environment=request.environment,
                phase=request.phase,
                location=request.location,
                status=status,
                started_at=started_at,
                duration_s=end - ctx.started,
                steps=steps,
                attempts=attempt,
                trace_id=run_span.trace_id,
                failure=failure,
                failed_step=failed.name if failed else None,
                deploy=request.deploy,
                tags=check.tags,
                artifacts=artifacts,
            )

    async def _run_flow(self, ctx: FlowContext, request: RunRequest) -> None:
        check = request.check
        flow = Flow(ctx)
        try:
            async with asyncio.timeout(check.timeout_s) as deadline:
                await check.func(flow)
        except FlowAborted:
            pass
        except TimeoutError as error:
            if deadline.expired():
                ctx.mark_timeout(check.timeout_s)
            else:  # check code raised TimeoutError itself, outside any step
                ctx.record_outside_step(ctx.failure_for(error), None)
        except Exception as error:  # a failure raised outside any step
            ctx.record_outside_step(ctx.failure_for(error), getattr(error, "step", None))
