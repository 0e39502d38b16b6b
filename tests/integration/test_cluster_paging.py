"""Alert state follows a check across a cluster: the failure count, the incident and the
outbox live in the shared PostgreSQL store, so a check whose member dies mid-count pages
exactly as if it had not moved — one page at the threshold, one resolve (real agents, the
strict PagerDuty stand-in, the demo shop)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from agent_harness import AgentProcess, StartAgent, wait_for
from cluster_harness import LEASE_S, Member, cluster_state, start_member, wait_settled
from pagerduty_standin import PagerDutyStandIn
from postgres import PostgresServer, postgres_server  # noqa: F401
from test_pagerduty import KEY, configure

from synth.demo import ShopThread

EVERY_S = 3
HEALTH_EVERY_3S = f"""
    import synth

    @synth.check(service="shop", every="{EVERY_S}s", timeout="2s", retries=0)
    async def health(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""


def member_config(
    directory: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, store: str, name: str
) -> Path:
    path = configure(
        directory,
        shop,
        pagerduty,
        check=HEALTH_EVERY_3S,
        store=store,
        trigger={"consecutive": 3},
        resolve_after=2,
    )
    config = yaml.safe_load(path.read_text())
    config["scheduler"] = {"enabled": True, "jitter": 0}
    config["cluster"] = {"member_id": name, "lease": f"{LEASE_S}s"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def health_runs(agent: AgentProcess, fault_from: datetime) -> list[str]:
    """Statuses of the scheduled health runs since the fault, oldest first.

    A run already in flight when the fault was set may fail too and count towards the
    threshold, so the runs start after the last one that started before the fault and
    passed, not at the fault's time."""
    runs = [r for r in reversed(agent.runs(check="health", limit=100)) if r["phase"] == "scheduled"]
    before = [
        n
        for n, r in enumerate(runs)
        if datetime.fromisoformat(r["started_at"]) < fault_from and r["status"] == "passed"
    ]
    return [r["status"] for r in runs[before[-1] + 1 if before else 0 :]]


def test_a_check_whose_member_dies_mid_count_pages_once_at_the_threshold(
    tmp_path: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    store = postgres_server.create_database()
    members = [
        Member(f"m{n}", member_config(tmp_path / f"m{n}", shop, pagerduty, store, f"m{n}"))
        for n in range(3)
    ]
    agents = [start_member(start_agent, m) for m in members]
    wait_settled(agents, 3, ["health"], timeout=30)
    owner = next(a for a in agents if cluster_state(a)["owned_checks"] == 1)
    survivors = [a for a in agents if a is not owner]

    fault_from = datetime.now(UTC)
    shop.set_faults(status=503, path_prefix="/health")
    wait_for(
        lambda: health_runs(owner, fault_from).count("failed") >= 2,
        timeout=EVERY_S * 3 + 5,
        what="two failures on the owner",
        interval=0.02,
    )
    owner.kill()  # between the 2nd and the 3rd failure (the next is ~3 s away)
    failures_at_kill = health_runs(survivors[0], fault_from).count("failed")
    assert failures_at_kill == 2, "killed before the third failure"
    assert pagerduty.accepted("trigger") == []

    trigger = wait_for(
        lambda: pagerduty.accepted("trigger"),
        timeout=LEASE_S * 2 + EVERY_S * 2 + 10,
        what="the page from a survivor",
    )
    assert [e.dedup_key for e in trigger] == [KEY]
    statuses = health_runs(survivors[0], fault_from)
    assert statuses[:3] == ["failed"] * 3, statuses
    details = trigger[0].body["payload"]["custom_details"]
    assert [r["status"] for r in details["recent_results"]][:3] == ["failed"] * 3

    shop.clear_faults()
    wait_for(
        lambda: pagerduty.accepted("resolve"),
        timeout=EVERY_S * 4 + 10,
        what="one resolve after recovery",
    )
    # A few more passing runs: still one page and one resolve, one incident.
    passes = health_runs(survivors[0], fault_from).count("passed")
    wait_for(
        lambda: health_runs(survivors[0], fault_from).count("passed") >= passes + 2,
        timeout=EVERY_S * 3 + 5,
        what="two more passing runs",
    )
    assert [e.action for e in pagerduty.accepted() if e.dedup_key == KEY] == [
        "trigger",
        "resolve",
    ]
    assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True]
