"""The agent's child processes that run checks: run processes for scheduled declarative
checks (`scheduler.processes`) and browser processes for scheduled browser checks
(`browser.isolation: process`, `browser.concurrency` of them). Both load the checks
themselves, reload with the agent (two-phase: load, then switch together) and stop with it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from synth.agent.run_processes import RunProcesses, SpanSink
from synth.config import Settings
from synth.model import CheckSpec

log = logging.getLogger("synth.agent")


class ProcessPools:
    """`api` and `browser`: each a RunProcesses, or None when not in use."""

    def __init__(
        self,
        *,
        config_path: Path | None,
        check_paths: Sequence[str],
        spans: SpanSink | None,
        on_restart: Callable[[], None],
        on_browser_launch: Callable[[], None],
    ) -> None:
        self.api: RunProcesses | None = None
        self.browser: RunProcesses | None = None
        self._config_path = config_path
        self._check_paths = list(check_paths)
        self._spans = spans
        self._on_restart = on_restart
        self._on_browser_launch = on_browser_launch
        self._starting: list[asyncio.Task[None]] = []

    def _new_pool(self, count: int, *, browser: bool) -> RunProcesses:
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
        pool = RunProcesses(
            count,
            config_path=self._config_path,
            check_paths=self._check_paths,
            spans=self._spans,
            log_level=level,
            on_restart=self._on_restart,
            browser=browser,
            on_launch=self._on_browser_launch if browser else None,
        )
        self._starting.append(asyncio.create_task(pool.start()))
        return pool

    def start(self, settings: Settings, checks: Sequence[CheckSpec]) -> None:
        """Start the pools the settings and checks call for (they load meanwhile); at a
        reload, one newly called for (the first browser check) starts then."""
        if not settings.scheduler.enabled:
            return
        if self.api is None and settings.scheduler.processes > 0:
            self.api = self._new_pool(settings.scheduler.processes, browser=False)
        browsers = settings.browser
        wanted = browsers.isolation == "process" and any(c.uses_browser for c in checks)
        if self.browser is None and wanted:
            self.browser = self._new_pool(browsers.concurrency, browser=True)

    async def started(self) -> None:
        """Wait until the pools being started have loaded (bounded by RunProcesses.start);
        one that failed leaves its runs to the agent."""
        starting, self._starting = self._starting, []
        for task in starting:
            try:
                await task
            except Exception:  # the agent runs every check itself rather than not at all
                log.exception("run processes failed to start; runs stay in the agent")

    def ready_count(self) -> int:
        """Run processes (not browser processes) up with the checks loaded."""
        return self.api.ready_count() if self.api is not None else 0

    async def prepare_reload(self) -> tuple[int | None, int | None]:
        """Have every pool load the checks as the files are now (see RunProcesses)."""
        api = await self.api.prepare_reload() if self.api is not None else None
        browser = await self.browser.prepare_reload() if self.browser is not None else None
        return api, browser

    def commit(self, generations: tuple[int | None, int | None]) -> None:
        for pool, generation in zip((self.api, self.browser), generations, strict=True):
            if pool is not None and generation is not None:
                pool.commit(generation)

    async def close(self) -> None:
        for task in self._starting:
            task.cancel()
        for pool in (self.api, self.browser):
            if pool is not None:
                await pool.close()
