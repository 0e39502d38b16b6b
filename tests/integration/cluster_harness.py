"""Clusters of real `synth agent` processes sharing one real PostgreSQL database, for the
cluster-mode tests (test_cluster_*.py): many one-step checks, and the store read back to
count each check's runs per due time."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from agent_harness import AgentProcess, StartAgent, wait_for, write_config

from synth.agent.scheduler import grid_start
from synth.cluster.membership import owned
from synth.store import Store

LEASE_S = 3.0


def write_checks(
    directory: Path, count: int, *, every: str = "1s", prefix: str = "c", service: str = "shop"
) -> list[str]:
    """`count` one-step YAML checks (GET /health) of `service` in `directory/checks/`;
    their names."""
    folder = directory / "checks"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{prefix}{n:04d}" for n in range(count)]
    for name in names:
        check = {
            "name": name,
            "service": service,
            "every": every,
            "timeout": "5s",
            "retries": 0,
            "steps": [{"name": "health", "request": {"path": "/health"}}],
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(check), encoding="utf-8")
    return names


def cluster_config(
    directory: Path,
    shop_url: str,
    store: str,
    member: str,
    *,
    lease_s: float = LEASE_S,
    services: Iterable[str] = ("shop",),
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """A member's synth.yaml in `directory` (its checks in `directory/checks`), every
    one of `services` at `shop_url`."""
    path = write_config(directory, shop_url, store=store, deploys={"interval": "1s"})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for environment in config["environments"].values():
        environment["services"] = {name: {"base_url": shop_url} for name in services}
    config["cluster"] = {"member_id": member, "lease": f"{lease_s}s"}
    config["runner"] = {"retry_delay": "0.2s"}
    for key, value in (extra or {}).items():
        config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Member:
    """One cluster member: its folder, config and (while running) process."""

    name: str
    config: Path
    agent: AgentProcess | None = None

    @property
    def process(self) -> AgentProcess:
        assert self.agent is not None, f"{self.name} is not running"
        return self.agent


def start_member(start_agent: StartAgent, member: Member) -> AgentProcess:
    member.agent = start_agent(member.config)
    return member.agent


def cluster_state(agent: AgentProcess) -> dict[str, Any]:
    response = agent.get("/v1/cluster")
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


def expected_shares(members: list[str], checks: int | list[str]) -> dict[str, int]:
    """How many of the checks (`c0000`… or these names) each member owns by rendezvous
    hashing (environment staging), as every member computes it."""
    names = [f"c{n:04d}" for n in range(checks)] if isinstance(checks, int) else checks
    keys = [f"{name}@staging" for name in names]
    return {m: len(owned(keys, m, members)) for m in members}


def wait_settled(
    agents: Iterable[AgentProcess], members: int, checks: int | list[str], timeout: float
) -> None:
    """Until every agent runs its share: `members` live members, each running exactly the
    checks (`c0000`… or these names) rendezvous hashing gives it among them (hand-overs
    done)."""
    agents = list(agents)
    seen: list[Any] = []

    def settled() -> bool:
        states = [cluster_state(a) for a in agents]
        seen[:] = [
            {k: s.get(k) for k in ("member_id", "running", "live_members", "owned_checks")}
            for s in states
        ]
        if not all(s["running"] and s["live_members"] == members for s in states):
            return False
        shares = expected_shares([s["member_id"] for s in states], checks)
        return all(s["owned_checks"] == shares[s["member_id"]] for s in states)

    try:
        wait_for(settled, timeout=timeout, what=f"{members} members sharing {checks} checks")
    except AssertionError as error:
        raise AssertionError(f"{error}; members saw {seen}") from None


@dataclass(frozen=True)
class Tally:
    """Scheduled runs per (check, env, due time) in a time range."""

    counts: Counter[tuple[str, int]]
    first: dict[str, int]
    last: dict[str, int]

    def duplicates(self) -> list[tuple[tuple[str, int], int]]:
        return [(key, n) for key, n in self.counts.items() if n > 1]

    def missing(self, checks: Iterable[str], start: float, end: float, every_s: float) -> list[Any]:
        """Due times in [start, end) of each check with no run."""
        gaps = []
        for check in checks:
            origin = grid_start(f"{check}@staging", every_s).timestamp()
            k0 = math.ceil((start - origin) / every_s)
            k1 = math.floor((end - origin) / every_s)
            gaps += [(check, k) for k in range(k0, k1) if self.counts[(check, k)] == 0]
        return gaps


def tally(store_url: str, since: datetime, every_s: float) -> Tally:
    """Read every scheduled run started since `since` from the store and put each on its
    due time: the grid point it started after (the agents run with no jitter)."""
    rows = asyncio.run(_scheduled_runs(store_url, since))
    counts: Counter[tuple[str, int]] = Counter()
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for check, started in rows:
        origin = grid_start(f"{check}@staging", every_s).timestamp()
        k = math.floor((started.timestamp() - origin) / every_s + 1e-6)
        counts[(check, k)] += 1
        first[check] = min(first.get(check, k), k)
        last[check] = max(last.get(check, k), k)
    return Tally(counts, first, last)


async def _scheduled_runs(store_url: str, since: datetime) -> list[tuple[str, datetime]]:
    import sqlalchemy as sa

    from synth.store.schema import runs

    store = await Store.open(store_url)
    try:
        async with store._transaction("read runs", write=False) as connection:
            result = await connection.execute(
                sa.select(runs.c.check_name, runs.c.started_at).where(
                    runs.c.phase == "scheduled", runs.c.started_at >= since
                )
            )
            return [(str(r[0]), r[1]) for r in result]
    finally:
        await store.close()
