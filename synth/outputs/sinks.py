"""The one output seam: every finished run goes to a `SinkChain` of `ResultSink`s, built
by `build_sinks` for the agent, `synth run` and the pytest plugin alike.

A sink receives each result as it lands (`publish`) and finishes its work once the runs
are over (`close`: a report file, a metrics push, the one-shot pages, the baseline). The
chain gives every sink every result even when one of them raises, closes every sink even
when one fails, and re-raises the first error afterwards: a failing push never stops the
pages, a failing store never stops alerting.

Which sinks a process gets is the `OutputPlan` it describes:

- the agent: the run's log line, the store (which counts a run in /metrics once stored),
  alerting;
- `synth run`: /metrics counters, the terminal, the JSON and JUnit reports, the baseline,
  the Pushgateway, the one-shot pages;
- the pytest plugin: the counters, the baseline, the Pushgateway, the pages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from synth.model import Phase, RunResult
from synth.outputs.artifact_links import ArtifactLink, file_link, write_artifact_files

if TYPE_CHECKING:
    from synth.config import Settings
    from synth.model import CheckSpec
    from synth.outputs.metrics import Metrics
    from synth.outputs.report_terminal import TerminalReporter

log = logging.getLogger("synth.agent")  # the run log line keeps its logger name


class ResultSink(Protocol):
    """Where finished runs go."""

    async def publish(self, result: RunResult) -> None:
        """Take one finished run."""
        ...

    async def close(self) -> None:
        """Finish: the runs are over (write, push, page, flush)."""
        ...


class StoresResults(Protocol):
    """The agent's result writer (synth.agent.writer.ResultWriter)."""

    async def put(self, result: RunResult, *, urgent: bool = False) -> None: ...
    async def flush(self) -> None: ...


class ObservesResults(Protocol):
    """The agent's alerting (synth.alerting.engine.AlertEngine)."""

    async def observe(self, result: RunResult) -> None: ...
    async def flush(self) -> None: ...


class SinkChain:
    """Sinks in order, each isolated from the others' failures."""

    def __init__(self, sinks: Sequence[ResultSink]) -> None:
        self.sinks = tuple(sinks)

    async def publish(self, result: RunResult) -> None:
        first: Exception | None = None
        for sink in self.sinks:
            try:
                await sink.publish(result)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    async def close(self) -> None:
        first: Exception | None = None
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


# -- the results of a one-shot process ------------------------------------------------------


class RunLog:
    """The runs of a one-shot process, for the sinks that report them all at the end; in
    the checks' order when given (as a report lists them), else as they finished."""

    def __init__(self, order: Sequence[str] = ()) -> None:
        self._position = {name: index for index, name in enumerate(order)}
        self._results: list[RunResult] = []
        self.started_at = datetime.now(UTC)
        self._started = time.perf_counter()

    async def publish(self, result: RunResult) -> None:
        self._results.append(result)

    async def close(self) -> None:
        return None

    @property
    def results(self) -> list[RunResult]:
        last = len(self._position)
        return sorted(self._results, key=lambda r: self._position.get(r.check, last))

    @property
    def duration_s(self) -> float:
        return time.perf_counter() - self._started


# -- sinks ---------------------------------------------------------------------------------


class _Counters:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def publish(self, result: RunResult) -> None:
        self.metrics.observe_run(result)

    async def close(self) -> None:
        return None


class _RunLogLine:
    async def publish(self, result: RunResult) -> None:
        log_run(result)

    async def close(self) -> None:
        return None


class _Store:
    """Stored (in a batch) before /metrics counts it: the writer counts what it stored."""

    def __init__(self, writer: StoresResults) -> None:
        self.writer = writer

    async def publish(self, result: RunResult) -> None:
        # A scheduled result waits a moment to share a transaction; anyone else's (API,
        # deploy verification) is written at once.
        await self.writer.put(result, urgent=result.phase is not Phase.SCHEDULED)

    async def close(self) -> None:
        await self.writer.flush()


class _Alerting:
    def __init__(self, alerts: ObservesResults) -> None:
        self.alerts = alerts

    async def publish(self, result: RunResult) -> None:
        await self.alerts.observe(result)

    async def close(self) -> None:
        await self.alerts.flush()


class _AtEnd:
    """A sink whose work is all done at `close`, from the run log."""

    async def publish(self, result: RunResult) -> None:
        return None


class _Terminal:
    def __init__(self, reporter: TerminalReporter, runs: RunLog) -> None:
        self.reporter = reporter
        self.runs = runs

    async def publish(self, result: RunResult) -> None:
        self.reporter.run_finished(result)

    async def close(self) -> None:
        self.reporter.summary(self.runs.results, duration_s=self.runs.duration_s)


class _JsonReport(_AtEnd):
    def __init__(self, path: str, env: str, runs: RunLog, link: ArtifactLink | None) -> None:
        self.path, self.env, self.runs, self.link = path, env, runs, link

    async def close(self) -> None:
        from synth.outputs.report_json import write_json_report

        write_json_report(
            self.path,
            self.runs.results,
            env=self.env,
            started_at=self.runs.started_at,
            duration_s=self.runs.duration_s,
            artifact_link=self.link,
        )


class _JunitReport(_AtEnd):
    def __init__(self, path: str, env: str, runs: RunLog, link: ArtifactLink | None) -> None:
        self.path, self.env, self.runs, self.link = path, env, runs, link

    async def close(self) -> None:
        from synth.outputs.report_junit import write_junit_report

        write_junit_report(self.path, self.runs.results, env=self.env, artifact_link=self.link)


class _ArtifactFiles:
    """Writes each run's artifacts (browser screenshots, traces) beside the reports."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def publish(self, result: RunResult) -> None:
        if result.artifacts:
            await asyncio.to_thread(write_artifact_files, result, self.root)

    async def close(self) -> None:
        return None


@dataclass(frozen=True)
class BaselineTarget:
    """Record a pre-prod session's runs as baseline fragments of `version` in a store or
    an agent; `say` gets the line that says where. Its errors (BaselineError, StoreError)
    are raised from `close`, after the other sinks closed."""

    version: str
    store_url: str | None
    agent_url: str | None
    say: Callable[[str], None]


class _Baseline(_AtEnd):
    def __init__(self, target: BaselineTarget, runs: RunLog) -> None:
        self.target, self.runs = target, runs

    async def close(self) -> None:
        from synth.baseline import client
        from synth.baseline.record import fragments

        results = self.runs.results
        if not results:
            return
        target = self.target
        found = fragments(results, target.version)
        # The client runs its own event loop for a store: off this one.
        sent = await asyncio.to_thread(
            client.send, found, store_url=target.store_url, agent_url=target.agent_url
        )
        target.say(f"{sent} step(s) on version {target.version}")


@dataclass(frozen=True)
class PushTarget:
    """Push the process's metrics to a Pushgateway; a failure goes to `warn`."""

    url: str
    location: str
    environment: str
    extra: dict[str, str] = field(default_factory=dict)
    warn: Callable[[str], None] = print


class _Push(_AtEnd):
    def __init__(self, target: PushTarget, metrics: Metrics, runs: RunLog) -> None:
        self.target, self.metrics, self.runs = target, metrics, runs

    async def close(self) -> None:
        from synth.outputs.push import PushError, push_metrics

        if not self.runs.results:
            return
        target = self.target
        try:
            await asyncio.to_thread(
                push_metrics,
                target.url,
                self.metrics,
                location=target.location,
                environment=target.environment,
                extra=target.extra,
            )
        except PushError as exc:
            target.warn(str(exc))


@dataclass(frozen=True)
class PageTarget:
    """Page the playbook of every failed one-shot run; each delivery's line goes to `out`."""

    settings: Settings
    checks: Sequence[CheckSpec]
    out: TextIO


class _Pages(_AtEnd):
    def __init__(self, target: PageTarget, runs: RunLog) -> None:
        self.target, self.runs = target, runs

    async def close(self) -> None:
        from synth.alerting.oneshot import page_failures

        results = self.runs.results
        target = self.target
        if not results or not target.settings.playbooks:
            return
        await asyncio.to_thread(page_failures, target.settings, target.checks, results, target.out)


# -- the one place the list is built -------------------------------------------------------


@dataclass
class OutputPlan:
    """What one process publishes its runs to; `build_sinks` turns it into the chain."""

    metrics: Metrics
    runs: RunLog | None = None
    """A one-shot process's runs: needed by the sinks that work at the end."""
    log_runs: bool = False
    store: StoresResults | None = None
    """The agent's writer: it counts a run in /metrics once stored (else `Counters`)."""
    alerts: ObservesResults | None = None
    terminal: TerminalReporter | None = None
    env: str = ""
    json_path: str | None = None
    junit_path: str | None = None
    baseline: BaselineTarget | None = None
    push: PushTarget | None = None
    page: PageTarget | None = None
    artifact_dir: Path | None = None
    """Where a one-shot process writes its runs' artifacts (`<dir>/<run id>/<name>`)."""


def build_sinks(plan: OutputPlan) -> SinkChain:
    """The sinks of `plan`, in the order their work is done: per result the log line, the
    store or the counters, alerting, the terminal; at the end the summary, the report
    files, the baseline, the push and the pages."""
    sinks: list[ResultSink] = []
    runs = plan.runs
    at_end = (plan.terminal, plan.json_path, plan.junit_path, plan.baseline, plan.push, plan.page)
    if runs is None:
        if any(at_end):
            raise ValueError("the sinks that work at the end need the plan's RunLog")
    else:
        sinks.append(runs)
    if plan.artifact_dir is not None:
        sinks.append(_ArtifactFiles(plan.artifact_dir))
    if plan.log_runs:
        sinks.append(_RunLogLine())
    sinks.append(_Store(plan.store) if plan.store is not None else _Counters(plan.metrics))
    if plan.alerts is not None:
        sinks.append(_Alerting(plan.alerts))
    if runs is not None:
        if plan.terminal is not None:
            sinks.append(_Terminal(plan.terminal, runs))
        link = file_link(plan.artifact_dir) if plan.artifact_dir is not None else None
        if plan.json_path:
            sinks.append(_JsonReport(plan.json_path, plan.env, runs, link))
        if plan.junit_path:
            sinks.append(_JunitReport(plan.junit_path, plan.env, runs, link))
        if plan.baseline is not None:
            sinks.append(_Baseline(plan.baseline, runs))
        if plan.push is not None:
            sinks.append(_Push(plan.push, plan.metrics, runs))
        if plan.page is not None:
            sinks.append(_Pages(plan.page, runs))
    return SinkChain(sinks)


def log_run(result: RunResult) -> None:
    """The run's log line: debug when it passed, a warning naming the failure if not."""
    fields: dict[str, object] = {
        "check": result.check,
        "env": result.environment,
        "phase": result.phase.value,
        "location": result.location,
        "result": result.status.value,
        "duration_s": round(result.duration_s, 4),
        "trace_id": result.trace_id,
    }
    if result.failure is None:
        log.debug("check passed", extra=fields)
        return
    fields |= {
        "failure_type": result.failure.type.value,
        "step": result.failed_step,
        "failure": result.failure.message,
    }
    log.warning(
        "check %s failed in %s at step %s: %s: %s (trace %s)",
        result.check,
        result.environment,
        result.failed_step or "-",
        result.failure.type.value,
        result.failure.message,
        result.trace_id,
        extra=fields,
    )
