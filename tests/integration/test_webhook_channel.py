"""The signed-webhook incident channel end to end: `synth agent` subprocesses run a check
against the demo shop and page a local webhook receiver (real HTTP on 127.0.0.1) that
verifies every request the way the README tells receivers to — HMAC-SHA256 signature over
`<timestamp>.<body>`, timestamp within 5 minutes, constant-time compare, 401 otherwise —
and dedupes on X-Synth-Event-Id. Trigger and resolve, a receiver outage (503, connections
reset, a lost answer), a wrong secret, deploy verification, `synth page test`, `synth run`,
and a playbook paging PagerDuty and the webhook at once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
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
from pagerduty_standin import ROUTING_KEY, PagerDutyStandIn

from synth.demo import ShopThread
from synth.store import OutboxEvent, Store

if TYPE_CHECKING:
    from tests.integration.conftest import Exchange, HttpServer, StartServer

PLAYBOOK = "shop-oncall"
KEY = f"synth/{ENV}/health"
RUNBOOK = "https://runbooks.example.com/shop/health"
DASHBOARD = "https://grafana.example.com/d/synth"
WEBHOOK_SECRET = "whsec-9f8e7d6c5b4a39281706"  # the agent's; only its file holds it
URL_TOKEN = "T0KEN-c4a1f9e27b3d5a80"  # a token in the URL's path, as Teams and bots use
HOOK_PATH = f"/hooks/{URL_TOKEN}"
HOOK_URL_ENV = "HOOK_URL"
TOLERANCE_S = 300

HEALTH_CHECK = f"""
    import synth

    @synth.check(service="shop", every="1h", timeout="5s", runbook="{RUNBOOK}")
    async def health(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""


# -- the receiver -------------------------------------------------------------------------


def verify(secret: str, headers: dict[str, str], body: bytes, *, now: float) -> bool:
    """What a receiver checks, as in the README: a fresh timestamp and the signature."""
    timestamp = headers.get("x-synth-timestamp", "")
    signature = headers.get("x-synth-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "v1=" + expected.hexdigest())


@dataclass(frozen=True)
class Attempt:
    """One request the receiver got, and what it answered (None: connection reset)."""

    event_id: str
    action: str | None
    status: int | None
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A strict webhook receiver. `mode`: "ok"; "503" (answer 503 with Retry-After: 1,
    without processing); "down" (reset the connection); "lost_ack" (process the event,
    then answer 503 as if the answer were lost, once, then "ok"). Accepted events are
    kept once per X-Synth-Event-Id; a repeat is counted in `duplicates`."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.mode = "ok"
        self.lock = threading.Lock()
        self.attempts: list[Attempt] = []
        self.events: list[dict[str, Any]] = []
        self.duplicates: list[str] = []
        self.server: HttpServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url(HOOK_PATH)

    def set_mode(self, mode: str) -> None:
        with self.lock:
            self.mode = mode

    def handle(self, exchange: Exchange) -> None:
        request = exchange.request
        event_id = request.headers.get("x-synth-event-id", "")
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        action = body.get("action") if isinstance(body, dict) else None
        with self.lock:
            mode = self.mode
            status = self._answer(mode, request.headers, request.body, event_id, body)
            self.attempts.append(Attempt(event_id, action, status, request.headers, request.body))
        if status is None:
            exchange.reset()
        elif status == 401:
            # Echoes the path (the URL's token): the agent must not repeat it anywhere.
            exchange.respond(401, f"bad signature for {request.path}")
        elif status == 503:
            exchange.respond(503, "maintenance", headers={"Retry-After": "1"})
        else:
            exchange.respond(status, {"ok": True})

    def _answer(
        self, mode: str, headers: dict[str, str], raw: bytes, event_id: str, body: Any
    ) -> int | None:
        if mode == "down":
            return None
        if headers.get("content-type") != "application/json":
            return 415
        if not verify(self.secret, headers, raw, now=time.time()):
            return 401
        if not isinstance(body, dict) or not event_id or body.get("id") != event_id:
            return 400
        if mode == "503":
            return 503
        if event_id in {e["id"] for e in self.events}:
            self.duplicates.append(event_id)
        else:
            self.events.append(body)
        if mode == "lost_ack":
            self.mode = "ok"
            return 503
        return 200

    def accepted(self, action: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if action is None or e["action"] == action]

    def tried(self, action: str | None = None) -> list[Attempt]:
        with self.lock:
            return [a for a in self.attempts if action is None or a.action == action]

    def wait_events(self, count: int, timeout: float = 15) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            events = self.accepted()
            return events if len(events) >= count else None

        return wait_for(enough, timeout=timeout, what=f"{count} event(s) at the receiver")


def start_receiver(http_server: StartServer, secret: str = WEBHOOK_SECRET) -> Receiver:
    receiver = Receiver(secret)
    receiver.server = http_server({HOOK_PATH: receiver.handle})
    return receiver


# -- the agent --------------------------------------------------------------------------------


def configure(
    directory: Path,
    shop: ShopThread,
    *,
    pagerduty: PagerDutyStandIn | None = None,
    **playbook: Any,
) -> Path:
    """synth.yaml with one check, no schedule, and playbook `shop-oncall` (the default)
    paging the webhook at $HOOK_URL, signed with the secret in a file; with `pagerduty`,
    PagerDuty too. `playbook` overrides fields."""
    directory.mkdir(parents=True, exist_ok=True)
    write_check(directory, "health.py", HEALTH_CHECK)
    secret_file = directory / "webhook-secret"
    secret_file.write_text(WEBHOOK_SECRET + "\n", encoding="utf-8")
    path = write_config(directory, shop.base_url, scheduler={"enabled": False})
    config = yaml.safe_load(path.read_text())
    fields: dict[str, Any] = {
        "webhook": {"url": f"env:{HOOK_URL_ENV}", "secret": f"file:{secret_file}"},
        "severity": {"staging": "error", "preprod": "warning"},
        "runbook_url": "https://runbooks.example.com/shop",
        "dashboard_url": DASHBOARD,
        "trace_url_template": "https://tempo.example.com/trace/{trace_id}",
        "trigger": {"consecutive": 2},
        "resolve_after": 2,
        "reopen_after": 0,
    }
    config["pagerduty"] = {"timeout": "2s", "retry_initial": "200ms", "retry_max": "1s"}
    if pagerduty is not None:
        fields["routing_key"] = ROUTING_KEY
        ca = directory / "pagerduty-ca.pem"
        pagerduty.ca.cert_pem.write_to_path(str(ca))
        config["pagerduty"] |= {"api_url": pagerduty.url, "ca_file": str(ca)}
    config["playbooks"] = {PLAYBOOK: fields | playbook}
    config["default_playbook"] = PLAYBOOK
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def start(start_agent: StartAgent, config: Path, receiver: Receiver) -> AgentProcess:
    return start_agent(config, env={HOOK_URL_ENV: receiver.url})


def run(agent: AgentProcess) -> dict[str, Any]:
    response = agent.post("/v1/runs", {"check": "health", "environment": ENV})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def outbox(directory: Path) -> list[OutboxEvent]:
    async def read() -> list[OutboxEvent]:
        store = await Store.open(store_url(directory))
        try:
            return await store.list_outbox()
        finally:
            await store.close()

    return asyncio.run(read())


def pages(agent: AgentProcess, result: str) -> float | None:
    return agent.metric("synth_pages_total", playbook=PLAYBOOK, action="webhook", result=result)


def leaks(text: str, receiver: Receiver) -> list[str]:
    """The webhook's secrets found in `text`."""
    return [s for s in (WEBHOOK_SECRET, URL_TOKEN, receiver.url) if s in text]


# -- trigger and resolve ----------------------------------------------------------------------


def test_a_persistent_failure_sends_a_signed_trigger_and_recovery_a_resolve(
    tmp_path: Path, shop: ShopThread, http_server: StartServer, start_agent: StartAgent
) -> None:
    """A playbook with a webhook and no routing key: the receiver gets the PagerDuty
    trigger's fields, signed, and the resolve once the check passes again."""
    receiver = start_receiver(http_server)
    agent = start(start_agent, configure(tmp_path, shop), receiver)
    for result in ("sent", "retry", "rejected"):
        assert pages(agent, result) == 0, f"synth_pages_total{{action=webhook,{result}}} at 0"
    assert agent.metric("synth_pages_total", playbook=PLAYBOOK, action="trigger") is None, (
        "no PagerDuty series for a playbook without a routing key"
    )

    shop.set_faults(status=503, path_prefix="/health")
    assert run(agent)["status"] == "failed"
    assert outbox(tmp_path) == [], "one failure is below the threshold of 2"
    run(agent)
    (stored,) = outbox(tmp_path)
    assert (stored.kind, stored.dedup_key) == ("webhook", f"webhook:{KEY}")
    assert leaks(json.dumps(stored.payload), receiver) == []

    (trigger,) = receiver.wait_events(1)
    (attempt,) = receiver.tried("trigger")
    assert attempt.status == 200
    assert attempt.headers["x-synth-event-id"] == trigger["id"] == stored.payload["id"]
    assert abs(int(attempt.headers["x-synth-timestamp"]) - time.time()) < 60
    assert attempt.headers["x-synth-signature"].startswith("v1=")
    assert (trigger["version"], trigger["action"], trigger["dedup_key"]) == (1, "trigger", KEY)
    assert (trigger["playbook"], trigger["repeat"]) == (PLAYBOOK, False)
    payload = trigger["payload"]
    assert trigger["summary"] == payload["summary"]
    assert payload["summary"].startswith(f"health failed in {ENV} at step 'health': http_status")
    assert (payload["severity"], payload["source"], payload["component"], payload["group"]) == (
        "error",
        "synth/local",
        SERVICE,
        ENV,
    )
    details = payload["custom_details"]
    assert (details["failing_step"], details["failure_type"]) == ("health", "http_status")
    assert [r["status"] for r in details["recent_results"]] == ["failed", "failed"]
    assert {link["text"]: link["href"] for link in trigger["links"]} == {
        "Runbook": RUNBOOK,
        "Trace": f"https://tempo.example.com/trace/{details['trace_id']}",
        "Dashboard": DASHBOARD,
    }
    assert trigger["client"] == "synth"

    shop.clear_faults()
    run(agent)
    run(agent)
    _, resolve = receiver.wait_events(2)
    assert {k: v for k, v in resolve.items() if k != "id"} == {
        "version": 1,
        "action": "resolve",
        "dedup_key": KEY,
        "playbook": PLAYBOOK,
        "summary": f"health in {ENV} passes again",
    }
    assert resolve["id"] != trigger["id"]
    wait_for(lambda: pages(agent, "sent") == 2, timeout=5, what="two webhook events counted")
    assert receiver.duplicates == []
    assert agent.metric("synth_outbox_depth") == 0

    # The receiver is strict: the same request signed 6 minutes ago, or with the body
    # changed, is refused.
    with httpx2.Client(trust_env=False) as client:
        stale = int(time.time()) - 360
        digest = hmac.new(
            WEBHOOK_SECRET.encode(), f"{stale}.".encode() + attempt.body, hashlib.sha256
        ).hexdigest()
        replay = {
            "Content-Type": "application/json",
            "X-Synth-Event-Id": trigger["id"],
            "X-Synth-Timestamp": str(stale),
            "X-Synth-Signature": f"v1={digest}",
        }
        assert client.post(receiver.url, content=attempt.body, headers=replay).status_code == 401
        forged = {k: v for k, v in attempt.headers.items() if k.startswith("x-synth-")}
        forged["x-synth-timestamp"] = str(int(time.time()))
        tampered = attempt.body.replace(b'"severity":"error"', b'"severity":"info"')
        assert tampered != attempt.body
        response = client.post(
            receiver.url, content=tampered, headers=forged | {"content-type": "application/json"}
        )
        assert response.status_code == 401


# -- the receiver down ------------------------------------------------------------------------


def test_an_outage_of_the_receiver_is_retried_in_order_with_the_same_event_ids(
    tmp_path: Path, shop: ShopThread, http_server: StartServer, start_agent: StartAgent
) -> None:
    """503s, then reset connections, then an answer lost after the receiver processed the
    trigger: the trigger goes out again and again with one id (the receiver drops the
    redelivery as a duplicate), and the resolve waits behind it."""
    receiver = start_receiver(http_server)
    config = configure(tmp_path, shop, trigger={"consecutive": 1}, resolve_after=1)
    agent = start(start_agent, config, receiver)
    receiver.set_mode("503")
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    wait_for(lambda: len(receiver.tried("trigger")) >= 3, timeout=15, what="3 tries of the trigger")
    shop.clear_faults()
    run(agent)  # the resolve is stored behind the trigger
    assert [e.kind for e in outbox(tmp_path)] == ["webhook", "webhook"]
    seen = len(receiver.tried("trigger"))
    wait_for(
        lambda: len(receiver.tried("trigger")) >= seen + 2,
        timeout=15,
        what="2 more tries of the trigger",
    )
    receiver.set_mode("down")
    down_from = len(receiver.attempts)
    wait_for(
        lambda: len([a for a in receiver.tried()[down_from:] if a.status is None]) >= 2,
        timeout=15,
        what="2 tries against reset connections",
    )
    assert receiver.tried("resolve") == [], "the resolve waits for the trigger"
    assert receiver.accepted() == []
    receiver.set_mode("lost_ack")

    trigger, resolve = receiver.wait_events(2)
    assert (trigger["action"], resolve["action"]) == ("trigger", "resolve")
    wait_for(lambda: pages(agent, "sent") == 2, timeout=10, what="two webhook events sent")
    assert receiver.duplicates == [trigger["id"]], "the redelivered trigger had the same id"
    tries = receiver.tried()
    trigger_tries = [a for a in tries if a.action == "trigger"]
    assert {a.event_id for a in trigger_tries} == {trigger["id"]}
    assert [a.status for a in trigger_tries][-2:] == [503, 200], "lost answer, then redelivered"
    assert {a.status for a in trigger_tries} == {503, None, 200}
    last_trigger = max(i for i, a in enumerate(tries) if a.action == "trigger")
    first_resolve = min(i for i, a in enumerate(tries) if a.action == "resolve")
    assert last_trigger < first_resolve, "in order: the resolve only after the trigger got in"
    stored = outbox(tmp_path)
    assert [e.status for e in stored] == ["sent", "sent"]
    assert stored[0].attempts == len(trigger_tries)
    retries = pages(agent, "retry")
    assert retries is not None
    assert retries == len(trigger_tries) - 1
    retrying = [m for m in agent.log_messages() if m.startswith("alert not delivered")]
    assert any("HTTP 503: maintenance" in m for m in retrying)
    assert any("no answer" in m for m in retrying)
    assert leaks(agent.stderr(), receiver) == []


# -- a wrong secret ---------------------------------------------------------------------------


def test_a_wrong_secret_is_rejected_logged_and_counted_without_leaking_the_secret(
    tmp_path: Path, shop: ShopThread, http_server: StartServer, start_agent: StartAgent
) -> None:
    receiver = start_receiver(http_server, secret="the-receiver-has-another-secret")
    config = configure(tmp_path, shop, trigger={"consecutive": 1}, resolve_after=1)
    agent = start(start_agent, config, receiver)
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    wait_for(lambda: pages(agent, "rejected") == 1, timeout=10, what="the rejection counted")
    assert [a.status for a in receiver.tried()] == [401], "a 401 is not retried"
    (dropped,) = outbox(tmp_path)
    assert (dropped.status, dropped.attempts) == ("dropped", 1)
    assert dropped.last_error is not None
    assert dropped.last_error == "HTTP 401: bad signature for ***", "the URL path masked"
    rejected = [e for e in agent.logs() if e.get("msg", "").startswith("alert rejected")]
    assert [(e["action"], e["playbook"], e["level"]) for e in rejected] == [
        ("webhook", PLAYBOOK, "error")
    ]

    shop.clear_faults()
    run(agent)  # the resolve is not held up by the dropped trigger
    wait_for(lambda: pages(agent, "rejected") == 2, timeout=10, what="the resolve tried")
    assert pages(agent, "sent") == 0
    metrics = agent.get("/metrics").text
    stored = json.dumps([(e.payload, e.last_error) for e in outbox(tmp_path)])
    for where, text in (
        ("stderr", agent.stderr()),
        ("stdout", agent.stdout()),
        ("/metrics", metrics),
        ("outbox", stored),
    ):
        assert leaks(text, receiver) == [], where
    secrets = (SHOP_PASSWORD, TOKEN, HMAC_SECRET, WEBHOOK_SECRET)
    for attempt in receiver.tried():
        assert not [s for s in secrets if s.encode() in attempt.body]


# -- every phase pages through the webhook ----------------------------------------------------


def test_a_failing_deploy_verification_sends_the_change_and_the_trigger(
    tmp_path: Path, shop: ShopThread, http_server: StartServer, start_agent: StartAgent
) -> None:
    receiver = start_receiver(http_server)
    path = configure(tmp_path, shop, trigger={"consecutive": 1})
    config = yaml.safe_load(path.read_text())
    config["server"]["public_url"] = "https://synth.example.com"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = start(start_agent, path, receiver)
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
    events = {e["action"]: e for e in receiver.wait_events(2)}
    change, trigger = events["change"], events["trigger"]
    assert change["summary"] == f"Deploy 9.9.9 of {SERVICE} to {ENV}"
    assert change["dedup_key"] == f"synth/{ENV}/deploy:{SERVICE}"
    assert change["payload"]["custom_details"]["commit"] == "abc123"
    deploy_page = f"https://synth.example.com/ui/deploys/{record['id']}"
    assert change["links"] == [
        {"href": "https://ci.example.com/deploys/42", "text": "Deploy"},
        {"href": deploy_page, "text": "Deploy verification"},
    ]
    details = trigger["payload"]["custom_details"]
    assert (details["phase"], details["deploy_version"]) == ("deploy", "9.9.9")
    assert "after deploy 9.9.9" in trigger["summary"]
    # the same links as the PagerDuty trigger: the run's page first, then the deploy's
    assert trigger["links"][:2] == [
        {"href": f"https://synth.example.com/ui/runs/{details['run_id']}", "text": "Run"},
        {"href": deploy_page, "text": "Deploy verification"},
    ]


def synth_cli(config: Path, receiver: Receiver, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNTH, *args, "--config", str(config)],
        cwd=config.parent,
        env=clean_env(**{HOOK_URL_ENV: receiver.url}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_synth_page_test_and_synth_run_page_through_the_webhook(
    tmp_path: Path, shop: ShopThread, http_server: StartServer
) -> None:
    receiver = start_receiver(http_server)
    config = configure(tmp_path, shop)
    done = synth_cli(config, receiver, "page", "test", "--playbook", PLAYBOOK)
    assert done.returncode == 0, done.stderr
    trigger, resolve = receiver.wait_events(2)
    assert (trigger["action"], resolve["action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"]
    assert trigger["dedup_key"].startswith(f"synth/test/{PLAYBOOK}/")
    assert trigger["payload"]["severity"] == "info"
    assert "to the playbook's webhook" in done.stdout
    assert "webhook trigger sent" in done.stdout
    assert "webhook resolve sent" in done.stdout
    assert leaks(done.stdout + done.stderr, receiver) == []

    shop.set_faults(status=503, path_prefix="/health")
    paged = synth_cli(config, receiver, "run", "--env", ENV, "--phase", "preprod")
    assert paged.returncode == 1, paged.stderr
    preprod = receiver.wait_events(3)[2]
    assert (preprod["action"], preprod["dedup_key"]) == ("trigger", KEY)
    assert preprod["payload"]["severity"] == "warning"
    assert preprod["payload"]["custom_details"]["phase"] == "preprod"
    assert leaks(paged.stdout + paged.stderr, receiver) == []

    unset = subprocess.run(
        [SYNTH, "page", "test", "--playbook", PLAYBOOK, "--config", str(config)],
        cwd=config.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unset.returncode == 2
    assert f"playbooks.{PLAYBOOK}.webhook.url: environment variable {HOOK_URL_ENV}" in (
        unset.stderr
    )


# -- PagerDuty and the webhook ----------------------------------------------------------------


def test_a_pagerduty_outage_does_not_hold_up_the_webhook(
    tmp_path: Path,
    shop: ShopThread,
    http_server: StartServer,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
) -> None:
    """Each channel keeps its own order: the webhook's trigger gets out while PagerDuty's
    waits for PagerDuty to come back."""
    receiver = start_receiver(http_server)
    config = configure(tmp_path, shop, pagerduty=pagerduty, trigger={"consecutive": 1})
    agent = start(start_agent, config, receiver)
    for action in ("trigger", "resolve", "change", "webhook"):
        labels = {"playbook": PLAYBOOK, "action": action, "result": "sent"}
        assert agent.metric("synth_pages_total", **labels) == 0, action
    pagerduty.set_mode("500")
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    (trigger,) = receiver.wait_events(1)
    assert trigger["action"] == "trigger"
    assert pagerduty.accepted() == []
    pagerduty.set_mode("ok")
    wait_for(lambda: pagerduty.accepted("trigger"), timeout=15, what="PagerDuty's trigger")
    (paged,) = pagerduty.accepted("trigger")
    assert paged.body["payload"] == trigger["payload"], "one event, two channels"
    assert paged.dedup_key == trigger["dedup_key"] == KEY
