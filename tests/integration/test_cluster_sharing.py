"""Cluster mode with real agents on one real PostgreSQL: N members share the checks of their
location, each due time of each check runs once, a member's death or pause moves its checks
to the others, and none runs twice through any of it (counted from the store)."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_harness import StartAgent, wait_for
from cluster_harness import (
    LEASE_S,
    Member,
    cluster_config,
    cluster_state,
    start_member,
    tally,
    wait_settled,
    write_checks,
)
from fast_target import FastTarget, fast_target_fixture  # noqa: F401
from postgres import PostgresServer, postgres_server  # noqa: F401

CHECKS = 300
STEADY_S = float(os.environ.get("SYNTH_CLUSTER_STEADY_S", "60"))


def make_members(
    tmp_path: Path, target: FastTarget, store: str, count: int, checks: int
) -> list[Member]:
    members = []
    for n in range(count):
        folder = tmp_path / f"m{n}"
        write_checks(folder, checks)
        members.append(Member(f"m{n}", cluster_config(folder, target.base_url, store, f"m{n}")))
    return members


def test_three_members_run_every_due_time_once(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    members = make_members(tmp_path, fast_target, store, 3, CHECKS)
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 3, CHECKS, timeout=30)
    shares = [cluster_state(a)["owned_checks"] for a in agents]
    assert all(CHECKS / 3 * 0.7 < s < CHECKS / 3 * 1.3 for s in shares), shares

    start = datetime.now(UTC)
    time.sleep(STEADY_S)  # the measured period itself: the test is the count over it
    end = datetime.now(UTC)

    runs = tally(store, start - timedelta(seconds=2), 1.0)
    assert runs.duplicates() == [], f"due times run twice: {runs.duplicates()[:10]}"
    # Every due time from one interval after the start to one before the end ran.
    names = [f"c{n:04d}" for n in range(CHECKS)]
    missing = runs.missing(names, start.timestamp() + 1, end.timestamp() - 1, 1.0)
    assert missing == [], f"{len(missing)} due times never ran: {missing[:10]}"
    expected = CHECKS * (STEADY_S - 2)
    assert sum(runs.counts.values()) >= expected


def test_a_killed_member_s_checks_move_and_come_back_without_running_twice(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    checks = 90
    members = make_members(tmp_path, fast_target, store, 3, checks)
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 3, checks, timeout=30)
    start = datetime.now(UTC)
    victim = agents[2]
    share_before = cluster_state(victim)["owned_checks"]

    victim.kill()  # SIGKILL: no goodbye, the lease has to run out
    killed = time.monotonic()
    wait_settled(agents[:2], 2, checks, timeout=LEASE_S * 3)
    taken_over_s = time.monotonic() - killed
    assert taken_over_s < LEASE_S + LEASE_S / 3 + 2, taken_over_s

    restarted = start_member(start_agent, members[2])
    wait_settled([agents[0], agents[1], restarted], 3, checks, timeout=LEASE_S * 4)
    share_after = cluster_state(restarted)["owned_checks"]
    assert share_after == share_before, "the same member id takes back the same checks"
    time.sleep(3)  # a few more due times after the hand-back, counted below
    end = datetime.now(UTC)

    runs = tally(store, start, 1.0)
    assert runs.duplicates() == [], f"due times run twice: {runs.duplicates()[:10]}"
    names = [f"c{n:04d}" for n in range(checks)]
    # The killed member's checks miss at most a lease and a renewal period (+ margin);
    # everything else, nothing.
    late = runs.missing(names, start.timestamp() + 1, end.timestamp() - 1, 1.0)
    by_check: dict[str, int] = {}
    for check, _ in late:
        by_check[check] = by_check.get(check, 0) + 1
    assert len(by_check) <= share_before, by_check
    assert max(by_check.values(), default=0) <= LEASE_S + LEASE_S / 3 + 2, by_check


def test_a_paused_member_runs_nothing_it_no_longer_owns(
    tmp_path: Path,
    fast_target: FastTarget,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    checks = 60
    members = make_members(tmp_path, fast_target, store, 3, checks)
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 3, checks, timeout=30)
    start = datetime.now(UTC)
    paused = agents[1]

    paused.send_signal(signal.SIGSTOP)
    try:
        wait_settled([agents[0], agents[2]], 2, checks, timeout=LEASE_S * 3)
        time.sleep(LEASE_S)  # the others run its checks for a while
    finally:
        paused.send_signal(signal.SIGCONT)
    wait_for(
        lambda: cluster_state(paused)["epoch"] not in (None, 1),
        timeout=LEASE_S * 3,
        what="the paused member to notice it lost its lease and join again",
    )
    wait_settled(agents, 3, checks, timeout=LEASE_S * 4)
    time.sleep(2)
    end = datetime.now(UTC)

    runs = tally(store, start, 1.0)
    assert runs.duplicates() == [], f"due times run twice: {runs.duplicates()[:10]}"
    lost = [e for e in paused.logs() if "cluster lease lost" in str(e.get("msg"))]
    assert lost, "the paused member says it stopped running checks"
    assert cluster_state(paused)["running"]
    del end
