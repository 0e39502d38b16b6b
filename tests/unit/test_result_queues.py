"""Queueing discipline of the agent's result pipeline: the batched store writer puts a
result someone waits on ahead of a backlog, and the alert engine applies every result
exactly once, in order, however many runs finish at the same moment."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from synth.agent.writer import ResultWriter
from synth.alerting.engine import AlertEngine
from synth.config import Settings
from synth.model import Phase, RunResult, Status
from synth.outputs.metrics import Metrics


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
