"""`synth baseline diff` against production's newest runs: the contract is the newest one,
so a field removed a few runs ago reads `-path` and a type change `old→new`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from synth.baseline.record import fragments, newest_window
from synth.baseline.shape import json_shape
from synth.baseline.table import contract_diff, diff_table
from synth.model import HttpTimings, Phase, RequestRecord, RunResult, Status, StepResult

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def run(n: int, body: object, env: str = "production", duration: float = 0.01) -> RunResult:
    request = RequestRecord(
        "GET", "http://shop/x", 200, HttpTimings(total_s=duration), json_shape=json_shape(body)
    )
    step = StepResult("list", Status.PASSED, duration, requests=(request,))
    return RunResult(
        run_id=f"r{n}",
        check="browse",
        service="shop",
        environment=env,
        phase=Phase.SCHEDULED,
        location="local",
        status=Status.PASSED,
        started_at=START + timedelta(seconds=n),
        duration_s=duration,
        steps=(step,),
    )


BEFORE = {"count": 2, "price": 3}
AFTER = {"price": "3"}


def test_the_newest_contract_is_compared_removed_and_retyped_fields_read_plainly() -> None:
    baseline = fragments([run(i, BEFORE, env="staging") for i in range(20)], "v1")[0]
    history = [run(i, BEFORE) for i in range(15)] + [run(15 + i, AFTER) for i in range(5)]
    window = newest_window(list(reversed(history)))  # newest first, as the store lists them
    assert (window.runs, window.oldest, window.newest) == (20, START, START + timedelta(seconds=19))
    (recent,) = window.baselines
    assert recent.latency.count == 20  # latency from the whole window
    assert recent.contract.samples == 5  # the contract only since the shape changed
    assert contract_diff(baseline.contract, recent.contract) == ["-count", "price: number→string"]
    table = diff_table([baseline], window.baselines)
    assert "-count, price: number→string" in table


def test_a_summary_of_every_run_would_hide_the_change() -> None:
    baseline = fragments([run(i, BEFORE, env="staging") for i in range(20)], "v1")[0]
    history = [run(i, BEFORE) for i in range(15)] + [run(15 + i, AFTER) for i in range(5)]
    summary = fragments(history, "all runs")[0]
    assert contract_diff(baseline.contract, summary.contract) == ["price: number→number|string"]
