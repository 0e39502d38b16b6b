"""The checks as pytest items: `pytest --synth-env staging [--synth-checks DIR]`.

Registered through the `pytest11` entry point, so it is loaded in every pytest run; without
`--synth-env` it adds its options and does nothing else. With it, every check becomes an
item named after the check (select with `-k`; each tag is a marker, select with `-m`),
runs once through the same runner as `synth run` with phase `preprod`, and fails with the
same step / expected / actual report. A check file that does not load is a failing item
naming file:line. With `--synth-store URL` or `--synth-baseline-url AGENT` the runs are
recorded as the baseline, labelled `--synth-version` (default $SYNTH_VERSION or git
describe).

Telemetry is the same as `synth run`'s: spans over OTLP when the standard `OTEL_*`
variables ask for it, the same metrics (phase `preprod`) pushed to a Pushgateway with
`--synth-push-metrics URL`, and failed checks page through their playbook with its
pre-prod severity when playbooks are configured (`--synth-no-page` to skip).
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from synth.errors import SynthError

if TYPE_CHECKING:
    from synth.checks.problems import LoadProblem
    from synth.model import CheckSpec, RunRequest, RunResult
    from synth.outputs.sinks import OutputPlan
    from synth.runner import Runner

_STATE = pytest.StashKey["SynthSession"]()
TRACE_FLUSH_S = 5.0
_MARKER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synth", "synth checks as tests")
    group.addoption("--synth-env", metavar="ENV", help="run the synth checks against ENV")
    group.addoption(
        "--synth-checks",
        metavar="DIR",
        action="append",
        default=[],
        help="check files or directories (default: the config's `checks`)",
    )
    group.addoption(
        "--synth-config", metavar="FILE", help="synth config (default: $SYNTH_CONFIG or synth.yaml)"
    )
    group.addoption(
        "--synth-store", metavar="URL", help="record the baseline in this store (database URL)"
    )
    group.addoption(
        "--synth-baseline-url",
        metavar="URL",
        help="record the baseline through this agent's API (POST /v1/baselines)",
    )
    group.addoption("--synth-version", metavar="LABEL", help="version the baseline is recorded on")
    group.addoption(
        "--synth-push-metrics",
        metavar="URL",
        help="push the runs' metrics to this Prometheus Pushgateway (job=synth)",
    )
    group.addoption(
        "--synth-no-page", action="store_true", help="do not page for failed checks (playbooks)"
    )


class SynthSession:
    """The loaded checks, the runner and the results of one pytest session."""

    def __init__(self, config: pytest.Config) -> None:
        from synth.checks.loader import load_checks
        from synth.config import find_config_file, load_settings
        from synth.outputs.metrics import Metrics
        from synth.outputs.push import check_gateway_url
        from synth.outputs.sinks import RunLog, build_sinks
        from synth.outputs.tracing import TracingConfig, start_tracing
        from synth.runner import Runner
        from synth.selection import select_checks

        self.env: str = config.getoption("synth_env")
        self.store_url: str | None = config.getoption("synth_store")
        self.agent_url: str | None = config.getoption("synth_baseline_url")
        self.version: str | None = config.getoption("synth_version")
        if self.store_url and self.agent_url:
            raise pytest.UsageError("give --synth-store or --synth-baseline-url, not both")
        self.settings = load_settings(find_config_file(config.getoption("synth_config")))
        paths = config.getoption("synth_checks") or self.settings.checks
        loaded = load_checks(paths)
        selection = select_checks(loaded.checks, self.settings, self.env)
        self.checks: tuple[CheckSpec, ...] = selection.checks
        self.problems: tuple[LoadProblem | str, ...] = (*loaded.problems, *selection.problems)
        self.push_url: str | None = config.getoption("synth_push_metrics")
        self.page: bool = not config.getoption("synth_no_page")
        if self.push_url:
            check_gateway_url(self.push_url)
        self.metrics = Metrics(settings=self.settings.metrics)
        tracing_config = TracingConfig.from_env(os.environ)
        if tracing_config.enabled:
            self.metrics.watch_exporter(tracing_config.exporter_name)
        self.tracing = start_tracing(
            tracing_config,
            location=self.settings.location,
            environment=self.env,
            counters=self.metrics,
        )
        self.runner: Runner = Runner(self.settings, tracer=self.tracing.tracer)
        self.runs = RunLog(order=[check.name for check in self.checks])
        self.recorded: str | None = None
        self.notes: list[str] = []
        self._page_lines = io.StringIO()
        self.sinks = build_sinks(self._output_plan())
        self._collector: SynthChecks | None = None
        self._event_loop: asyncio.Runner | None = None

    def collector(self, session: pytest.Session) -> SynthChecks:
        """The parent node of every synth item."""
        if self._collector is None:
            self._collector = SynthChecks.from_parent(session, name="synth", nodeid="synth")
        return self._collector

    def _output_plan(self) -> OutputPlan:
        """Where the session's runs go (synth.outputs.sinks), as with `synth run`."""
        from synth.baseline import client
        from synth.outputs.sinks import BaselineTarget, OutputPlan, PageTarget, PushTarget

        baseline = None
        if self.store_url or self.agent_url:
            baseline = BaselineTarget(
                version=self.version or client.default_version(),
                store_url=self.store_url,
                agent_url=self.agent_url,
                say=self._recorded,
            )
        push = None
        if self.push_url:
            push = PushTarget(
                url=self.push_url,
                location=self.settings.location,
                environment=self.env,
                warn=lambda line: self.notes.append(f"synth: warning: {line}"),
            )
        page = PageTarget(self.settings, self.checks, self._page_lines) if self.page else None
        return OutputPlan(
            metrics=self.metrics,
            runs=self.runs,
            baseline=baseline,
            push=push,
            page=page,
            artifact_dir=self.settings.browser.artifacts_dir,
        )

    def _recorded(self, line: str) -> None:
        self.recorded = f"synth: baseline recorded for {line}"

    @property
    def results(self) -> list[RunResult]:
        return self.runs.results

    def run(self, check: CheckSpec) -> RunResult:
        from synth.model import Phase, RunRequest

        request = RunRequest(
            check=check,
            environment=self.env,
            phase=Phase.PREPROD,
            location=self.settings.location,
        )
        return self._loop().run(self._warm_run(request))

    def _loop(self) -> asyncio.Runner:
        # One event loop for the session, as in the agent: a loop (and its resolver
        # thread) per check would be start-up cost inside every pre-prod measurement.
        if self._event_loop is None:
            self._event_loop = asyncio.Runner()
        return self._event_loop

    async def _warm_run(self, request: RunRequest) -> RunResult:
        await self.runner.warm_up()
        result = await self.runner.run(request)
        await self.sinks.publish(result)
        return result

    def finish(self) -> None:
        """Flush traces, then close the sinks: record the baseline, push metrics and page
        failures. Their lines go to the summary; only a baseline that could not be
        recorded changes the session's outcome (raised), as with `synth run`."""
        from synth.browser.engine import close_running_loop_engine

        self.tracing.shutdown(TRACE_FLUSH_S)
        try:
            self._loop().run(close_running_loop_engine())  # the session's browser, if any
            self._loop().run(self.sinks.close())
        finally:
            if self._event_loop is not None:
                self._event_loop.close()
                self._event_loop = None
            self.notes.extend(line for line in self._page_lines.getvalue().splitlines() if line)


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("synth_env", default=None):
        return
    from synth.config import ConfigError
    from synth.outputs.push import PushError

    try:
        session = SynthSession(config)
    except ConfigError as exc:
        raise pytest.UsageError(f"synth: invalid configuration: {exc}") from None
    except PushError as exc:
        raise pytest.UsageError(f"synth: --synth-push-metrics: {exc}") from None
    config.stash[_STATE] = session
    config.pluginmanager.register(_LoadProblems(), "synth-load-problems")
    for tag in sorted({t for c in session.checks for t in c.tags}):
        if _MARKER_NAME.match(tag):
            config.addinivalue_line("markers", f"{tag}: synth checks tagged {tag}")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # tryfirst: the checks must be in `items` before -k / -m deselect.
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    collector = state.collector(session)
    for check in state.checks:
        item = CheckItem.from_parent(collector, name=check.name, check=check)
        for tag in check.tags:
            if _MARKER_NAME.match(tag):
                item.add_marker(tag)
        items.append(item)


class _LoadProblems:
    """Adds the load problems after -k / -m selection: a broken check file is never
    deselected out of sight."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        state = config.stash[_STATE]
        collector = state.collector(session)
        for problem in state.problems:
            name = _problem_name(problem)
            items.append(LoadProblemItem.from_parent(collector, name=name, problem=problem))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    from synth.baseline.client import BaselineError
    from synth.store import StoreError

    try:
        state.finish()
    except (BaselineError, StoreError) as exc:
        state.recorded = f"synth: could not record the baseline: {exc}"
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    if state.recorded:
        terminalreporter.write_line(state.recorded)
    for note in state.notes:
        terminalreporter.write_line(note)


class SynthChecks(pytest.Collector):
    """The parent node of every check item."""

    def collect(self) -> Iterator[pytest.Item]:  # pragma: no cover - filled by the hook
        return iter(())


class CheckFailed(SynthError):
    """A check run failed; carries the result for the report."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.failure.message if result.failure else "failed")
        self.result = result


class CheckItem(pytest.Item):
    """One synth check, run once with phase `preprod`."""

    def __init__(self, *, check: CheckSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        result = state.run(self.check)
        if not result.passed:
            raise CheckFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            from synth.outputs.artifact_links import file_link
            from synth.outputs.report_terminal import ASCII_MARKS, render_run

            state = self.config.stash[_STATE]
            link = file_link(state.settings.browser.artifacts_dir)
            result = excinfo.value.result
            return render_run(result, marks=ASCII_MARKS, artifact_link=link).rstrip("\n")
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        source = self.check.source
        if source is None:
            return self.path, None, f"synth check {self.check.name}"
        return source.path, source.line - 1, f"synth check {self.check.name}"


class LoadProblemItem(pytest.Item):
    """A check file that did not load (or a check that cannot run here): always fails."""

    def __init__(self, *, problem: LoadProblem | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem

    def runtest(self) -> None:
        raise CheckLoadError(str(self.problem))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(self.problem)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"synth load problem: {self.problem}"


class CheckLoadError(SynthError):
    """A problem found while loading the checks."""


def _problem_name(problem: LoadProblem | str) -> str:
    from synth.checks.problems import LoadProblem

    if isinstance(problem, LoadProblem):
        where = f"{problem.path}:{problem.line}" if problem.line is not None else problem.path
        return f"load error {where}"
    return f"selection problem {problem[:80]}"
