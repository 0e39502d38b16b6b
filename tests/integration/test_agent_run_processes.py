"""`scheduler.processes`: scheduled declarative checks run in run processes — `synth agent` as
a real subprocess against the demo shop. Results, lag and spans come back to the agent; a
killed run process is restarted without losing a run; reload reaches the run processes;
stop (graceful or SIGKILL of the agent) leaves no run process behind."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
from agent_harness import (
    AgentProcess,
    StartAgent,
    wait_for,
    write_check,
    write_config,
)
from otlp_receiver import OtlpHttpReceiver, otel_env

from synth.demo import ShopThread

CHECKS = 6


def ping_checks(expect_status: int = 200) -> str:
    items = "".join(
        f"""
          - name: ping{i}
            service: shop
            every: 1s
            timeout: 5s
            steps:
              - name: health
                request: {{path: /health}}
                expect: {{status: {expect_status}}}
        """
        for i in range(CHECKS)
    )
    return "checks:" + items


def run_processes(agent: AgentProcess) -> list[psutil.Process]:
    """The agent's run processes (its children running synth.agent.run_process)."""
    found = []
    for child in psutil.Process(agent.pid).children():
        # A killed child is a zombie (or gone) until reaped, and may become one between
        # any two reads: check the status first, and treat a raise as "not running".
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if "synth.agent.run_process" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue
    return found


def exited(children: list[psutil.Process]) -> bool:
    """Whether every one of these processes has exited (a zombie counts as exited)."""
    return not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def run_counts(agent: AgentProcess) -> dict[str, int]:
    return {f"ping{i}": len(agent.runs(check=f"ping{i}", limit=500)) for i in range(CHECKS)}


def start(tmp_path: Path, shop: ShopThread, start_agent: StartAgent, **env: str) -> AgentProcess:
    write_check(tmp_path, "ping.yaml", ping_checks())
    config = write_config(tmp_path, shop.base_url, scheduler={"processes": 2})
    return start_agent(config, env=env or None)


def test_scheduled_runs_are_made_by_run_processes_and_reported_by_the_agent(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    receiver = otlp_http()
    agent = start(tmp_path, shop, start_agent, **otel_env(receiver.endpoint))
    children = run_processes(agent)
    assert len(children) == 2, [c.cmdline() for c in children]
    assert agent.metric("synth_run_processes_ready") == 2
    wait_for(
        lambda: all(n >= 3 for n in run_counts(agent).values()),
        timeout=15,
        what="3 stored runs of every check",
    )
    # The runs happened in the run processes: their CPU grew, and the shop saw requests.
    assert all(c.cpu_times().user + c.cpu_times().system > 0 for c in children)
    runs = agent.runs(check="ping0", limit=10)
    assert all(r["status"] == "passed" and r["phase"] == "scheduled" for r in runs), runs
    # Cadence: 1 s apart, give or take the scheduler's precision.
    starts = sorted(r["started_at"] for r in runs)
    assert len(starts) >= 3
    lags = agent.get("/debug/scheduler-lag", after=0).json()
    assert lags["count"] >= 3 * CHECKS
    assert max(lags["lags_s"]) < 0.5, lags
    counted = agent.metric(
        "synth_check_runs_total", check="ping0", env="staging", phase="scheduled", result="passed"
    )
    assert counted is not None
    assert counted >= 3
    # Spans made in a run process reach the agent's exporter with the run's trace id.
    trace_id = runs[0]["trace_id"]
    spans = receiver.wait_for(lambda got: any(s.trace_id == trace_id for s in got), timeout=15)
    names = {s.name for s in spans if s.trace_id == trace_id}
    assert {"ping0", "health"} <= names, names


def test_a_killed_run_process_is_restarted_and_its_checks_keep_running(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent)
    victim = run_processes(agent)[0]
    wait_for(lambda: all(run_counts(agent).values()), timeout=10, what="a run of every check")
    victim.send_signal(signal.SIGKILL)
    killed_at = time.time()

    def replaced() -> list[int] | None:
        pids = [c.pid for c in run_processes(agent)]
        return pids if len(pids) == 2 and victim.pid not in pids else None

    wait_for(replaced, timeout=20, what="a new run process in place of the killed one")
    assert agent.metric("synth_run_process_restarts_total") == 1
    wait_for(lambda: agent.metric("synth_run_processes_ready") == 2, timeout=20, what="ready 2")

    # Every check kept running through the kill and the restart (the agent ran the dead
    # process's share itself meanwhile): a passed run of each started after the kill.
    def all_ran_since_kill() -> bool:
        for i in range(CHECKS):
            runs = agent.runs(check=f"ping{i}", limit=5)
            if not any(
                r["status"] == "passed" and _ts(r["started_at"]) > killed_at + 0.5 for r in runs
            ):
                return False
        return True

    wait_for(all_ran_since_kill, timeout=15, what="runs of every check after the kill")
    assert any("exited with" in m for m in agent.log_messages())


def test_reload_reaches_the_run_processes(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent)
    wait_for(lambda: all(run_counts(agent).values()), timeout=10, what="a run of every check")
    write_check(tmp_path, "ping.yaml", ping_checks(expect_status=418))
    response = agent.post("/v1/reload")
    assert response.status_code == 200, response.text
    reloaded_at = time.time()

    def failing_after_reload() -> bool:
        for i in range(CHECKS):
            runs = [
                r
                for r in agent.runs(check=f"ping{i}", limit=5)
                if _ts(r["started_at"]) > reloaded_at + 0.2
            ]
            if not runs or any(r["status"] != "failed" for r in runs):
                return False
        return True

    wait_for(failing_after_reload, timeout=15, what="every check failing on its new expect")
    detail = agent.get(f"/v1/runs/{agent.runs(check='ping0', limit=1)[0]['run_id']}").json()
    assert "418" in str(detail), detail


def test_stop_leaves_no_run_process_behind(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    graceful = start(tmp_path, shop, start_agent)
    children = run_processes(graceful)
    assert len(children) == 2
    code, killed = graceful.stop()
    assert (code, killed) == (0, False)
    assert exited(children)


def test_run_processes_exit_when_the_agent_is_killed(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent)
    children = run_processes(agent)
    assert len(children) == 2
    agent.kill()  # SIGKILL: no graceful stop; the run processes see their stdin close

    wait_for(lambda: exited(children), timeout=10, what="the orphaned run processes to exit")


def _ts(value: object) -> float:
    return datetime.fromisoformat(str(value)).timestamp()


def test_run_processes_skips_a_child_that_is_a_zombie_or_gone() -> None:
    # A killed run process is a zombie until the agent reaps it; reading its cmdline then
    # raises psutil.ZombieProcess (the killed-process test failed ~1 in 4 on that).
    import subprocess
    from types import SimpleNamespace

    zombie = subprocess.Popen(["true"])
    try:
        wait_for(
            lambda: psutil.Process(zombie.pid).status() == psutil.STATUS_ZOMBIE,
            timeout=10,
            what="an unreaped child",
        )
        parent = SimpleNamespace(pid=psutil.Process().pid)
        assert run_processes(parent) == []  # type: ignore[arg-type]
    finally:
        zombie.wait()


def test_a_rejected_reload_leaves_the_run_processes_on_the_checks_in_use(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    # The run processes load a reload's checks while the agent does: when the agent
    # rejects them, the generation they loaded is never used, and the next reload is.
    agent = start(tmp_path, shop, start_agent)
    wait_for(lambda: all(run_counts(agent).values()), timeout=10, what="a run of every check")
    write_check(tmp_path, "broken.yaml", "name: broken\nservice: shop\nsteps: []\n")
    rejected = agent.post("/v1/reload")
    assert rejected.status_code != 200, rejected.text
    assert "broken" in rejected.text
    rejected_at = time.time()
    wait_for(
        lambda: all(
            any(_ts(r["started_at"]) > rejected_at + 0.2 for r in agent.runs(check=name, limit=5))
            for name in run_counts(agent)
        ),
        timeout=15,
        what="runs of every check after the rejected reload",
    )
    assert all(r["status"] == "passed" for r in agent.runs(check="ping0", limit=5))
    assert not any("could not reload" in m for m in agent.log_messages())
    (tmp_path / "checks" / "broken.yaml").unlink()
    write_check(tmp_path, "ping.yaml", ping_checks(expect_status=418))
    assert agent.post("/v1/reload").status_code == 200
    reloaded_at = time.time()

    def failing_after_reload() -> bool:
        return all(
            (
                runs := [
                    r
                    for r in agent.runs(check=name, limit=5)
                    if _ts(r["started_at"]) > reloaded_at + 0.2
                ]
            )
            and all(r["status"] == "failed" for r in runs)
            for name in run_counts(agent)
        )

    wait_for(failing_after_reload, timeout=15, what="every check failing on its new expect")
    assert agent.metric("synth_run_processes_ready") == 2
