"""The agent's browser workers: `browser.concurrency` event-loop threads, each running one
browser run at a time with its own Chromium (synth.browser.engine keeps one per loop).
Separate from the API checks' workers, so a slow page never delays a scheduled API run."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from synth.agent.isolation import RunWorkers
from synth.browser.engine import close_running_loop_engine

T = TypeVar("T")


async def _niced(coroutine: Coroutine[Any, Any, T], nice: int) -> T:
    lower_thread_priority(nice)
    return await coroutine


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread (and what it starts from now on) at least `nice`; never
    raises (a platform without per-thread priorities runs as it is)."""
    if nice <= 0:
        return
    with contextlib.suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) < nice:
            os.setpriority(os.PRIO_PROCESS, thread, nice)


class BrowserWorkers:
    """A pool of browser workers; `run()` runs one coroutine on an idle one.

    Each worker thread lowers its own scheduling priority (`browser.nice`) before its
    first run: Linux keeps a nice value per thread, and every process the thread starts —
    Playwright's driver, which starts Chromium, whose renderers fork from it — inherits
    it. On a busy machine the agent's loop (the scheduler, API checks, the API) then gets
    the CPU first and browsers take what is left, instead of two browsers delaying every
    scheduled API run."""

    def __init__(self, concurrency: int, *, nice: int = 10) -> None:
        self._concurrency = concurrency
        self._nice = nice
        self._workers = RunWorkers(concurrency)

    async def run(self, coroutine: Coroutine[Any, Any, T], *, label: str, urgent: bool) -> T:
        return await self._workers.run(_niced(coroutine, self._nice), label=label, urgent=urgent)

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
