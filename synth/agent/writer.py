"""Run results on their way to the store: written in batches, buffered while it is away.

One transaction per run costs more than the run itself at thousands of checks (SQLite:
a BEGIN IMMEDIATE, an INSERT and a COMMIT, each a round trip to the driver's thread). The
writer gathers the results that finish within `linger_s` of each other into one
transaction; an `urgent` result (someone waits for it: an API call, a deploy verdict) cuts
the wait short and goes ahead of queued scheduled results. `put` returns once its result
is stored, or buffered because the store failed, so a caller that reads the store next
finds it.

A result is counted (`observe`) after it is stored while the store answers: a run that
/metrics counts survives a SIGKILL. While the store answers but falls behind, `put` waits
for room below `max_pending` (backpressure: the schedule slows down and says so, no result
is lost). While the store fails, results are counted at once and kept, oldest first, up to
`max_pending` (beyond that the oldest are dropped, counted and logged at most every
`DROP_LOG_S`), and retried every `retry_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from synth.model import RunResult
from synth.store import StoreError, StoreRefused

log = logging.getLogger("synth.agent")

SaveRuns = Callable[[Sequence[RunResult]], Awaitable[None]]
DROP_LOG_S = 10.0


@dataclass(eq=False, slots=True)
class _Item:
    result: RunResult
    observed: bool = False
    done: asyncio.Future[None] | None = field(default=None)


class ResultWriter:
    """Batches results into the store; see the module docstring."""

    def __init__(
        self,
        save: SaveRuns,
        *,
        observe: Callable[[RunResult], None],
        failed: Callable[[Exception], None],
        recovered: Callable[[], None],
        max_pending: int = 10_000,
        batch: int = 200,
        linger_s: float = 0.1,
        retry_s: float = 5.0,
    ) -> None:
        self._save = save
        self._observe = observe
        self._failed = failed
        self._recovered = recovered
        self._max_pending = max_pending
        self._batch = batch
        self._linger_s = linger_s
        self._retry_s = retry_s
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._healthy = True
        self._room = asyncio.Event()
        self._room.set()
        self._waiting = 0  # puts waiting for room
        self.dropped = 0
        self._dropped_logged = 0
        self._drop_logged_at = -DROP_LOG_S

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def healthy(self) -> bool:
        """False from a failed write until a write succeeds again."""
        return self._healthy

    async def put(self, result: RunResult, *, urgent: bool = False) -> None:
        """Queue `result`; returns once it is stored or, the store failing, buffered.
        `urgent` writes it (and whatever is queued) without waiting for more to join."""
        while not urgent and self._healthy and len(self._queue) >= self._max_pending:
            # A store that answers but falls behind slows the runs down instead of
            # losing their results (urgent ones are few and someone waits on them).
            self._room.clear()
            self._waiting += 1
            try:
                await self._room.wait()
            finally:
                self._waiting -= 1
        item = _Item(result)
        if not self._healthy:
            self._count(item)
        else:
            item.done = asyncio.get_running_loop().create_future()
        if urgent and self._healthy:
            # Someone waits on this one: it goes into the next transaction, ahead of a
            # backlog of scheduled results (stored order does not matter: ids are unique).
            self._queue.appendleft(item)
        else:
            self._queue.append(item)
        self._trim()
        self._wake.set()
        if urgent:
            self._urgent.set()
        if item.done is not None:
            await asyncio.shield(item.done)

    async def run(self) -> None:
        """The writer task: write whatever is queued, batch by batch, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._healthy and not self._urgent.is_set():
                # Let the runs finishing about now join this transaction.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self._linger_s)
            self._urgent.clear()
            while self._queue:
                if not await self._write_batch():
                    await asyncio.sleep(self._retry_s)

    async def flush(self) -> None:
        """Try once more to write everything queued, and what puts waiting for room
        bring (at a graceful stop, the writer task gone)."""
        while True:
            while self._queue:
                if not await self._write_batch():
                    return
            if not self._waiting:
                return
            self._room.set()
            await asyncio.sleep(0)  # the waiters queue their results

    async def _write_batch(self) -> bool:
        batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
        try:
            done = await self._store(batch)
        except BaseException as exc:
            self._queue.extendleft(reversed(batch))  # cancelled or failed: nothing is lost
            if not isinstance(exc, StoreError):
                raise
            self._healthy = False
            self._failed(exc)
            for item in batch:
                self._count(item)
            self._trim()
            self._room.set()  # waiters buffer (and count) their results from now on
            return False
        if not self._healthy:
            self._healthy = True
            self._recovered()
        for item in done:
            self._count(item)
        if len(self._queue) < self._max_pending:
            self._room.set()
        return True

    async def _store(self, batch: list[_Item]) -> list[_Item]:
        """Save `batch`, taking off it what is done (saved, or refused for good); on an
        error what is left in `batch` is still to be saved."""
        try:
            await self._save([item.result for item in batch])
        except StoreRefused:
            pass  # data the database can never take must not hold up the results with it
        else:
            done = batch[:]
            batch.clear()
            return done
        done = []
        while batch:
            item = batch[0]
            try:
                await self._save([item.result])
            except StoreRefused as exc:
                self.dropped += 1
                log.error(
                    "the store refused run %s of %s; it is not kept: %s",
                    item.result.run_id,
                    item.result.check,
                    exc,
                    extra={"run_id": item.result.run_id, "check": item.result.check},
                )
            done.append(batch.pop(0))
        return done

    def _count(self, item: _Item) -> None:
        """Count the result (once) and release whoever waits for it."""
        if not item.observed:
            item.observed = True
            self._observe(item.result)
        if item.done is not None and not item.done.done():
            item.done.set_result(None)

    def _trim(self) -> None:
        over = len(self._queue) - self._max_pending
        if over <= 0 or self._healthy:
            return
        for _ in range(over):
            self._count(self._queue.popleft())
        self.dropped += over
        now = time.monotonic()
        if now - self._drop_logged_at >= DROP_LOG_S:
            log.error(
                "store unavailable too long: dropped the oldest unsaved results",
                extra={
                    "dropped": self.dropped - self._dropped_logged,
                    "dropped_total": self.dropped,
                },
            )
            self._drop_logged_at = now
            self._dropped_logged = self.dropped
