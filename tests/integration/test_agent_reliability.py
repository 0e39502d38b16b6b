"""The agent when things break: SIGKILL mid-run, a store that goes away and comes back, and
several agents sharing one PostgreSQL store — `synth agent` as real subprocesses against the
demo shop, with real SQLite files and real PostgreSQL servers."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from agent_harness import (
    ENV,
    SERVICE,
    AgentProcess,
    StartAgent,
    copy_example_checks,
    wait_for,
    write_check,
    write_config,
)
from postgres import PostgresServer, postgres_server  # noqa: F401

from synth.demo import ShopThread
from synth.store.migrations import LATEST_VERSION

CHECKS = ("alpha", "beta", "gamma", "delta")
TICKING = """
    import synth

    @synth.check(service="shop", name="{name}", every="1s", timeout="5s")
    async def tick(flow):
        async with flow.step("health"):
            (await flow.get("/health")).expect_status(200)
"""


def write_ticks(directory: Path, names: tuple[str, ...] = CHECKS) -> None:
    for name in names:
        write_check(directory, f"{name}.py", TICKING.format(name=name))


def started(run: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(run["started_at"])).timestamp()


def runs_counted(agent: AgentProcess) -> float:
    """Every run the agent has finished, by its own /metrics."""
    response = agent.get("/metrics")
    assert response.status_code == 200
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line.startswith("synth_check_runs_total{")
    )


def store_errors(agent: AgentProcess) -> float:
    response = agent.get("/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in response.text.splitlines()
        if line.startswith("synth_store_errors_total{")
    )


# -- SIGKILL ----------------------------------------------------------------------------------


def test_sigkill_loses_no_completed_run_and_the_next_start_is_clean(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    # Runs take ~150 ms, four checks every second: the kill lands with runs in flight.
    shop.set_faults(latency_ms=150, path_prefix="/health")
    write_ticks(tmp_path)
    config = write_config(tmp_path, shop.base_url)
    agent = start_agent(config)
    wait_for(lambda: len(agent.runs(limit=500)) >= 8, timeout=10, what="8 stored runs")
    wait_for(
        lambda: agent.metric("synth_runs_in_flight") or None,
        timeout=5,
        what="a run in flight",
        interval=0.01,
    )
    reported = {r["run_id"] for r in agent.runs(limit=500)}
    counted = runs_counted(agent)
    assert agent.kill() == -9
    killed_at = time.time()

    again = start_agent(config)  # waits for /readyz 200: store opened, scheduler running
    ready = again.get("/readyz").json()
    assert ready["store_reachable"] is True
    assert ready["ready"] is True
    before_kill = [r for r in again.runs(limit=500) if started(r) < killed_at]
    stored = {r["run_id"] for r in before_kill}
    assert reported <= stored, f"lost after SIGKILL: {reported - stored}"
    assert len(stored) >= counted, (len(stored), counted)  # every run /metrics had counted

    # Scheduling resumes: every check runs again after the restart.
    def resumed() -> bool:
        fresh = {r["check"] for r in again.runs(limit=500) if started(r) > killed_at}
        return fresh == set(CHECKS)

    wait_for(resumed, timeout=10, what="every check running again", interval=0.2)
    # The database is intact and was not migrated again.
    with sqlite3.connect(tmp_path / "synth.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        versions = [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, LATEST_VERSION + 1))
    problems = [e for e in again.logs() if e.get("level") in ("ERROR", "CRITICAL")]
    assert problems == [], problems


# -- the store goes away ----------------------------------------------------------------------


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, to stop and start."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def test_store_outage_degrades_readiness_keeps_checking_and_catches_up(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    private_postgres: PostgresServer,
) -> None:
    write_ticks(tmp_path, CHECKS[:2])
    config = write_config(tmp_path, shop.base_url, store=private_postgres.create_database())
    agent = start_agent(config)
    wait_for(lambda: len(agent.runs(limit=500)) >= 2, timeout=10, what="stored runs")
    assert store_errors(agent) == 0

    private_postgres.stop()
    down_at = time.time()

    def unready() -> dict[str, Any] | None:
        response = agent.get("/readyz")
        return response.json() if response.status_code == 503 else None

    state = wait_for(unready, timeout=5, what="/readyz 503", interval=0.1)
    assert state["store_reachable"] is False
    assert state["scheduler_running"] is True
    wait_for(lambda: store_errors(agent) > 0, timeout=10, what="store errors counted")
    # Read once the writer has failed: the batch it was saving when the store went away
    # (runs started before `down_at`) is counted by then, not inside the outage window.
    counted = runs_counted(agent)
    # Checks keep running on schedule: two checks at 1 s for 3 s more.
    wait_for(lambda: runs_counted(agent) >= counted + 5, timeout=6, what="runs during the outage")
    unavailable = agent.get("/v1/runs")
    assert unavailable.status_code == 503
    assert "store unavailable" in unavailable.json()["detail"]
    during = runs_counted(agent)

    private_postgres.start()  # same port, same data
    up_at = time.time()
    wait_for(lambda: agent.get("/readyz").status_code == 200, timeout=10, what="/readyz 200 again")

    # The runs buffered during the outage land: everything /metrics counted is stored.
    def caught_up() -> bool:
        counted_now = runs_counted(agent)
        return len(agent.runs(limit=500)) >= counted_now

    wait_for(caught_up, timeout=15, what="buffered runs stored", interval=0.5)
    in_outage = [r for r in agent.runs(limit=500) if down_at < started(r) < up_at]
    assert len(in_outage) >= during - counted, (len(in_outage), during, counted)
    assert {r["check"] for r in in_outage} == set(CHECKS[:2])


# -- several agents, one store -----------------------------------------------------------------


def start_sharing(
    directory: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    store: str,
    cluster: bool = True,
    **deploys: Any,
) -> AgentProcess:
    directory.mkdir()
    copy_example_checks(directory)
    config = write_config(
        directory,
        shop.base_url,
        scheduler={"enabled": False},
        deploys=deploys,
        store=store,
        extra={"cluster": {"enabled": cluster}},
    )
    return start_agent(config)


def event(key: str, **fields: Any) -> dict[str, Any]:
    return {"service": SERVICE, "environment": ENV, "version": "4.0.0", "id": key, **fields}


def logins(shop: ShopThread) -> int:
    return sum(1 for r in shop.requests if r.path == "/api/login")


def test_agents_sharing_a_store_verify_each_deploy_once(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    a = start_sharing(tmp_path / "a", shop, start_agent, store, settle="2s")
    b = start_sharing(tmp_path / "b", shop, start_agent, store, settle="2s")

    # A webhook retried to the other agent while the first verifies.
    first = a.deploy(event("release-9"))
    assert first.status_code == 202, first.text
    deploy_id = first.json()["id"]
    retried = b.deploy(event("release-9"))
    assert retried.status_code == 200, retried.text
    assert retried.json()["id"] == deploy_id
    seen_by_b = b.get(f"/v1/deploys/{deploy_id}").json()
    assert seen_by_b["status"] in ("pending", "running"), "B must not end A's verification"
    assert b.wait_deploy(deploy_id, wait=20)["status"] == "passed"  # B follows A's progress

    # The same event delivered to both at once: one accepts it, the other points to it.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda agent: agent.deploy(event("release-10")), (a, b)))
    assert sorted(r.status_code for r in answers) == [200, 202], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert a.wait_deploy(answers[0].json()["id"], wait=20)["status"] == "passed"

    # A marker deploy, announced after them and verified to the end on B: a second
    # verification of either, had one started, would have reached the shop before it.
    marker = b.deploy(event("release-marker"))
    assert marker.status_code == 202, marker.text
    assert b.wait_deploy(marker.json()["id"], wait=20)["status"] == "passed"
    assert logins(shop) == 6, "three deploys, each verified once: checkout and browse log in"
    assert len(a.runs(phase="deploy")) == 9  # 3 checks x 3 deploys, in the shared store
    verdicts = [
        agent.metric("synth_deploy_verdicts_total", service=SERVICE, env=ENV, result="pass") or 0
        for agent in (a, b)
    ]
    assert sum(verdicts) == 3, verdicts


def test_outside_a_cluster_a_deploy_orphaned_by_a_killed_agent_is_finished_as_error(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    # Agents sharing a store with cluster mode off cannot verify each other's deploys (the
    # cluster case, a survivor's real verdict, is test_cluster_deploys.py).
    store = postgres_server.create_database()
    lease = {"settle": "30s", "lease": "1s"}
    a = start_sharing(tmp_path / "a", shop, start_agent, store, cluster=False, **lease)
    b = start_sharing(tmp_path / "b", shop, start_agent, store, cluster=False, **lease)
    deploy_id = a.deploy(event("release-11")).json()["id"]
    wait_for(
        lambda: b.get(f"/v1/deploys/{deploy_id}").json()["status"] == "running",
        timeout=5,
        what="B to see A's verification running",
    )
    # A's heartbeats, seen through B, span twice the lease, and B leaves it running.
    first_beat = datetime.fromisoformat(b.get(f"/v1/deploys/{deploy_id}").json()["updated_at"])

    def beats_span_two_leases() -> bool:
        record = b.get(f"/v1/deploys/{deploy_id}").json()
        assert record["status"] == "running", record
        beat = datetime.fromisoformat(record["updated_at"])
        return (beat - first_beat).total_seconds() >= 2.0

    wait_for(beats_span_two_leases, timeout=10, what="A's heartbeats over two leases")

    a.kill()
    killed = time.monotonic()
    record = b.wait_deploy(deploy_id, wait=10)
    assert record["status"] == "error", record
    assert record["verdict"]["result"] == "error"
    assert time.monotonic() - killed < 4, "finished within the lease and a long-poll re-read"
    assert shop.requests == []  # still settling when A died: nothing ran


# -- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted in tmp_path (a real filesystem that fills up), unmounted after."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem has no room left."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_makes_the_agent_unready_until_writes_succeed_again(
    tmp_path: Path, small_disk: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    write_ticks(tmp_path, CHECKS[:2])
    store = f"sqlite+aiosqlite:///{small_disk}/synth.db"
    agent = start_agent(write_config(tmp_path, shop.base_url, store=store))
    wait_for(lambda: len(agent.runs(limit=500)) >= 2, timeout=10, what="stored runs")
    assert agent.get("/readyz").status_code == 200

    filler = fill(small_disk)

    def unready() -> dict[str, Any] | None:
        response = agent.get("/readyz")
        return response.json() if response.status_code == 503 else None

    state = wait_for(unready, timeout=15, what="/readyz 503 while writes fail", interval=0.1)
    assert state["store_reachable"] is True  # SELECT 1 still works: that is the point
    assert state["store_writable"] is False
    assert store_errors(agent) > 0

    filler.unlink()
    wait_for(lambda: agent.get("/readyz").status_code == 200, timeout=15, what="ready again")
    assert agent.get("/readyz").json()["store_writable"] is True
