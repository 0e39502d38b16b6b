"""Deploy verification in a cluster, with real agents on one real PostgreSQL: a
verification outlives the member that accepted it (SIGKILL, or a rolling restart of every
member one by one), any member answers for any deploy, and the pipeline always gets a
verdict."""

from __future__ import annotations

import subprocess
import threading
import time
from itertools import cycle
from pathlib import Path
from typing import Any

import httpx2
import yaml
from agent_harness import SYNTH, TOKEN, AgentProcess, StartAgent, clean_env, wait_for
from cluster_harness import (
    LEASE_S,
    Member,
    cluster_config,
    start_member,
    wait_settled,
    write_checks,
)
from fast_target import FastTarget, fast_target_fixture  # noqa: F401
from postgres import PostgresServer, free_port, postgres_server  # noqa: F401

ENV = "staging"
FINISHED = {"passed", "failed", "error", "superseded"}


def make_members(
    tmp_path: Path, target: FastTarget, store: str, services: list[str]
) -> list[Member]:
    members = []
    for n in range(3):
        folder = tmp_path / f"m{n}"
        for service in services:
            write_checks(folder, 2, every="1h", prefix=f"{service}-", service=service)
        config = cluster_config(
            folder,
            target.base_url,
            store,
            f"m{n}",
            services=services,
            extra={"scheduler": {"enabled": False}},
        )
        members.append(Member(f"m{n}", config))
    return members


def taken_over(agents: list[AgentProcess]) -> float:
    return sum(
        a.metric("synth_cluster_deploys_taken_over_total", location="local") or 0 for a in agents
    )


def test_a_deploy_whose_member_is_killed_mid_window_gets_a_survivor_s_verdict(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    members = make_members(tmp_path, fast_target, store, ["shop"])
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 3, 0, timeout=30)
    accepting, survivors = agents[0], agents[1:]
    event = {"service": "shop", "environment": ENV, "version": "7.1.0", "id": "rel-71"}
    response = accepting.deploy(event | {"settle": 0, "window": "8s", "interval": "1s"})
    assert response.status_code == 202, response.text
    deploy_id = response.json()["id"]
    assert response.json()["verified_by"] == "m0"

    def rounds_seen() -> list[str] | None:
        record = survivors[0].get(f"/v1/deploys/{deploy_id}").json()
        runs: list[str] = record["run_ids"]
        return runs if record["status"] == "running" and len(runs) >= 4 else None

    before = wait_for(rounds_seen, timeout=15, what="two rounds of the verification")
    accepting.kill()  # mid-window: about 6 s of it are left
    killed = time.monotonic()

    record = survivors[1].wait_deploy(deploy_id, wait=40)
    waited = time.monotonic() - killed
    assert record["status"] == "passed", record
    assert record["verdict"]["result"] == "pass"
    assert record["verified_by"] in {"m1", "m2"}, record
    assert len(record["run_ids"]) >= 2, record
    assert not set(record["run_ids"]) & set(before), "the survivor ran it with its own runs"
    # Claimed within a lease and a claim period, then what was left of the window.
    assert waited < LEASE_S + LEASE_S / 3 + 8 + 3, waited
    assert taken_over(survivors) == 1
    # Every member answers for it.
    assert survivors[0].get(f"/v1/deploys/{deploy_id}").json()["status"] == "passed"


def test_every_deploy_event_gets_a_verdict_through_a_rolling_restart(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    services = [f"svc{n}" for n in range(6)]
    members = make_members(tmp_path, fast_target, store, services)
    agents: dict[str, AgentProcess] = {m.name: start_member(start_agent, m) for m in members}
    wait_settled(list(agents.values()), 3, 0, timeout=30)

    accepted: dict[str, str] = {}  # event id -> deploy id
    refused: list[str] = []
    stop = threading.Event()

    def send_stream() -> None:
        """A CD tool behind the Service: each event goes to a ready member, and is
        retried on another one when the connection fails (the id makes that safe)."""
        names = cycle(sorted(agents))
        services_cycle = cycle(services)
        for n in range(400):  # bounded: ~0.3 s apart, the restarts end well before
            if stop.is_set():
                return
            service = next(services_cycle)
            body = {
                "service": service,
                "environment": ENV,
                "version": f"1.0.{n}",
                "id": f"event-{n}",
                "settle": 0,
                "window": "1s",
                "interval": "1s",
            }
            for _attempt in range(6):
                agent = agents[next(names)]
                try:
                    response = agent.post("/v1/deploys", body)
                except (httpx2.TransportError, RuntimeError):  # stopped, or its client closed
                    continue
                if response.status_code in (200, 202):
                    accepted[body["id"]] = response.json()["id"]
                    break
                if response.status_code == 503:  # stopping: the Service would skip it
                    continue
                refused.append(f"{body['id']}: {response.status_code} {response.text}")
                break
            else:
                refused.append(f"{body['id']}: no member took it")
            stop.wait(0.3)

    sender = threading.Thread(target=send_stream, daemon=True)
    sender.start()
    try:
        wait_for(lambda: len(accepted) >= 5, timeout=20, what="the stream under way")
        for member in members:  # one by one, like a Deployment's rolling update
            code, killed = agents[member.name].stop()
            assert (code, killed) == (0, False), agents[member.name].stderr()
            agents[member.name] = start_member(start_agent, member)
            wait_settled(list(agents.values()), 3, 0, timeout=LEASE_S * 5)
        count = len(accepted)
        wait_for(lambda: len(accepted) >= count + 5, timeout=20, what="events after the restarts")
    finally:
        stop.set()
        sender.join(timeout=30)

    assert refused == [], refused
    reader = agents[members[0].name]
    records: dict[str, dict[str, Any]] = {}
    for event_id, deploy_id in accepted.items():
        records[event_id] = reader.wait_deploy(deploy_id, wait=30)
    statuses = {event_id: r["status"] for event_id, r in records.items()}
    assert all(s in FINISHED for s in statuses.values()), statuses
    # A verdict, not an agent's excuse: nothing failed or ended in error; an older deploy
    # of a service may be superseded by its newer one (the verdict a pipeline gets then).
    bad = {e: records[e]["verdict"] for e, s in statuses.items() if s in {"failed", "error"}}
    assert bad == {}, bad
    passed = sum(1 for s in statuses.values() if s == "passed")
    assert passed >= 0.8 * len(statuses), statuses
    assert len(statuses) >= 15


def test_synth_trigger_waits_through_the_restart_of_the_member_it_talks_to(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    members = make_members(tmp_path, fast_target, store, ["shop"])[:2]
    port = free_port()  # the "Service": m0 comes back on the same address
    for member in members:
        config = yaml.safe_load(member.config.read_text())
        config["deploys"] = {"settle": "0s", "window": "8s", "interval": "1s"}
        if member.name == "m0":
            config["server"]["port"] = port
        member.config.write_text(yaml.safe_dump(config, sort_keys=False))
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 2, 0, timeout=30)

    command = [SYNTH, "trigger", "--agent", f"http://127.0.0.1:{port}", "--wait"]
    command += ["--service", "shop", "--env", ENV, "--version", "9.0.0", "--timeout", "90"]
    trigger = subprocess.Popen(
        command,
        env=clean_env(SYNTH_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        requests = fast_target.requests
        wait_for(
            lambda: fast_target.requests >= requests + 4,
            timeout=15,
            what="the verification under way",
        )
        code, killed = agents[0].stop()  # SIGTERM mid-window: m0 hands the deploy over
        assert (code, killed) == (0, False), agents[0].stderr()
        agents[0] = start_member(start_agent, members[0])
        out, err = trigger.communicate(timeout=90)
    finally:
        if trigger.poll() is None:
            trigger.kill()
            trigger.wait(timeout=10)
    assert trigger.returncode == 0, out + err
    assert "verdict: PASS" in out
    assert taken_over(agents) == 1
