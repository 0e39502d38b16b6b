"""A failed scheduled run is retried from another location before it counts as failed
(real agents in two locations on one real PostgreSQL store, two demo shops): the
location that cannot reach its shop gets `passed_after_retry` with the attempt run in the
other location (which saw the request); with no other location live it retries itself,
as a single agent does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from agent_harness import AgentProcess, StartAgent, wait_for
from cluster_harness import cluster_config, write_checks
from postgres import PostgresServer, postgres_server  # noqa: F401

from synth.demo.shop import run_in_thread
from synth.store import Store

CHECK = "c0000"


def location_config(directory: Path, shop_url: str, store: str, location: str) -> Path:
    write_checks(directory, 1, every="2s")
    check_file = directory / "checks" / f"{CHECK}.yaml"
    check = yaml.safe_load(check_file.read_text(encoding="utf-8"))
    check["retries"] = 1
    check_file.write_text(yaml.safe_dump(check), encoding="utf-8")
    path = cluster_config(directory, shop_url, store, f"m-{location}")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["location"] = location
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def latest(agent: AgentProcess, status: str | None = None) -> dict[str, Any] | None:
    runs = [r for r in agent.runs(check=CHECK, limit=20) if r["location"] == agent_location(agent)]
    runs = [r for r in runs if status is None or r["status"] == status]
    return runs[0] if runs else None


def agent_location(agent: AgentProcess) -> str:
    response = agent.get("/v1/cluster")
    assert response.status_code == 200, response.text
    location: str = response.json()["location"]
    return location


def test_a_failed_run_is_retried_from_the_other_location(
    tmp_path: Path,
    postgres_server: PostgresServer,  # noqa: F811
    start_agent: StartAgent,
) -> None:
    store = postgres_server.create_database()
    with run_in_thread() as eu_shop, run_in_thread() as us_shop:
        # The eu location cannot get an answer from its shop; the us one can.
        eu_shop.set_faults(status=503, path_prefix="/health")
        eu = start_agent(location_config(tmp_path / "eu", eu_shop.base_url, store, "eu"))
        us = start_agent(location_config(tmp_path / "us", us_shop.base_url, store, "us"))

        def retried() -> dict[str, Any] | None:
            run = latest(eu, "passed")
            return run if run and run["attempts"] == 2 else None

        summary = wait_for(retried, timeout=30, what="an eu run passed on a retry from us")
        run = eu.get(f"/v1/runs/{summary['run_id']}").json()
        assert run["location"] == "eu"
        assert run["outcome"] == "passed_after_retry"
        assert run["attempt_location"] == "us"
        (attempt,) = run["failed_attempts"]
        assert attempt["failure"]["type"] == "http_status"
        assert "503" in attempt["failure"]["message"]
        # The retry really ran from us: its shop saw more health checks than us's own runs.
        us_runs = len([r for r in us.runs(check=CHECK, limit=200) if r["location"] == "us"])
        assert sum(1 for r in us_shop.requests if r.path == "/health") > us_runs
        where = {"check": CHECK, "env": "staging", "location": "eu"}
        assert eu.metric("synth_check_runs_total", **where, result="passed_after_retry")
        assert eu.metric("synth_check_failures_total", **where, failure_type="http_status")

        # Without another location the retry is this location's own: still failing.
        code, killed = us.stop()
        assert (code, killed) == (0, False)
        before = latest(eu)
        assert before is not None

        def failed_here() -> dict[str, Any] | None:
            run = latest(eu)
            done = run and run["run_id"] != before["run_id"] and run["status"] == "failed"
            return run if done else None

        summary = wait_for(failed_here, timeout=30, what="an eu run failed after its own retry")
        run = eu.get(f"/v1/runs/{summary['run_id']}").json()
        assert run["attempts"] == 2
        assert run["attempt_location"] is None


async def test_a_retry_request_its_asker_left_behind_is_pruned(
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = await Store.open(postgres_server.create_database())
    try:
        await store.retries.ask(
            "left-behind", check="c", environment="e", phase="scheduled", location="eu", within_s=5
        )
        now = datetime.now(UTC)
        assert await store.prune(now=now) == 0  # its deadline has not passed by an hour
        assert await store.prune(now=now + timedelta(hours=2)) == 1
        assert await store.retries.answered("left-behind") == (False, None)
        assert await store.prune(now=now + timedelta(hours=2)) == 0
    finally:
        await store.close()
