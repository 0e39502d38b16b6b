"""Queueing discipline of the agent's result pipeline: the batched store writer puts a
result someone waits on ahead of a backlog, and the alert engine applies every result
exactly once, in order, however many runs finish at the same moment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from synth.agent.writer import ResultWriter
from synth.alerting.engine import AlertEngine
from synth.config import Settings
from synth.model import Phase, RunResult, Status
from synth.outputs.metrics import Metrics
from synth.store import Store, StoreError


def run(run_id: str, phase: Phase = Phase.SCHEDULED) -> RunResult:
    return RunResult(
        run_id=run_id,
        check="c",
        service="s",
        environment="e",
        phase=phase,
        location="l",
        status=Status.PASSED,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.01,
        steps=(),
        trace_id="0" * 31 + "1",
    )


async def test_an_urgent_result_is_written_ahead_of_the_backlog() -> None:
    batches: list[list[str]] = []
    first_batch_started = asyncio.Event()
    gate = asyncio.Event()

    async def save(results: Sequence[RunResult]) -> None:
        first_batch_started.set()
        await gate.wait()  # a slow store: the backlog builds behind this batch
        batches.append([r.run_id for r in results])

    observed: list[str] = []
    writer = ResultWriter(
        save,
        observe=lambda r: observed.append(r.run_id),
        failed=lambda exc: None,
        recovered=lambda: None,
        batch=3,
        linger_s=0.01,
    )
    task = asyncio.create_task(writer.run())
    try:
        scheduled = [asyncio.create_task(writer.put(run(f"s{i}"))) for i in range(7)]
        await asyncio.wait_for(first_batch_started.wait(), 5)
        deploy = asyncio.create_task(writer.put(run("deploy", Phase.DEPLOY), urgent=True))
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.wait_for(asyncio.gather(deploy, *scheduled), 5)
    finally:
        task.cancel()
    assert batches[0] == ["s0", "s1", "s2"]  # already on its way when the deploy came
    assert batches[1][0] == "deploy"
    assert sorted(r for b in batches for r in b) == sorted(["deploy"] + [f"s{i}" for i in range(7)])
    assert sorted(observed) == sorted(r for b in batches for r in b)


class RecordingEngine(AlertEngine):
    """The engine's queueing with an `_apply` that takes a while and records each call."""

    def __init__(self) -> None:
        super().__init__(
            settings=lambda: Settings.model_validate({}),
            store=lambda: None,
            check=lambda name: None,
            checks_for=lambda service, env, tags: (),
            metrics=Metrics(),
            origin="test",
            wake=lambda: None,
        )
        self.applied: list[str] = []

    async def _apply(self, result: RunResult) -> None:
        await asyncio.sleep(0.001)  # a store round trip
        self.applied.append(result.run_id)


async def test_results_finishing_together_are_each_applied_once_in_order() -> None:
    engine = RecordingEngine()
    ids = [f"r{i}" for i in range(50)]
    await asyncio.gather(*(engine.observe(run(i)) for i in ids))
    await engine.flush()
    assert engine.applied == ids


def small_writer(
    save: Callable[[Sequence[RunResult]], Awaitable[None]],
    *,
    max_pending: int,
    observe: Callable[[RunResult], None] = lambda r: None,
    retry_s: float = 5.0,
) -> ResultWriter:
    """A writer with a tiny bound and batch, lingering 1 ms."""
    return ResultWriter(
        save,
        observe=observe,
        failed=lambda exc: None,
        recovered=lambda: None,
        max_pending=max_pending,
        batch=2,
        linger_s=0.001,
        retry_s=retry_s,
    )


async def test_a_slow_store_slows_puts_down_and_loses_nothing() -> None:
    stored: list[str] = []
    gate = asyncio.Event()
    peak = 0

    async def save(results: Sequence[RunResult]) -> None:
        nonlocal peak
        peak = max(peak, writer.pending + len(results))
        await gate.wait()
        stored.extend(r.run_id for r in results)

    writer = small_writer(save, max_pending=3)
    task = asyncio.create_task(writer.run())
    try:
        puts = [asyncio.create_task(writer.put(run(f"s{i}"))) for i in range(10)]
        await asyncio.sleep(0.05)
        assert writer.pending <= 3  # the rest wait for room instead of piling up
        assert sum(p.done() for p in puts) == 0
        gate.set()
        await asyncio.wait_for(asyncio.gather(*puts), 5)
    finally:
        task.cancel()
    assert sorted(stored) == sorted(f"s{i}" for i in range(10))
    assert writer.dropped == 0
    assert peak <= 3 + 2


async def test_flush_at_stop_writes_what_waiting_puts_bring() -> None:
    stored: list[str] = []
    gate = asyncio.Event()

    async def save(results: Sequence[RunResult]) -> None:
        await gate.wait()
        stored.extend(r.run_id for r in results)

    writer = small_writer(save, max_pending=2)
    task = asyncio.create_task(writer.run())
    puts = [asyncio.create_task(writer.put(run(f"s{i}"))) for i in range(6)]
    await asyncio.sleep(0.05)
    task.cancel()  # the agent stopping: the writer task goes, flush takes over
    await asyncio.gather(task, return_exceptions=True)
    gate.set()
    await asyncio.wait_for(writer.flush(), 5)
    await asyncio.wait_for(asyncio.gather(*puts), 5)
    assert sorted(stored) == sorted(f"s{i}" for i in range(6))


async def test_a_failing_store_drops_the_oldest_past_the_bound_and_logs_it_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def save(results: Sequence[RunResult]) -> None:
        raise StoreError("down")

    observed: list[str] = []
    writer = small_writer(
        save, max_pending=3, observe=lambda r: observed.append(r.run_id), retry_s=60
    )
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.wait_for(writer.put(run("s0")), 5)  # fails: buffered and counted
        with caplog.at_level(logging.ERROR, logger="synth.agent"):
            for i in range(1, 8):
                await asyncio.wait_for(writer.put(run(f"s{i}")), 5)
    finally:
        task.cancel()
    assert writer.pending == 3
    assert writer.dropped == 5
    assert sorted(observed) == sorted(f"s{i}" for i in range(8))  # every run counted
    drops = [r for r in caplog.records if "dropped the oldest" in r.getMessage()]
    assert len(drops) == 1  # not a line per dropped result


async def test_a_result_the_store_refuses_is_dropped_alone_and_the_rest_are_saved(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run whose text the database can never take (a lone surrogate) used to be retried
    forever at the head of the queue, holding up every result behind it."""
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/synth.db")
    observed: list[str] = []
    failures: list[Exception] = []
    writer = ResultWriter(
        store.save_runs,
        observe=lambda r: observed.append(r.run_id),
        failed=failures.append,
        recovered=lambda: None,
        batch=10,
        linger_s=0.01,
    )
    poison = replace(run("bad"), check="c\ud800")
    task = asyncio.create_task(writer.run())
    try:
        with caplog.at_level(logging.ERROR, logger="synth.agent"):
            await asyncio.wait_for(
                asyncio.gather(writer.put(run("a")), writer.put(poison), writer.put(run("b"))), 5
            )
        stored = {summary.run_id for summary in await store.list_runs(limit=10)}
    finally:
        task.cancel()
        await store.close()
    assert stored == {"a", "b"}
    assert sorted(observed) == ["a", "b", "bad"]
    assert failures == []
    assert writer.healthy
    assert writer.dropped == 1
    assert any("refused run bad" in record.getMessage() for record in caplog.records)
