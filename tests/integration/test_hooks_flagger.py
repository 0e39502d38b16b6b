"""Flagger webhooks against a real agent and the demo shop: Flagger's CanaryWebhookPayload
({name, namespace, phase, checksum, metadata}); 200 lets the canary advance, anything else
halts it (and rolls it back at the failure threshold)."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import yaml
from agent_harness import (
    ENV,
    SERVICE,
    TOKEN,
    AgentProcess,
    StartAgent,
    bearer,
)
from hooks_support import (
    EXAMPLE_CHECKS,
    FLAGGER_CANARY,
    FLAGGER_TOKEN,
    checkout_fails,
    start_hooks_agent,
)

from synth.demo import ShopThread

CHECKSUM = "85d557f47b"


def payload(phase: str = "Progressing", **metadata: str) -> dict[str, Any]:
    namespace, name = FLAGGER_CANARY
    return {
        "name": name,
        "namespace": namespace,
        "phase": phase,
        "checksum": CHECKSUM,
        "metadata": {"token": FLAGGER_TOKEN} | metadata,
    }


def call(agent: AgentProcess, body: Any, headers: dict[str, str] | None = None) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    # Flagger's own request: JSON, no custom headers
    sent = {"Content-Type": "application/json"} | (headers or {})
    return agent.http.post("/v1/hooks/flagger", content=content, headers=sent, timeout=60)


def test_pre_rollout_passes_with_200(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    response = call(agent, payload(phase="Progressing", type="pre-rollout"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["verdict"] == "pass"
    assert answer["passed"] is True
    assert answer["checks"] == EXAMPLE_CHECKS
    assert (answer["service"], answer["environment"], answer["version"]) == (SERVICE, ENV, CHECKSUM)
    record = agent.wait_deploy(answer["deploy_id"], wait=1)
    assert record["labels"] == {"source": "flagger", "canary": "test/shop", "phase": "Progressing"}
    assert FLAGGER_TOKEN not in json.dumps(record) + agent.stderr()


def test_with_a_public_url_the_gate_answer_links_the_deploy_and_failing_run_pages(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    """The pipeline's log is where a person starts: the 412 names the pages to open."""
    public_url = "https://synth.example.com/agent"
    agent = start_hooks_agent(tmp_path, shop, start_agent, server={"public_url": public_url})
    checkout_fails(shop)
    response = call(agent, payload())
    assert response.status_code == 412, response.text
    answer = response.json()
    deploy_page = f"{public_url}/ui/deploys/{answer['deploy_id']}"
    assert answer["links"] == {"deploy": f"/v1/deploys/{answer['deploy_id']}", "page": deploy_page}
    [failing] = answer["failing"]
    assert failing["page_url"] == f"{public_url}/ui/runs/{failing['run_id']}"
    for page in (deploy_page, failing["page_url"]):
        served = agent.get(page.removeprefix(public_url))
        assert served.status_code == 200, (page, served.text)
    assert "checkout" in agent.get(deploy_page.removeprefix(public_url)).text


def test_failing_checks_answer_412_with_the_verdict(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    checkout_fails(shop)
    response = call(agent, payload())
    assert response.status_code == 412, response.text
    answer = response.json()
    assert answer["verdict"] == "fail"
    assert answer["passed"] is False
    assert [f["check"] for f in answer["failing"]] == ["checkout"]
    # metadata names the target and narrows to tags; bearer header accepted too
    narrowed = call(
        agent,
        {**payload(service=SERVICE, environment=ENV, tags="browse"), "name": "unmapped"},
        headers=bearer(FLAGGER_TOKEN),
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["checks"] == ["browse"]


def test_no_checks_is_an_error_not_a_pass(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    response = call(agent, payload(tags="no-such-tag"))
    # any answer but 200 holds the canary; 404: no configured check could verify it
    assert response.status_code == 404, response.text
    assert "no configured check covers service 'shop'" in response.json()["detail"]
    assert agent.runs() == []


def test_credentials_and_bad_payloads(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    no_token = payload()
    del no_token["metadata"]["token"]
    assert call(agent, no_token).status_code == 401
    assert call(agent, payload(token="wrong")).status_code == 401
    assert call(agent, payload(), headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert call(agent, b"not json").status_code == 401  # no way to find a token: nothing runs
    # hooks.flagger.tokens replace the agent's own tokens for this hook
    assert call(agent, no_token, headers=bearer(TOKEN)).status_code == 401

    assert call(agent, b"not json", headers=bearer(FLAGGER_TOKEN)).status_code == 400
    no_name = payload()
    del no_name["name"]
    missing = call(agent, no_name)
    assert missing.status_code == 422
    assert "name" in missing.json()["detail"]
    unmapped = call(agent, {**payload(), "namespace": "elsewhere", "name": "other"})
    assert unmapped.status_code == 422
    assert "elsewhere/other" in unmapped.json()["detail"]
    unknown_env = call(agent, payload(environment="nowhere"))
    assert unknown_env.status_code == 404

    # event webhooks are acknowledged and run nothing
    event = call(agent, payload(eventMessage="New revision detected", eventType="Normal"))
    assert event.status_code == 200, event.text
    assert shop.requests == []
    assert agent.runs() == []


def test_reload_applies_new_hooks_and_rotated_tokens(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent, hooks={})
    ping = payload(eventMessage="New revision detected", eventType="Normal")
    assert call(agent, ping).status_code == 404  # hooks.flagger is not configured yet

    config = tmp_path / "synth.yaml"
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["hooks"] = {"flagger": {"tokens": [FLAGGER_TOKEN]}}
    data["server"]["tokens"] = ["rotated-token-0001"]
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    reloaded = agent.post("/v1/reload")  # still authenticated with the old token
    assert reloaded.status_code == 200, reloaded.text

    assert call(agent, ping).status_code == 200
    assert call(agent, payload(token="wrong")).status_code == 401
    # The API's write guard follows the rotation: the old token no longer writes.
    assert agent.post("/v1/reload").status_code == 401
    assert agent.post("/v1/reload", headers=bearer("rotated-token-0001")).status_code == 200
    assert shop.requests == []
