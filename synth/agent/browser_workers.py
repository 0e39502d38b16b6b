"""The agent's browser workers: `browser.concurrency` event-loop threads, each running one
browser run at a time with its own Chromium (synth.browser.engine keeps one per loop).
Separate from the API checks' workers, so a slow page never delays a scheduled API run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from synth.agent.isolation import RunWorkers
from synth.browser.engine import close_running_loop_engine

T = TypeVar("T")


class BrowserWorkers:
    """A pool of browser workers; `run()` runs one coroutine on an idle one."""

    def __init__(self, concurrency: int) -> None:
        self._concurrency = concurrency
        self._workers = RunWorkers(concurrency)

    async def run(self, coroutine: Coroutine[Any, Any, T], *, label: str, urgent: bool) -> T:
        return await self._workers.run(coroutine, label=label, urgent=urgent)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Close every worker's browser, then the worker threads."""
        closing = [
            asyncio.wait_for(
                self._workers.run(close_running_loop_engine(), label="browser shutdown"),
                timeout_s,
            )
            for _ in range(self._workers.size)
        ]
        await asyncio.gather(*closing, return_exceptions=True)
        await self._workers.close()
