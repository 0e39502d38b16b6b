"""The incident playbook end to end: `synth agent` subprocesses run checks against the demo
shop and page the local PagerDuty stand-in (HTTPS, strict Events API v2) through the real
`pagerduty` client — thresholds, resolve, outage, SIGKILL, replicas, flapping, secrets,
deploy verification, `synth run` and `synth page test`."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from agent_harness import (
    ENV,
    HMAC_SECRET,
    SERVICE,
    SHOP_PASSWORD,
    SYNTH,
    TOKEN,
    AgentProcess,
    StartAgent,
    clean_env,
    store_url,
    wait_for,
    write_check,
    write_config,
)
from pagerduty_standin import (
    ROUTING_KEY,
    Event,
    PagerDutyStandIn,
)
from postgres import PostgresServer, postgres_server  # noqa: F401

from synth.demo import ShopThread
from synth.store import OutboxEvent, Store

PLAYBOOK = "shop-oncall"
FLAGGER_TOKEN = "flagger-gate-token-0123456789"
KEY = f"synth/{ENV}/health"
RUNBOOK = "https://runbooks.example.com/shop/health"
DASHBOARD = "https://grafana.example.com/d/synth"
SLACK_SECRET = "slackhooksecretXYZ123"
OUTAGE_S = 30.0  # the outage: PagerDuty down for 30 s, then back

HEALTH_CHECK = f"""
    import synth

    @synth.check(service="shop", every="1h", timeout="5s", runbook="{RUNBOOK}")
    async def health(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""


def configure(
    directory: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    *,
    location: str = "local",
    check: str = HEALTH_CHECK,
    store: str | None = None,
    **playbook: Any,
) -> Path:
    """synth.yaml in `directory` with one check file, no schedule, and playbook
    `shop-oncall` (default playbook) paging the stand-in; `playbook` overrides fields."""
    directory.mkdir(parents=True, exist_ok=True)
    write_check(directory, "health.py", check)
    path = write_config(directory, shop.base_url, scheduler={"enabled": False})
    config = yaml.safe_load(path.read_text())
    config["location"] = location
    if store is not None:
        config["store"] = {"url": store}
    config["playbooks"] = {
        PLAYBOOK: {
            "routing_key": ROUTING_KEY,
            "severity": {"staging": "error", "preprod": "warning"},
            "runbook_url": "https://runbooks.example.com/shop",
            "dashboard_url": DASHBOARD,
            "trace_url_template": "https://tempo.example.com/trace/{trace_id}",
            "trigger": {"consecutive": 2},
            "resolve_after": 2,
            "reopen_after": 0,
        }
        | playbook
    }
    config["default_playbook"] = PLAYBOOK
    config["pagerduty"] = {
        "api_url": pagerduty.url,
        "ca_file": str(pagerduty_ca(pagerduty, directory)),
        "timeout": "2s",
        "retry_initial": "200ms",
        "retry_max": "1s",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def pagerduty_ca(pagerduty: PagerDutyStandIn, directory: Path) -> Path:
    path = directory / "pagerduty-ca.pem"
    pagerduty.ca.cert_pem.write_to_path(str(path))
    return path


def run(agent: AgentProcess, check: str = "health") -> dict[str, Any]:
    response = agent.post("/v1/runs", {"check": check, "environment": ENV})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outbox(directory: Path, url: str | None = None) -> list[OutboxEvent]:
    """The agent's stored outbox, read from its SQLite file (or the store at `url`)."""

    async def read() -> list[OutboxEvent]:
        store = await Store.open(url or store_url(directory))
        try:
            return await store.list_outbox()
        finally:
            await store.close()

    return asyncio.run(read())


def wait_events(
    pagerduty: PagerDutyStandIn, count: int, action: str | None = None, timeout: float = 15
) -> list[Event]:
    return wait_for(
        lambda: (e := pagerduty.accepted(action)) and len(e) >= count and e,
        timeout=timeout,
        what=f"{count} {action or ''} event(s) at the stand-in",
    )


def actions(pagerduty: PagerDutyStandIn, key: str = KEY) -> list[str]:
    return [e.action for e in pagerduty.accepted() if e.dedup_key == key]


# -- thresholds and resolve ------------------------------------------------------------------


def test_pages_after_the_threshold_and_resolves_after_recovery(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(configure(tmp_path, shop, pagerduty))
    shop.set_faults(status=503, path_prefix="/health")

    assert run(agent)["status"] == "failed"
    assert outbox(tmp_path) == [], "one failure is below the threshold of 2"
    assert agent.metric("synth_incidents_open", playbook=PLAYBOOK) in (None, 0)

    run(agent)
    stored = outbox(tmp_path)
    assert [(e.kind, e.dedup_key) for e in stored] == [("trigger", KEY)]
    assert ROUTING_KEY not in json.dumps(stored[0].payload)
    trigger = wait_events(pagerduty, 1, "trigger")[0].body
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == KEY
    payload = trigger["payload"]
    assert payload["summary"].startswith(f"health failed in {ENV} at step 'health': http_status")
    assert "503" in payload["summary"]
    assert (payload["severity"], payload["component"], payload["group"], payload["class"]) == (
        "error",
        SERVICE,
        ENV,
        "http_status",
    )
    assert payload["source"] == "synth/local"
    details = payload["custom_details"]
    assert details["failing_step"] == "health"
    assert details["failure_type"] == "http_status"
    assert "503" in str(details["actual"])
    assert len(details["trace_id"]) == 32
    assert [r["status"] for r in details["recent_results"]] == ["failed", "failed"]
    links = {link["text"]: link["href"] for link in trigger["links"]}
    assert links == {
        "Runbook": RUNBOOK,  # the check's own runbook wins over the playbook's
        "Trace": f"https://tempo.example.com/trace/{details['trace_id']}",
        "Dashboard": DASHBOARD,
    }
    wait_for(
        lambda: agent.metric("synth_incidents_open", playbook=PLAYBOOK) == 1,
        timeout=5,
        what="one open incident",
    )

    run(agent)  # still failing: the incident is open, nothing more is sent
    shop.clear_faults()
    run(agent)  # one pass is not enough (resolve_after: 2)
    assert [e.kind for e in outbox(tmp_path)] == ["trigger"]
    run(agent)
    assert [e.kind for e in outbox(tmp_path)] == ["trigger", "resolve"]
    wait_events(pagerduty, 1, "resolve")
    assert actions(pagerduty) == ["trigger", "resolve"]
    assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True]
    assert pagerduty.rejected == []
    labels = {"playbook": PLAYBOOK, "result": "sent"}
    wait_for(
        lambda: agent.metric("synth_pages_total", action="resolve", **labels) == 1,
        timeout=5,
        what="the resolve counted",
    )
    assert agent.metric("synth_pages_total", action="trigger", **labels) == 1
    wait_for(
        lambda: agent.metric("synth_incidents_open", playbook=PLAYBOOK) == 0,
        timeout=5,
        what="no open incident",
    )
    assert agent.metric("synth_outbox_depth") == 0


# -- PagerDuty down ----------------------------------------------------------------------------


def test_pagerduty_outage_delays_but_loses_nothing_and_keeps_order(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    """PagerDuty answers 500 then 429 for OUTAGE_S (30 s; the backoff here starts at
    200 ms and caps at 1 s, so each event sees many rounds of growing delays); then every
    event arrives, once, in order."""
    agent = start_agent(
        configure(tmp_path, shop, pagerduty, trigger={"consecutive": 1}, resolve_after=1)
    )
    pagerduty.set_mode("500")
    outage_started = time.monotonic()
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)  # trigger
    shop.clear_faults()
    run(agent)  # resolve
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)  # trigger again (reopen_after: 0)
    time.sleep(OUTAGE_S / 2)
    pagerduty.set_mode("429")
    wait_for(
        lambda: (
            (agent.metric("synth_outbox_depth") or 0) == 3
            and (agent.metric("synth_outbox_oldest_age_seconds") or 0) > 0
        ),
        timeout=5,
        what="three events waiting",
    )
    time.sleep(max(OUTAGE_S - (time.monotonic() - outage_started), 0))
    assert pagerduty.accepted() == []
    retries = agent.metric("synth_pages_total", playbook=PLAYBOOK, action="trigger", result="retry")
    assert retries is not None
    assert retries >= 3

    pagerduty.set_mode("ok")
    wait_events(pagerduty, 3)
    assert actions(pagerduty) == ["trigger", "resolve", "trigger"]
    assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True, False]
    wait_for(lambda: agent.metric("synth_outbox_depth") == 0, timeout=5, what="empty outbox")
    stored = outbox(tmp_path)
    assert [e.status for e in stored] == ["sent", "sent", "sent"]
    # The first event was retried through several backoff rounds; the ones behind it on
    # the same dedup key waited for it rather than overtaking it.
    assert stored[0].attempts >= 4, [e.attempts for e in stored]
    assert pagerduty.attempts >= stored[0].attempts + 2


def test_a_rejected_event_is_logged_counted_dropped_and_does_not_block_its_key(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(
        configure(tmp_path, shop, pagerduty, trigger={"consecutive": 1}, resolve_after=1)
    )
    pagerduty.set_mode("400")
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    wait_for(
        lambda: (
            agent.metric(
                "synth_pages_total", playbook=PLAYBOOK, action="trigger", result="rejected"
            )
            == 1
        ),
        timeout=10,
        what="the rejected trigger counted",
    )
    assert pagerduty.attempts == 1, "a 400 is not retried"
    (dropped,) = outbox(tmp_path)
    assert (dropped.status, dropped.attempts) == ("dropped", 1)
    assert dropped.last_error is not None
    assert "Invalid routing key" in dropped.last_error
    assert any("rejected and dropped" in m for m in agent.log_messages())

    pagerduty.set_mode("ok")
    shop.clear_faults()
    run(agent)
    wait_events(pagerduty, 1, "resolve")
    assert agent.metric("synth_outbox_depth") == 0


# -- SIGKILL between storing and sending -----------------------------------------------------------


def test_sigkill_between_storing_and_sending_delivers_once_after_restart(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    config = configure(tmp_path, shop, pagerduty)
    agent = start_agent(config)
    pagerduty.set_mode("hang")
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    run(agent)
    wait_for(lambda: pagerduty.attempts >= 1, timeout=10, what="the trigger being sent")
    agent.kill()
    assert [(e.kind, e.status) for e in outbox(tmp_path)] == [("trigger", "pending")]

    pagerduty.set_mode("ok")
    restarted = start_agent(config)
    wait_events(pagerduty, 1, "trigger")
    # The alert state survived too: the recovery after the restart resolves the incident.
    shop.clear_faults()
    run(restarted)
    run(restarted)
    wait_events(pagerduty, 1, "resolve")
    assert actions(pagerduty) == ["trigger", "resolve"]
    # The agent records "sent" once PagerDuty's answer is back: a moment after the stand-in
    # has counted the event.
    wait_for(
        lambda: (
            [(e.kind, e.status) for e in outbox(tmp_path)]
            == [("trigger", "sent"), ("resolve", "sent")]
        ),
        timeout=10,
        what="both events recorded as sent",
    )


# -- replicas in several locations --------------------------------------------------------------


def test_two_locations_make_one_incident_and_metrics_tell_them_apart(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    eu = start_agent(configure(tmp_path / "eu", shop, pagerduty, location="eu-west"))
    us = start_agent(configure(tmp_path / "us", shop, pagerduty, location="us-east"))
    shop.set_faults(status=503, path_prefix="/health")
    for agent in (eu, us, eu, us):
        run(agent)
    triggers = wait_events(pagerduty, 2, "trigger")
    assert {e.body["payload"]["source"] for e in triggers} == {"synth/eu-west", "synth/us-east"}
    assert {e.dedup_key for e in triggers} == {KEY}
    assert len(pagerduty.incidents_for(KEY)) == 1, "both replicas joined one incident"
    assert len(pagerduty.incidents_for(KEY)[0].alerts) == 2
    for agent, location in ((eu, "eu-west"), (us, "us-east")):
        labels = {"check": "health", "env": ENV, "phase": "adhoc", "location": location}
        assert agent.metric("synth_check_runs_total", result="failed", **labels) == 2
        assert agent.metric("synth_check_up", **labels) == 0

    shop.clear_faults()
    for agent in (eu, us, eu, us):
        run(agent)
    wait_events(pagerduty, 2, "resolve")
    assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True]


def test_shared_store_counts_failing_locations(
    tmp_path: Path,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
    postgres_server: PostgresServer,  # noqa: F811
) -> None:
    """Replicas sharing a store (PostgreSQL: a SQLite file is one agent's) page only when
    `min_locations` locations fail, and resolve when fewer than that still fail. Each
    location probes its own shop, so one can fail alone."""
    from synth.demo import run_in_thread

    shared = postgres_server.create_database()
    with run_in_thread() as shop_eu, run_in_thread() as shop_us:
        eu = start_agent(
            configure(
                tmp_path / "eu",
                shop_eu,
                pagerduty,
                location="eu",
                store=shared,
                min_locations=2,
                trigger={"consecutive": 1},
                resolve_after=1,
            )
        )
        us = start_agent(
            configure(
                tmp_path / "us",
                shop_us,
                pagerduty,
                location="us",
                store=shared,
                min_locations=2,
                trigger={"consecutive": 1},
                resolve_after=1,
            )
        )
        shop_eu.set_faults(status=503, path_prefix="/health")
        run(eu)
        run(us)
        run(eu)
        assert outbox(tmp_path, shared) == [], "one failing location of the two required"
        shop_us.set_faults(status=503, path_prefix="/health")
        run(us)
        trigger = wait_events(pagerduty, 1, "trigger")[0]
        assert trigger.body["payload"]["custom_details"]["failing_locations"] == ["eu", "us"]
        run(eu)  # still failing: already open
        shop_eu.clear_faults()
        run(eu)  # one location left failing: below min_locations, resolve
        wait_events(pagerduty, 1, "resolve")
        assert actions(pagerduty) == ["trigger", "resolve"]
        eu.stop()
        us.stop()


def test_separate_stores_a_location_still_failing_re_opens_what_another_resolved(
    tmp_path: Path, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    """Replicas with their own stores cannot see each other: the first to recover resolves
    the shared incident. One still failing sends its trigger again after retrigger_after,
    which re-opens it (and would only have joined it, were it still open)."""
    from synth.demo import run_in_thread

    fast = {"trigger": {"consecutive": 1}, "resolve_after": 1, "retrigger_after": "1s"}
    with run_in_thread() as shop_eu, run_in_thread() as shop_us:
        eu = start_agent(configure(tmp_path / "eu", shop_eu, pagerduty, location="eu", **fast))
        us = start_agent(configure(tmp_path / "us", shop_us, pagerduty, location="us", **fast))
        for shop in (shop_eu, shop_us):
            shop.set_faults(status=503, path_prefix="/health")
        run(eu)
        run(us)
        wait_events(pagerduty, 2, "trigger")
        shop_eu.clear_faults()
        run(eu)
        wait_events(pagerduty, 1, "resolve")
        assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True]
        time.sleep(1.1)
        run(us)  # still failing, a second after its trigger
        wait_events(pagerduty, 3, "trigger")
        assert [i.resolved for i in pagerduty.incidents_for(KEY)] == [True, False]
        assert pagerduty.accepted("trigger")[-1].body["payload"]["source"] == "synth/us"
        eu.stop()
        us.stop()


# -- flapping ----------------------------------------------------------------------------------


def test_a_flapping_check_pages_once(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(
        configure(
            tmp_path,
            shop,
            pagerduty,
            trigger={"consecutive": 1},
            resolve_after=1,
            reopen_after="1h",
        )
    )
    for _ in range(4):
        shop.set_faults(status=503, path_prefix="/health")
        run(agent)
        shop.clear_faults()
        run(agent)
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    assert [e.kind for e in outbox(tmp_path)] == ["trigger", "resolve"]
    wait_events(pagerduty, 2)
    assert len(pagerduty.incidents_for(KEY)) == 1
    assert "not re-opening yet" in " ".join(agent.log_messages())


# -- secrets -----------------------------------------------------------------------------------

LEAKY_CHECK = """
    import synth

    @synth.check(service="shop", every="1h", timeout="5s")
    async def health(flow):
        password = flow.secret("shop_password")
        async with flow.step("log in"):
            r = await flow.post("/api/login", json={"username": "demo", "password": password})
            r.expect_status(200)
            token = flow.mark_secret(r.json_path("$.token"))
        async with flow.step("health"):
            r = await flow.get(f"/health?api_key={password}", headers={"Authorization": token})
            assert r.status_code == 200, f"password {password} and token {token} refused"
"""


def test_secrets_are_absent_from_every_payload(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    webhook = f"{pagerduty.url}/slack/T000/B000/{SLACK_SECRET}"
    agent = start_agent(
        configure(
            tmp_path,
            shop,
            pagerduty,
            check=LEAKY_CHECK,
            trigger={"consecutive": 1},
            resolve_after=1,
            slack_webhook=webhook,
        )
    )
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    shop.clear_faults()
    run(agent)
    agent.deploy({"service": SERVICE, "environment": ENV, "version": "2.0.0"})
    wait_events(pagerduty, 5)  # trigger, slack, resolve, slack, change
    assert sorted(e.action for e in pagerduty.accepted()) == [
        "change",
        "resolve",
        "slack",
        "slack",
        "trigger",
    ]
    trigger = pagerduty.accepted("trigger")[0].body
    assert "***" in json.dumps(trigger), "the failure mentioned the secrets, masked"
    secrets = [SHOP_PASSWORD, ROUTING_KEY, SLACK_SECRET, TOKEN, HMAC_SECRET]
    for event in pagerduty.accepted():
        body = {k: v for k, v in event.body.items() if k != "routing_key"}
        text = json.dumps(body)
        assert not [s for s in secrets if s in text], (event.action, text)
    for stored in outbox(tmp_path):
        assert not [s for s in secrets if s in json.dumps(stored.payload)]
    logs = agent.stderr()
    assert not [s for s in (ROUTING_KEY, SLACK_SECRET, SHOP_PASSWORD) if s in logs]
    slack = pagerduty.accepted("slack")
    assert slack[0].body["text"].startswith(":rotating_light: *health failed in staging")
    assert "resolved" in slack[1].body["text"]


# -- deploy verification -------------------------------------------------------------------------


def test_a_failing_deploy_verification_pages_with_the_deploy_version(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(configure(tmp_path, shop, pagerduty, trigger={"consecutive": 1}))
    shop.set_faults(status=503, path_prefix="/health")
    response = agent.deploy(
        {
            "service": SERVICE,
            "environment": ENV,
            "version": "9.9.9",
            "commit": "abc123",
            "url": "https://ci.example.com/deploys/42",
        }
    )
    assert response.status_code == 202, response.text
    record = agent.wait_deploy(response.json()["id"])
    assert record["status"] == "failed"
    wait_events(pagerduty, 2)
    change, trigger = pagerduty.accepted()
    assert change.action == "change"
    assert change.body["payload"]["summary"] == f"Deploy 9.9.9 of {SERVICE} to {ENV}"
    assert change.body["payload"]["custom_details"]["commit"] == "abc123"
    assert change.body["links"] == [{"href": "https://ci.example.com/deploys/42", "text": "Deploy"}]
    assert trigger.action == "trigger"
    details = trigger.body["payload"]["custom_details"]
    assert details["deploy_version"] == "9.9.9"
    assert details["deploy"]["id"] == record["id"]
    assert details["phase"] == "deploy"
    assert "after deploy 9.9.9" in trigger.body["payload"]["summary"]
    assert "/ui/" not in json.dumps([e.body for e in pagerduty.accepted()])
    assert record["page_url"] is None
    assert [f.get("page_url") for f in record["verdict"]["failing"]] == [None]


PUBLIC_URL = "https://synth.example.com/agent"


def test_with_a_public_url_every_page_links_the_run_and_the_deploy_pages(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    """`server.public_url` set: the trigger's first link is the run's page, a
    verification's trigger and change event link the deploy's page, Slack shows the same
    links, and the API answers carry the same `page_url`s."""
    path = configure(
        tmp_path,
        shop,
        pagerduty,
        trigger={"consecutive": 1},
        slack_webhook=f"{pagerduty.url}/slack/T000/B000/{SLACK_SECRET}",
    )
    config = yaml.safe_load(path.read_text())
    config["server"]["public_url"] = PUBLIC_URL + "/"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = start_agent(path)
    shop.set_faults(status=503, path_prefix="/health")
    response = agent.deploy(
        {"service": SERVICE, "environment": ENV, "version": "9.9.9", "url": "https://ci/42"}
    )
    assert response.status_code == 202, response.text
    deploy_id = response.json()["id"]
    deploy_page = f"{PUBLIC_URL}/ui/deploys/{deploy_id}"
    assert response.json()["page_url"] == deploy_page
    record = agent.wait_deploy(deploy_id)
    assert record["status"] == "failed"
    (run_id,) = record["run_ids"]
    run_page = f"{PUBLIC_URL}/ui/runs/{run_id}"
    assert record["page_url"] == deploy_page
    assert [f["page_url"] for f in record["verdict"]["failing"]] == [run_page]
    assert agent.get(f"/v1/runs/{run_id}").json()["page_url"] == run_page

    wait_events(pagerduty, 3)  # change, trigger, slack
    (change,) = pagerduty.accepted("change")
    assert change.body["links"] == [
        {"href": "https://ci/42", "text": "Deploy"},
        {"href": deploy_page, "text": "Deploy verification"},
    ]
    (trigger,) = pagerduty.accepted("trigger")
    assert trigger.body["payload"]["custom_details"]["run_id"] == run_id
    links = trigger.body["links"]
    assert links[:2] == [
        {"href": run_page, "text": "Run"},
        {"href": deploy_page, "text": "Deploy verification"},
    ]
    assert [link["text"] for link in links[2:]] == ["Runbook", "Trace", "Dashboard"]
    (slack,) = pagerduty.accepted("slack")
    assert f"<{run_page}|Run>" in slack.body["text"]
    assert f"<{deploy_page}|Deploy verification>" in slack.body["text"]

    ran = run(agent)  # an ad-hoc run (the incident is open: nothing more is sent)
    assert ran["page_url"] == f"{PUBLIC_URL}/ui/runs/{ran['run_id']}"


# -- the CLI -----------------------------------------------------------------------------------


def synth_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNTH, *args, "--config", str(config)],
        cwd=config.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_synth_page_test_sends_a_trigger_and_its_resolve(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn
) -> None:
    config = configure(tmp_path, shop, pagerduty)
    done = synth_cli(config, "page", "test", "--playbook", PLAYBOOK)
    assert done.returncode == 0, done.stderr
    trigger, resolve = pagerduty.accepted()
    assert (trigger.action, resolve.action) == ("trigger", "resolve")
    assert trigger.dedup_key == resolve.dedup_key
    assert trigger.dedup_key is not None
    assert trigger.dedup_key.startswith(f"synth/test/{PLAYBOOK}/")
    assert trigger.body["payload"]["severity"] == "info"
    assert pagerduty.open_incidents() == []
    assert "trigger sent" in done.stdout
    assert "resolve sent" in done.stdout

    unknown = synth_cli(config, "page", "test", "--playbook", "nope")
    assert unknown.returncode == 2
    assert "unknown playbook 'nope'" in unknown.stderr


def test_page_test_and_synth_run_reach_every_channel_of_the_playbook(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn
) -> None:
    """The agent, `synth page test` and `synth run` send through the same channels: a
    playbook with Slack gets its messages whichever of them pages."""
    webhook = f"{pagerduty.url}/slack/T000/B000/{SLACK_SECRET}"
    config = configure(tmp_path, shop, pagerduty, slack_webhook=webhook)
    tested = synth_cli(config, "page", "test", "--playbook", PLAYBOOK)
    assert tested.returncode == 0, tested.stderr
    assert f"to {pagerduty.url} and Slack" in tested.stdout
    assert sorted(e.action for e in pagerduty.accepted()) == [
        "resolve",
        "slack",
        "slack",
        "trigger",
    ]
    assert "slack sent" in tested.stdout
    assert SLACK_SECRET not in tested.stdout + tested.stderr

    shop.set_faults(status=503, path_prefix="/health")
    paged = synth_cli(config, "run", "--env", ENV, "--phase", "preprod")
    assert paged.returncode == 1, paged.stderr
    slack = pagerduty.accepted("slack")
    assert len(slack) == 3
    assert slack[-1].body["text"].startswith(":rotating_light: *health failed in staging")

    # A channel whose secret cannot be read is named and left out; the others still page.
    settings = yaml.safe_load(config.read_text())
    settings["playbooks"][PLAYBOOK]["slack_webhook"] = {"env": "SYNTH_TEST_UNSET_SLACK_URL"}
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    again = synth_cli(config, "run", "--env", ENV, "--phase", "preprod")
    assert again.returncode == 1, again.stderr
    assert f"not paging for health: playbooks.{PLAYBOOK}.slack_webhook:" in again.stderr
    assert len(pagerduty.accepted("trigger")) == 3
    assert len(pagerduty.accepted("slack")) == 3


def test_synth_run_pages_with_the_preprod_severity_unless_told_not_to(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn
) -> None:
    config = configure(tmp_path, shop, pagerduty)
    shop.set_faults(status=503, path_prefix="/health")
    quiet = synth_cli(config, "run", "--env", ENV, "--no-page", "--phase", "preprod")
    assert quiet.returncode == 1, quiet.stderr
    assert pagerduty.attempts == 0

    # With a public URL in the config: `synth run` stores no run the agent could show, so
    # neither its page nor its reports link a run page.
    settings = yaml.safe_load(config.read_text())
    settings["server"]["public_url"] = PUBLIC_URL
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    junit = tmp_path / "junit.xml"
    paged = synth_cli(config, "run", "--env", ENV, "--phase", "preprod", "--junit", str(junit))
    assert paged.returncode == 1, paged.stderr
    (trigger,) = pagerduty.accepted()
    assert trigger.dedup_key == KEY
    assert trigger.body["payload"]["severity"] == "warning"
    assert trigger.body["payload"]["custom_details"]["phase"] == "preprod"
    assert "Runbook" in [link["text"] for link in trigger.body["links"]]
    assert "/ui/" not in json.dumps(trigger.body) + paged.stdout + junit.read_text()


def test_a_gate_called_again_and_again_announces_each_version_once(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    """Flagger calls its rollout gate every analysis interval: one PagerDuty change event
    per rollout and version, not one per call."""
    path = configure(tmp_path, shop, pagerduty)
    config = yaml.safe_load(path.read_text())
    config["hooks"] = {
        "flagger": {
            "tokens": [FLAGGER_TOKEN],
            "wait": "30s",
            "targets": {"test/shop": {"service": SERVICE, "environment": ENV}},
        }
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = start_agent(path)

    def gate(checksum: str) -> None:
        body = {
            "name": "shop",
            "namespace": "test",
            "phase": "Progressing",
            "checksum": checksum,
            "metadata": {"token": FLAGGER_TOKEN},
        }
        response = agent.http.post("/v1/hooks/flagger", json=body, timeout=60)
        assert response.status_code == 200, response.text

    for checksum in ("85d557f47b", "85d557f47b", "85d557f47b", "0a1b2c3d4e", "0a1b2c3d4e"):
        gate(checksum)
    # every announcement is in the outbox before its gate answered
    changes = [e for e in outbox(tmp_path) if e.kind == "change"]
    assert [c.payload["payload"]["custom_details"]["version"] for c in changes] == [
        "85d557f47b",
        "0a1b2c3d4e",
    ]
    delivered = wait_events(pagerduty, 2, "change")
    assert [e.body["payload"]["summary"] for e in delivered] == [
        f"Deploy 85d557f47b of {SERVICE} to {ENV}",
        f"Deploy 0a1b2c3d4e of {SERVICE} to {ENV}",
    ]
