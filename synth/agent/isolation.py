"""Run isolation: every check run executes on a pooled worker thread with its own event
loop, one run per worker at a time, so check code that blocks cannot stall the agent.

Bounds (documented in README, measured in bench/):
- Blocking I/O in check code (`time.sleep`, a synchronous HTTP call) releases the GIL: it
  stalls only its own worker; other checks, the scheduler and the API are not delayed.
- CPU-bound check code holds the GIL, but CPython hands it over every
  `sys.getswitchinterval()` (the agent sets 1 ms): another check waits about that long
  per handover.
- A watchdog thread sees a worker's loop stop answering for more than the threshold, and
  logs the check and the file:line it is stuck at, and counts the blocked seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger("synth.isolation")

T = TypeVar("T")
HEARTBEAT_S = 0.025
WATCH_S = 0.05
BlockedHook = Callable[[str, float], None]


@dataclass(eq=False)
class _Worker:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    label: str | None = None
    source_files: frozenset[str] = frozenset()
    heartbeat: float = field(default_factory=time.monotonic)
    blocked_since: float | None = None
    stuck_at: str = ""
    blocked_label: str | None = None
    generation: int = 0
    episode_lock: threading.Lock = field(default_factory=threading.Lock)


class RunWorkers:
    """A pool of event-loop threads; `run()` executes one coroutine on an idle worker."""

    def __init__(
        self,
        max_workers: int,
        *,
        on_blocked: BlockedHook | None = None,
        threshold_s: float = 0.1,
    ) -> None:
        self._max = max_workers
        self._idle: list[_Worker] = []
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._available = _PriorityGate(max_workers)
        self._on_blocked = on_blocked
        self._threshold = threshold_s
        self._closed = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="synth-watchdog", daemon=True)
        self._watchdog.start()

    @property
    def size(self) -> int:
        return len(self._all)

    def slot(self, *, urgent: bool = False) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the concurrency slots (for a run made elsewhere: a run process)."""
        return self._available.slot(urgent)

    async def run(
        self,
        coroutine: Coroutine[Any, Any, T],
        *,
        label: str,
        source_files: frozenset[str] = frozenset(),
        urgent: bool = False,
        inline: bool = False,
    ) -> T:
        """Run `coroutine` on a worker; cancelling the caller cancels it there too. With
        every worker busy, `urgent` runs (someone waits on them) go before queued others.
        `inline` runs it on the caller's loop instead, within the same concurrency bound:
        for code that cannot block (declarative checks), the thread hop is pure cost."""
        async with self._available.slot(urgent):
            if inline:
                return await coroutine
            worker = self._checkout()
            worker.label = label
            worker.source_files = source_files
            worker.heartbeat = time.monotonic()
            worker.generation += 1
            # Heartbeats only while busy: idle workers must cost nothing.
            worker.loop.call_soon_threadsafe(self._beat, worker, worker.generation)
            future = asyncio.run_coroutine_threadsafe(coroutine, worker.loop)
            try:
                return await asyncio.wrap_future(future)
            finally:
                future.cancel()
                with worker.episode_lock:
                    # A run that ends while blocked ends its episode: the heartbeat stops
                    # with the run, so the watchdog would never see the loop answer.
                    self._end_episode(worker, time.monotonic())
                    worker.label = None
                with self._lock:
                    self._idle.append(worker)

    def _checkout(self) -> _Worker:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        worker = self._spawn()
        with self._lock:
            self._all.append(worker)
        return worker

    def _spawn(self) -> _Worker:
        ready = threading.Event()
        holder: dict[str, asyncio.AbstractEventLoop] = {}

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            holder["loop"] = loop
            ready.set()
            loop.run_forever()
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        thread = threading.Thread(target=main, name=f"synth-run-{len(self._all)}", daemon=True)
        thread.start()
        ready.wait()
        return _Worker(loop=holder["loop"], thread=thread)

    def _beat(self, worker: _Worker, generation: int) -> None:
        if worker.generation != generation or worker.label is None or self._closed.is_set():
            return
        worker.heartbeat = time.monotonic()
        worker.loop.call_later(HEARTBEAT_S, self._beat, worker, generation)

    def _watch(self) -> None:
        while not self._closed.wait(WATCH_S):
            now = time.monotonic()
            with self._lock:
                workers = list(self._all)
            for worker in workers:
                self._inspect(worker, now)

    def _inspect(self, worker: _Worker, now: float) -> None:
        with worker.episode_lock:
            stalled = now - worker.heartbeat
            label = worker.label
            if worker.blocked_since is None:
                if label is not None and stalled > self._threshold:
                    if _waiting_for_io(worker.thread):
                        # The loop sits in select(): not check code, but the OS not running
                        # the thread (an overloaded machine). Nothing to blame on the check.
                        return
                    worker.blocked_since = worker.heartbeat
                    worker.blocked_label = label
                    worker.stuck_at = _where(worker.thread, worker.source_files)
                    log.warning(
                        "check %s is blocking its event loop at %s",
                        label,
                        worker.stuck_at,
                        extra={
                            "check": label,
                            "at": worker.stuck_at,
                            "blocked_s": round(stalled, 3),
                        },
                    )
                return
            if stalled <= self._threshold:  # the loop answers again: the episode is over
                self._end_episode(worker, worker.heartbeat)

    def _end_episode(self, worker: _Worker, end: float) -> None:
        """Report a blocking episode (caller holds `worker.episode_lock`)."""
        if worker.blocked_since is None:
            return
        duration = max(end - worker.blocked_since, 0.0)
        label = worker.blocked_label
        worker.blocked_since = None
        log.warning(
            "check %s blocked its event loop for %.0f ms at %s",
            label,
            duration * 1000,
            worker.stuck_at,
            extra={"check": label, "at": worker.stuck_at, "blocked_s": round(duration, 3)},
        )
        if self._on_blocked is not None and label is not None:
            self._on_blocked(label, duration)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop every worker loop and join its thread."""
        self._closed.set()
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            worker.loop.call_soon_threadsafe(worker.loop.stop)
        deadline = time.monotonic() + timeout_s
        for worker in workers:
            await asyncio.to_thread(worker.thread.join, max(deadline - time.monotonic(), 0))


class _PriorityGate:
    """A semaphore whose urgent waiters are served before the others, each in order."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    @contextlib.asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        if self._free > 0 and not any(self._waiting):
            self._free -= 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting[0 if urgent else 1].append(waiter)
            try:
                await waiter  # the releaser handed its slot over
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                else:
                    with contextlib.suppress(ValueError):  # _release may have dropped it
                        self._waiting[0 if urgent else 1].remove(waiter)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in self._waiting:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._free += 1


def _waiting_for_io(thread: threading.Thread) -> bool:
    """Whether the thread's innermost frame is its event loop's selector wait."""
    frame = sys._current_frames().get(thread.ident or -1)
    return (
        frame is not None
        and frame.f_code.co_name in {"select", "poll"}
        and frame.f_code.co_filename.endswith("selectors.py")
    )


def _where(thread: threading.Thread, source_files: frozenset[str]) -> str:
    """The innermost frame of the check's own code on `thread`'s stack: file:line func."""
    frame = sys._current_frames().get(thread.ident or -1)
    if frame is None:
        return "unknown"
    stack = traceback.extract_stack(frame)
    for entry in reversed(stack):
        if entry.filename in source_files:
            return f"{entry.filename}:{entry.lineno} in {entry.name}: {(entry.line or '').strip()}"
    last = stack[-1]
    return f"{last.filename}:{last.lineno} in {last.name}"
