"""Where a run executes: the one place that chooses between a run process, the agent's
own event loop and a worker thread (synth.agent.isolation)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from synth.agent.browser_workers import BrowserWorkers
from synth.agent.isolation import RunWorkers
from synth.browser.engine import LAUNCH_HOOKS
from synth.checks.yaml.compile import runs_only_synth_code
from synth.model import RunRequest, RunResult

if TYPE_CHECKING:
    from synth.agent.run_processes import RunProcesses
    from synth.outputs.metrics import Metrics
    from synth.runner import Runner


class RunExecutor:
    """The one place that decides where a run executes, within the workers' concurrency
    bound: a scheduled run of a check that runs only synth's code goes to a run process
    when there are some (`scheduler.processes`), else that check runs on the agent's own
    loop (`scheduler.isolation: code`); every other run goes to a worker thread. A
    scheduled run's lag is noted when it really starts."""

    def __init__(
        self,
        *,
        runner: Callable[[], Runner],
        workers: RunWorkers,
        processes: Callable[[], RunProcesses | None],
        inline_declarative: Callable[[], bool],
        metrics: Metrics,
        on_lag: Callable[[float], None],
        browser_concurrency: Callable[[], int] = lambda: 2,
        browser_nice: Callable[[], int] = lambda: 10,
        browser_processes: Callable[[], RunProcesses | None] = lambda: None,
    ) -> None:
        self._runner = runner
        self._browser_processes = browser_processes
        self._browser_concurrency = browser_concurrency
        self._browser_nice = browser_nice
        self._browsers: BrowserWorkers | None = None
        self._workers = workers
        self._processes = processes
        self._inline_declarative = inline_declarative
        self._metrics = metrics
        self._on_lag = on_lag

    async def run(
        self, request: RunRequest, due: float | None, *, retries: int | None = None
    ) -> RunResult:
        """Run `request`; `due` (unix time) is when a scheduled run should have started;
        `retries` overrides the check's (an unscheduled run only)."""
        check = request.check
        if check.uses_browser:
            return await self._in_browser_worker(request, due, retries)
        synth_code_only = runs_only_synth_code(check)
        processes = self._processes()
        if due is not None and processes is not None and synth_code_only:
            result = await self._in_process(request, processes, due)
            if result is not None:
                return result
        sources = frozenset({check.source.path}) if check.source else frozenset()
        run = (
            self._runner().run(request, retries=retries)
            if due is None
            else self._lagged(request, due)
        )
        with self._metrics.running():
            return await self._workers.run(
                run,
                label=check.name,
                source_files=sources,
                urgent=due is None,
                # Measured at 5,000 checks: ~7 ms of CPU per run on threads, ~2 ms inline.
                inline=synth_code_only and self._inline_declarative(),
            )

    async def _in_browser_worker(
        self, request: RunRequest, due: float | None, retries: int | None
    ) -> RunResult:
        """A browser check's run: a scheduled one in a browser process when there are some
        (`browser.isolation: process`), else — or when none can take it — on one of the
        agent's browser worker threads. Each owns one Chromium; API checks never queue
        behind a page load."""
        processes = self._browser_processes()
        if due is not None and processes is not None:
            with self._metrics.running():
                made = await processes.run(
                    request.check.name, request.environment, request.location, due
                )
            if made is not None:
                self._note_lag(made.lag_s)
                return made.result
        if self._browsers is None:
            self._browsers = BrowserWorkers(self._browser_concurrency(), nice=self._browser_nice())
            LAUNCH_HOOKS.append(self._metrics.browser.launched)
        run = (
            self._runner().run(request, retries=retries)
            if due is None
            else self._lagged(request, due)
        )
        with self._metrics.running():
            return await self._browsers.run(run, label=request.check.name, urgent=due is None)

    async def close(self) -> None:
        """Close the browser workers' browsers and threads."""
        if self._browsers is not None:
            await self._browsers.close()
            with contextlib.suppress(ValueError):
                LAUNCH_HOOKS.remove(self._metrics.browser.launched)

    async def _in_process(
        self, request: RunRequest, processes: RunProcesses, due: float
    ) -> RunResult | None:
        """A run made by a run process, or None if none could take it."""
        async with self._workers.slot():
            with self._metrics.running():
                made = await processes.run(
                    request.check.name, request.environment, request.location, due
                )
        if made is None:
            return None
        self._note_lag(made.lag_s)
        return made.result

    def _note_lag(self, lag_s: float) -> None:
        self._metrics.scheduled_late(lag_s)
        self._on_lag(lag_s)

    async def _lagged(self, request: RunRequest, due: float) -> RunResult:
        """The run, its lag noted when it starts on its worker (after any wait for a free
        worker: that wait is lag too)."""
        self._note_lag(max(time.time() - due, 0.0))
        return await self._runner().run(request)
