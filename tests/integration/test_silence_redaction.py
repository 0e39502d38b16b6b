"""A silence's free text (`reason`, `author`) is shown to people as its writer gave it, but
passes the one redaction path first: a secret the agent knows (an environment secret, a
playbook's routing key, an API token) pasted into it never reaches the API's answers, the
logs, /metrics, the pages or the store. A real `synth agent` subprocess, the demo shop and
the PagerDuty stand-in, configured as tests/integration/test_pagerduty.py does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from agent_harness import HMAC_SECRET, SHOP_PASSWORD, TOKEN, StartAgent, bearer, wait_for
from pagerduty_standin import ROUTING_KEY, PagerDutyStandIn
from test_pagerduty import configure, outbox, run

from synth.demo import ShopThread

SECRETS = (SHOP_PASSWORD, ROUTING_KEY, TOKEN, HMAC_SECRET)
REASON = f"db failover, login {SHOP_PASSWORD} key {ROUTING_KEY}"
AUTHOR = f"ops-bot {TOKEN}"
WINDOW_REASON = f"nightly backup (hmac {HMAC_SECRET})"


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_a_secret_in_a_silence_s_reason_or_author_never_leaks(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    path = configure(tmp_path, shop, pagerduty)
    config = yaml.safe_load(path.read_text())
    config["maintenance"] = [
        {
            "name": "backup",
            "schedule": "0 3 * * *",
            "duration": "1h",
            "matchers": {"check": "nothing-matches"},
            "reason": WINDOW_REASON,
        }
    ]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = start_agent(path)

    end = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = {"matchers": {"check": "health"}, "end": end, "reason": REASON, "author": AUTHOR}
    made = agent.post("/v1/silences", body)
    assert made.status_code == 201, made.text
    assert not leaked(made.text), made.text
    created = made.json()
    # Shown as given, but masked: the rest of the text is still there for people.
    assert created["reason"] == "db failover, login *** key ***"
    assert created["author"] == "ops-bot ***"

    listed = agent.get("/v1/silences")
    assert listed.status_code == 200
    assert not leaked(listed.text), listed.text
    reasons = {s["id"]: s["reason"] for s in listed.json()["silences"]}
    assert reasons[created["id"]] == "db failover, login *** key ***"
    assert reasons["config:backup"] == "nightly backup (hmac ***)"

    # A failure past the threshold (2) is silenced: the log names the silence's reason.
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    run(agent)
    wait_for(
        lambda: any("silenced: not paging" in m for m in agent.log_messages()),
        timeout=10,
        what="the silence logged",
    )
    (line,) = [m for m in agent.log_messages() if "silenced: not paging" in m]
    assert "db failover, login *** key ***" in line
    assert not leaked(agent.stderr() + agent.stdout())
    assert outbox(tmp_path) == []
    assert pagerduty.accepted() == []

    # The pages that list silences show the same masked text.
    for page in ("/ui/silences", "/ui/", "/ui/checks/health"):
        html = agent.get(page)
        assert html.status_code == 200, (page, html.text[:300])
        assert not leaked(html.text), page
    assert "db failover, login *** key ***" in agent.get("/ui/silences").text
    assert "nightly backup (hmac ***)" in agent.get("/ui/silences").text

    metrics = agent.get("/metrics").text
    assert not leaked(metrics)
    assert "failover" not in metrics  # free text is never a label
    assert "ops-bot" not in metrics

    ended = agent.http.delete(f"/v1/silences/{created['id']}", headers=bearer())
    assert ended.status_code == 200, ended.text
    assert not leaked(ended.text)
    assert ended.json()["author"] == "ops-bot ***"

    stored = (tmp_path / "synth.db").read_bytes()
    assert not [s for s in SECRETS if s.encode() in stored]
    assert not leaked(json.dumps([e.payload for e in outbox(tmp_path)]))
