"""Silences end to end: a real `synth agent` subprocess runs a scheduled check against the
demo shop and pages the PagerDuty stand-in (as tests/integration/test_pagerduty.py
configures it); silences are made through `/v1/silences` and kept in the agent's store
(SQLite; the API test also on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from agent_harness import ENV, AgentProcess, StartAgent, bearer, wait_for
from pagerduty_standin import PagerDutyStandIn
from postgres import PostgresServer, postgres_server  # noqa: F401
from test_pagerduty import KEY, PLAYBOOK, configure, outbox, wait_events

from synth.demo import ShopThread

EVERY_SECOND_CHECK = """
    import synth

    @synth.check(service="shop", every="1s", timeout="5s", retries=0, tags=["core"])
    async def health(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""
GAUGE = "synth_check_silenced"


def scheduled(
    directory: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    store: str | None = None,
    **extra: Any,
) -> Path:
    """test_pagerduty's configuration, with `health` scheduled every second."""
    path = configure(directory, shop, pagerduty, check=EVERY_SECOND_CHECK, store=store)
    config = yaml.safe_load(path.read_text())
    config["scheduler"] = {"jitter": 0, "enabled": True}
    config.update(extra)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def iso(moment: datetime) -> str:
    return moment.isoformat()


def silence(agent: AgentProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = agent.post("/v1/silences", body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def failed_runs(agent: AgentProcess) -> int:
    return len(agent.runs(check="health", env=ENV, status="failed", limit=500))


def gauge(agent: AgentProcess) -> float | None:
    return agent.metric(GAUGE, check="health", env=ENV, location="local")


def test_a_silenced_failure_is_counted_but_pages_only_once_the_silence_ends(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(scheduled(tmp_path, shop, pagerduty))
    wait_for(lambda: gauge(agent) == 0, timeout=10, what=f"{GAUGE} at 0 for the scheduled pair")
    ends = datetime.now(UTC) + timedelta(seconds=12)
    made = silence(
        agent,
        {
            "matchers": {"check": "health", "env": ENV},
            "end": iso(ends),
            "reason": "shop database failover",
            "author": "alice",
        },
    )
    assert made["source"] == "api"
    assert made["matchers"] == {"check": "health", "env": ENV}
    wait_for(lambda: gauge(agent) == 1, timeout=10, what=f"{GAUGE} at 1 under the silence")

    shop.set_faults(status=503, path_prefix="/health")
    wait_for(
        lambda: any("silenced: not paging" in m for m in agent.log_messages()),
        timeout=10,
        what="a failure past the threshold (2) kept from paging by the silence",
    )
    silenced_at = datetime.now(UTC)
    assert silenced_at < ends, "the test was too slow to see the silence at work"
    assert failed_runs(agent) >= 2  # still run and stored
    failed_total = agent.metric(
        "synth_check_runs_total", check="health", env=ENV, phase="scheduled", result="failed"
    )
    assert failed_total is not None
    assert failed_total >= 2  # and counted
    assert [e.kind for e in outbox(tmp_path)] == []
    assert pagerduty.accepted() == []

    trigger = wait_events(pagerduty, 1, "trigger", timeout=30)[0]
    assert datetime.now(UTC) >= ends
    assert trigger.dedup_key == KEY
    wait_for(lambda: gauge(agent) == 0, timeout=10, what=f"{GAUGE} back at 0")
    # Still failing after the page: no second trigger (retrigger_after is 30 min).
    after_page = failed_runs(agent)
    wait_for(lambda: failed_runs(agent) >= after_page + 3, timeout=20, what="3 more failed runs")
    assert [e.kind for e in outbox(tmp_path)] == ["trigger"]
    assert [e.action for e in pagerduty.accepted()] == ["trigger"]
    wait_for(
        lambda: agent.metric("synth_incidents_open", playbook=PLAYBOOK) == 1,
        timeout=10,
        what="one open incident",
    )


def test_the_silences_api_authenticates_refuses_bad_input_and_keeps_silences(
    tmp_path: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
    agent_store: str,
) -> None:
    """On SQLite and on PostgreSQL."""
    window = {
        "name": "weekly-db",
        "schedule": "0 2 * * SUN",
        "duration": "2h",
        "timezone": "Europe/Berlin",
        "matchers": {"service": "shop", "env": "production"},
        "reason": "weekly database maintenance",
    }
    config = scheduled(tmp_path, shop, pagerduty, agent_store, maintenance=[window])
    agent = start_agent(config)
    now = datetime.now(UTC)
    good = {
        "matchers": {"service": "shop", "tag": "core"},
        "start": iso(now + timedelta(hours=1)),
        "end": iso(now + timedelta(hours=3)),
        "reason": "planned upgrade",
        "author": "bob",
    }

    refused = agent.post("/v1/silences", good, authenticated=False)
    assert refused.status_code == 401, refused.text
    bad_token = agent.post("/v1/silences", good, authenticated=False, headers=bearer("wrong"))
    assert bad_token.status_code == 401
    bad_cases = {
        "end before start": good | {"end": iso(now)},
        "unknown matcher": good | {"matchers": {"team": "payments"}},
        "empty matchers": good | {"matchers": {}},
        "too long": good | {"end": iso(now + timedelta(days=40))},
        "in the past": good
        | {"start": iso(now - timedelta(hours=2)), "end": iso(now - timedelta(hours=1))},
        "no reason": {k: v for k, v in good.items() if k != "reason"},
        "not a time": good | {"end": "next tuesday"},
    }
    for case, body in bad_cases.items():
        response = agent.post("/v1/silences", body)
        assert response.status_code == 422, (case, response.status_code, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str), case
        assert detail, case
    not_json = agent.http.post(
        "/v1/silences", content=b"{", headers={"Content-Type": "application/json"} | bearer()
    )
    assert not_json.status_code == 400

    upcoming = silence(agent, good)
    everything = silence(
        agent, {"all": True, "end": iso(now + timedelta(hours=1)), "reason": "x", "author": "y"}
    )
    listed = agent.get("/v1/silences")
    assert listed.status_code == 200, listed.text
    by_id = {s["id"]: s for s in listed.json()["silences"]}
    assert set(by_id) == {upcoming["id"], everything["id"], "config:weekly-db"}
    assert by_id[upcoming["id"]]["author"] == "bob"
    assert by_id["config:weekly-db"]["source"] == "config"
    assert by_id["config:weekly-db"]["matchers"] == {"service": "shop", "env": "production"}
    wait_for(lambda: gauge(agent) == 1, timeout=10, what=f"{GAUGE} at 1 under all: true")

    path = f"/v1/silences/{everything['id']}"
    assert agent.http.delete(path).status_code == 401
    assert agent.http.delete("/v1/silences/nosuchsilence", headers=bearer()).status_code == 404
    ended = agent.http.delete(path, headers=bearer())
    assert ended.status_code == 200, ended.text
    assert datetime.fromisoformat(ended.json()["end"]) <= datetime.now(UTC)
    wait_for(lambda: gauge(agent) == 0, timeout=10, what=f"{GAUGE} at 0 once it ended")
    listed_ids = {s["id"] for s in agent.get("/v1/silences").json()["silences"]}
    assert listed_ids == {upcoming["id"], "config:weekly-db"}

    # Kept in the store: a restarted agent still lists the upcoming silence.
    code, killed = agent.stop()
    assert (code, killed) == (0, False)
    again = start_agent(config)
    listed_ids = {s["id"] for s in again.get("/v1/silences").json()["silences"]}
    assert listed_ids == {upcoming["id"], "config:weekly-db"}


def test_a_deploy_verification_pages_through_a_silence_unless_it_says_deploys(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    path = configure(tmp_path, shop, pagerduty, trigger={"consecutive": 1})
    agent = start_agent(path)
    end = iso(datetime.now(UTC) + timedelta(hours=1))
    plain = silence(
        agent, {"matchers": {"service": "shop"}, "end": end, "reason": "r", "author": "a"}
    )
    shop.set_faults(status=503, path_prefix="/health")

    def verify(version: str) -> None:
        response = agent.deploy({"service": "shop", "environment": ENV, "version": version})
        assert response.status_code == 202, response.text
        assert agent.wait_deploy(response.json()["id"])["status"] == "failed"

    verify("1.0.0")
    wait_events(pagerduty, 1, "trigger")  # deploys are not silenced by default
    # Resolve, then silence deploys too: the next failed verification does not page.
    shop.clear_faults()
    for _ in range(2):
        assert agent.post("/v1/runs", {"check": "health", "environment": ENV}).status_code == 200
    wait_events(pagerduty, 1, "resolve")
    assert agent.http.delete(f"/v1/silences/{plain['id']}", headers=bearer()).status_code == 200
    silence(
        agent,
        {
            "matchers": {"service": "shop"},
            "deploys": True,
            "end": end,
            "reason": "r",
            "author": "a",
        },
    )
    shop.set_faults(status=503, path_prefix="/health")
    verify("1.0.1")
    wait_for(
        lambda: any("silenced: not paging" in m for m in agent.log_messages()),
        timeout=10,
        what="the failed verification kept from paging",
    )
    assert [e.action for e in pagerduty.accepted() if e.action != "change"] == [
        "trigger",
        "resolve",
    ]


def test_a_maintenance_window_from_the_config_holds_pages_until_it_ends(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    shop.set_faults(status=503, path_prefix="/health")
    ends = datetime.now(UTC) + timedelta(seconds=15)
    window = {
        "name": "failover",
        "start": iso(ends - timedelta(minutes=10)),
        "end": iso(ends),
        "matchers": {"tag": "core"},
        "reason": "database failover",
    }
    agent = start_agent(scheduled(tmp_path, shop, pagerduty, maintenance=[window]))
    wait_for(lambda: gauge(agent) == 1, timeout=10, what=f"{GAUGE} at 1 inside the window")
    wait_for(
        lambda: any("silenced: not paging (config:failover" in m for m in agent.log_messages()),
        timeout=10,
        what="failures past the threshold kept from paging by the window",
    )
    assert datetime.now(UTC) < ends, "the test was too slow to see the window at work"
    assert pagerduty.accepted() == []
    listed = agent.get("/v1/silences").json()["silences"]
    assert [(s["id"], s["source"], s["reason"]) for s in listed] == [
        ("config:failover", "config", "database failover")
    ]

    trigger = wait_events(pagerduty, 1, "trigger", timeout=30)[0]
    assert datetime.now(UTC) >= ends
    assert trigger.dedup_key == KEY
    wait_for(lambda: gauge(agent) == 0, timeout=10, what=f"{GAUGE} at 0 after the window")
    after_page = failed_runs(agent)
    wait_for(lambda: failed_runs(agent) >= after_page + 3, timeout=20, what="3 more failed runs")
    assert [e.action for e in pagerduty.accepted()] == ["trigger"]
    assert agent.get("/v1/silences").json()["silences"] == []
    silenced_logs = [m for m in agent.log_messages() if m.startswith("silenced: not paging")]
    assert len(silenced_logs) == 1, silenced_logs  # once per window, not once per run


def test_agents_sharing_a_store_honour_each_other_s_silences(
    tmp_path: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    """Two locations on one PostgreSQL store (each runs every check): a silence made on
    one agent holds the other's pages too, and ending it on the other pages once."""
    store = postgres_server.create_database()
    eu, us = (
        start_agent(scheduled(tmp_path / name, shop, pagerduty, store, location=name))
        for name in ("eu", "us")
    )

    def gauge_at(agent: AgentProcess, location: str) -> float | None:
        return agent.metric(GAUGE, check="health", env=ENV, location=location)

    wait_for(lambda: gauge_at(us, "us") == 0, timeout=10, what=f"{GAUGE} at 0 in us")
    made = silence(
        eu,
        {
            "matchers": {"service": "shop"},
            "end": iso(datetime.now(UTC) + timedelta(minutes=10)),
            "reason": "failover",
            "author": "alice",
        },
    )
    wait_for(lambda: gauge_at(us, "us") == 1, timeout=15, what=f"{GAUGE} at 1 in us")
    shop.set_faults(status=503, path_prefix="/health")
    for agent in (eu, us):
        wait_for(
            lambda agent=agent: any(
                m.startswith("silenced: not paging") for m in agent.log_messages()
            ),
            timeout=15,
            what="failures kept from paging in each location",
        )
    assert pagerduty.accepted() == []

    ended = us.http.delete(f"/v1/silences/{made['id']}", headers=bearer())
    assert ended.status_code == 200, ended.text
    trigger = wait_events(pagerduty, 1, "trigger", timeout=30)[0]
    assert trigger.dedup_key == KEY
    wait_for(lambda: gauge_at(eu, "eu") == 0, timeout=15, what=f"{GAUGE} at 0 in eu")
    after_page = failed_runs(eu)
    wait_for(lambda: failed_runs(eu) >= after_page + 4, timeout=20, what="more failed runs")
    assert [e.action for e in pagerduty.accepted()] == ["trigger"]
