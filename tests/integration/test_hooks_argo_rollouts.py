"""The Argo Rollouts `web` metric provider against a real agent and the demo shop: GET with
query parameters or POST with a JSON body, a bearer header, and a JSON verdict that
`successCondition: result.passed == true` evaluates."""

from __future__ import annotations

from agent_harness import (
    ENV,
    SERVICE,
    TOKEN,
    StartAgent,
    bearer,
)
from hooks_support import EXAMPLE_CHECKS, checkout_fails, start_hooks_agent

from synth.demo import ShopThread

PATH = "/v1/hooks/argo-rollouts"


def test_get_measurement_passes(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    response = agent.http.get(
        PATH,
        params={"service": SERVICE, "environment": ENV, "version": "rollout-6d4f8"},
        headers=bearer(TOKEN),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["passed"] is True
    assert result["verdict"] == "pass"
    assert result["checks"] == EXAMPLE_CHECKS
    assert result["version"] == "rollout-6d4f8"


def test_post_measurement_fails_with_the_failing_check(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    checkout_fails(shop)
    body = {"service": SERVICE, "env": ENV, "version": "rollout-7a1b2", "tags": ["checkout"]}
    response = agent.http.post(PATH, json=body, headers=bearer(TOKEN), timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["passed"] is False
    assert result["verdict"] == "fail"
    assert result["checks"] == ["checkout"]
    assert result["failing"][0]["failure_type"] == "http_status"


def test_credentials_and_bad_requests(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    query = {"service": SERVICE, "environment": ENV}
    assert agent.http.get(PATH, params=query).status_code == 401
    assert agent.http.get(PATH, params=query, headers=bearer("wrong")).status_code == 401
    assert agent.http.post(PATH, json=query).status_code == 401

    nothing = agent.http.get(PATH, headers=bearer(TOKEN))
    assert nothing.status_code == 404  # no target named
    assert "service and environment" in nothing.json()["detail"]
    extra = agent.http.post(PATH, json={**query, "url": "http://x"}, headers=bearer(TOKEN))
    assert extra.status_code == 422
    assert "url" in extra.json()["detail"]
    broken = agent.http.post(PATH, content=b"{", headers=bearer(TOKEN))
    assert broken.status_code == 400
    assert shop.requests == []
    assert agent.runs() == []
