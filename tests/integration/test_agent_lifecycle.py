"""The agent process over its life: schedule cadence, overlap skipping, graceful stop,
reload (API and SIGHUP) — `synth agent` as a real subprocess against the demo shop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import signal
import sqlite3
import statistics
import time
from datetime import datetime
from pathlib import Path

from agent_harness import (
    ENV,
    StartAgent,
    store_url,
    wait_for,
    write_check,
    write_config,
)

from synth.demo import ShopThread
from synth.model import Phase, RunResult, Status
from synth.store import Store

# A check that tags its requests so the shop's log tells them apart.
TICK = """
    import synth

    @synth.check(service="shop", every="1s", timeout="5s")
    async def tick(flow):
        async with flow.step("health"):
            r = await flow.get("/health", headers={"X-Test-Check": "tick"})
            r.expect_status(200)
"""

# A check that notes when it starts and ends, to a file the test reads.
NOTED_SLOW = """
    import asyncio
    import time

    import synth

    NOTES = {notes!r}

    def note(event):
        with open(NOTES, "a") as f:
            f.write(f"{{event}} {{time.time()!r}}\\n")

    @synth.check(service="shop", every="1s", timeout="10s")
    async def slow(flow):
        note("start")
        try:
            async with flow.step("slow step"):
                {body}
        finally:
            note("end")
        note("finished")
"""


def tick_requests(shop: ShopThread) -> int:
    return sum(1 for r in shop.requests if r.headers.get("x-test-check") == "tick")


def read_notes(path: Path) -> list[tuple[str, float]]:
    if not path.exists():
        return []
    notes = []
    for line in path.read_text().splitlines():
        event, _, when = line.partition(" ")
        notes.append((event, float(when)))
    return notes


def max_concurrency(notes: list[tuple[str, float]]) -> int:
    """The most runs that were between "start" and "end" at one moment."""
    changes = sorted((when, 1 if event == "start" else -1) for event, when in notes)
    running = peak = 0
    for _, delta in changes:  # at equal times an end (-1) sorts before a start (+1)
        running += delta
        peak = max(peak, running)
    return peak


async def stored_runs(url: str, check: str) -> list[RunResult]:
    """Every stored run of `check`, read straight from the store (the agent has exited)."""
    store = await Store.open(url)
    try:
        found = []
        for summary in await store.list_runs(check=check):
            result = await store.get_run(summary.run_id)
            assert result is not None
            found.append(result)
        return found
    finally:
        await store.close()


def started(run: dict[str, object]) -> float:
    return datetime.fromisoformat(str(run["started_at"])).timestamp()


def test_schedule_cadence(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> None:
    write_check(tmp_path, "tick.py", TICK)
    agent = start_agent(write_config(tmp_path, shop.base_url))

    before = tick_requests(shop)
    time.sleep(4.5)
    seen = tick_requests(shop) - before

    assert 3 <= seen <= 6, f"{seen} scheduled requests in 4.5 s at every=1s"
    runs = agent.runs(check="tick")
    assert len(runs) >= 3
    assert {r["phase"] for r in runs} == {"scheduled"}
    assert {r["status"] for r in runs} == {"passed"}
    starts = sorted(started(r) for r in runs)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 0.8 <= statistics.median(gaps) <= 1.2, gaps


def test_overlapping_run_is_skipped_not_doubled(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    notes = tmp_path / "notes.txt"
    # Each run takes ~2.5 s in the shop; the schedule asks for one every second.
    body = 'r = await flow.get("/health")\n                r.expect_status(200)'
    write_check(tmp_path, "slow.py", NOTED_SLOW.format(notes=str(notes), body=body))
    shop.set_faults(latency_ms=2500, path_prefix="/health")
    agent = start_agent(write_config(tmp_path, shop.base_url))

    def skipped() -> float | None:
        return agent.metric("synth_scheduler_skipped_overlaps_total", check="slow", env=ENV)

    assert wait_for(skipped, timeout=8, what="a skipped overlap", interval=0.2) >= 1
    wait_for(
        lambda: sum(1 for e, _ in read_notes(notes) if e == "end") >= 2,
        timeout=10,
        what="two finished runs",
        interval=0.1,
    )
    recorded = read_notes(notes)
    assert max_concurrency(recorded) == 1, recorded
    assert "overlap_skipped" in {e.get("event") for e in agent.logs()}

    # The runs that happened each took the full 2.5 s, back to back, never overlapping.
    # A run's "end" note comes a moment before its result is stored.
    def two_stored() -> list[dict[str, object]] | None:
        found = agent.runs(check="slow")
        return found if len(found) >= 2 else None

    runs = sorted(wait_for(two_stored, timeout=5, what="two stored runs"), key=started)
    for earlier, later in itertools.pairwise(runs):
        assert float(earlier["duration_s"]) >= 2.4
        assert started(later) >= started(earlier) + float(earlier["duration_s"]) - 0.05


def test_sigterm_lets_the_runs_in_flight_finish(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    notes = tmp_path / "notes.txt"
    write_check(
        tmp_path, "slow.py", NOTED_SLOW.format(notes=str(notes), body="await asyncio.sleep(2)")
    )
    agent = start_agent(write_config(tmp_path, shop.base_url))
    wait_for(lambda: read_notes(notes), timeout=5, what="a scheduled run to start")
    # A second run in flight: an API caller waiting for its result.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        run_now = pool.submit(agent.post, "/v1/runs", {"check": "slow", "environment": ENV})
        wait_for(
            lambda: [e for e, _ in read_notes(notes) if e == "start"] == ["start"] * 2,
            timeout=5,
            what="the ad-hoc run to start",
        )

        agent.send_signal(signal.SIGTERM)
        signalled = time.time()

        # While draining, the agent says it is not ready and takes no new work.
        def unready() -> dict[str, object] | None:
            response = agent.get("/readyz")
            return response.json() if response.status_code == 503 else None

        assert wait_for(unready, timeout=1.5, what="/readyz 503 while stopping")["stopping"]
        refused = agent.post("/v1/runs", {"check": "slow", "environment": ENV})
        assert refused.status_code == 503, refused.text
        assert agent.post("/v1/deploys", {}).status_code in (422, 503)

        answered = run_now.result(timeout=15)
    code = agent.wait_exit(15)
    exited = time.time()

    assert code == 0, agent.stderr()
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "passed"
    recorded = read_notes(notes)
    finished = [when for event, when in recorded if event == "finished"]
    assert len(finished) == 2, f"a run in flight was cut short: {recorded}"
    assert all(signalled < when <= exited for when in finished)
    assert "agent stopped" in agent.log_messages()

    stored = asyncio.run(stored_runs(store_url(tmp_path), "slow"))
    assert sorted(run.phase for run in stored) == [Phase.ADHOC, Phase.SCHEDULED]
    for run in stored:
        assert run.status is Status.PASSED
        assert run.duration_s >= 1.9
        assert [s.name for s in run.steps] == ["slow step"]
    assert answered.json()["run_id"] in {run.run_id for run in stored}


def test_reload_rejects_a_broken_check_then_sighup_applies_the_fix(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    write_check(tmp_path, "tick.py", TICK)
    agent = start_agent(write_config(tmp_path, shop.base_url))
    assert agent.check_names() == {"tick"}

    write_check(tmp_path, "fresh.py", "import synth\n\n\ndef broken(:\n    pass\n")
    response = agent.post("/v1/reload")
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["ok"] is False
    assert any("fresh.py:4" in p for p in body["problems"]), body["problems"]
    assert "fresh.py:4" in body["detail"]

    reloaded_at = time.time()
    ready = agent.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["reload"]["ok"] is False
    assert any("fresh.py:4" in p for p in ready.json()["reload"]["problems"])
    # The previous set keeps running.
    assert agent.check_names() == {"tick"}
    wait_for(
        lambda: any(started(r) > reloaded_at for r in agent.runs(check="tick")),
        timeout=5,
        what="a scheduled tick after the rejected reload",
        interval=0.2,
    )

    write_check(
        tmp_path,
        "fresh.py",
        """
        import synth

        @synth.check(service="shop", every="1m")
        async def fresh(flow):
            async with flow.step("health"):
                (await flow.get("/health")).expect_status(200)
        """,
    )
    agent.send_signal(signal.SIGHUP)
    wait_for(
        lambda: agent.check_names() == {"tick", "fresh"},
        timeout=10,
        what="the fixed check after SIGHUP",
        interval=0.1,
    )
    reload = agent.get("/readyz").json()["reload"]
    assert reload == {"ok": True, "checks": 2, "problems": []}
    assert agent.metric("synth_reloads_total", result="error") == 1
    assert agent.metric("synth_reloads_total", result="ok") == 1


def test_a_slow_store_does_not_make_the_schedule_skip(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    # Another process holds SQLite's write lock for 3.5 s: the agent's writes wait (within
    # its busy timeout). The check keeps its 1 s cadence meanwhile, nothing is counted as
    # overlapping itself, and every run is stored once the lock goes.
    write_check(tmp_path, "tick.py", TICK)
    agent = start_agent(write_config(tmp_path, shop.base_url))
    wait_for(lambda: len(agent.runs(check="tick")) >= 1, timeout=5, what="a first tick")

    database = store_url(tmp_path).removeprefix("sqlite+aiosqlite:///")
    blocker = sqlite3.connect(database, timeout=5, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        before = tick_requests(shop)
        time.sleep(3.5)
        during = tick_requests(shop) - before
        pending = agent.metric("synth_results_pending")  # the store is falling behind
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    assert during >= 3, f"{during} ticks in 3.5 s while the store was locked"
    assert pending is not None
    assert pending >= 1
    assert (agent.metric("synth_scheduler_skipped_overlaps_total", check="tick", env=ENV) or 0) == 0
    total = tick_requests(shop)
    wait_for(
        lambda: len(agent.runs(check="tick", limit=100)) >= total - 1,
        timeout=10,
        what="every tick stored after the lock",
        interval=0.2,
    )
    # Ticks go on: each waits up to the writer's linger (0.1 s) before it is stored.
    wait_for(
        lambda: agent.metric("synth_results_pending") == 0,
        timeout=5,
        what="no results waiting for the store",
        interval=0.05,
    )
