"""GitHub `deployment_status` webhooks against a real agent and the demo shop: the payload
shape GitHub sends, signed with X-Hub-Signature-256 as GitHub computes it."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx2
from agent_harness import ENV, SERVICE, AgentProcess, StartAgent
from hooks_support import (
    EXAMPLE_CHECKS,
    GITHUB_ENV,
    GITHUB_REPO,
    GITHUB_SECRET,
    checkout_fails,
    start_hooks_agent,
)

from synth.demo import ShopThread

SHA = "9f1c3b2a7d4e5f60718293a4b5c6d7e8f9a0b1c2"


def deployment_status(state: str = "success", repo: str = GITHUB_REPO) -> dict[str, Any]:
    """A `deployment_status` payload with the fields GitHub sends (trimmed of URLs synth
    does not read)."""
    owner, name = repo.split("/")
    return {
        "action": "created",
        "deployment_status": {
            "url": f"https://api.github.com/repos/{repo}/deployments/42/statuses/7",
            "id": 7,
            "node_id": "DES_kwDOAAAAAAAAAAc",
            "state": state,
            "creator": {"login": "octocat", "id": 1, "type": "User"},
            "description": "Deployed by the pipeline",
            "environment": GITHUB_ENV,
            "target_url": "https://ci.example.com/runs/123",
            "created_at": "2026-11-23T10:00:00Z",
            "updated_at": "2026-11-23T10:00:00Z",
            "deployment_url": f"https://api.github.com/repos/{repo}/deployments/42",
            "repository_url": f"https://api.github.com/repos/{repo}",
            "environment_url": "https://stage.shop.example.com",
            "log_url": "https://ci.example.com/runs/123/logs",
        },
        "deployment": {
            "url": f"https://api.github.com/repos/{repo}/deployments/42",
            "id": 42,
            "node_id": "DE_kwDOAAAAAAAAACo",
            "task": "deploy",
            "original_environment": GITHUB_ENV,
            "environment": GITHUB_ENV,
            "description": None,
            "created_at": "2026-11-23T09:59:00Z",
            "updated_at": "2026-11-23T10:00:00Z",
            "statuses_url": f"https://api.github.com/repos/{repo}/deployments/42/statuses",
            "repository_url": f"https://api.github.com/repos/{repo}",
            "creator": {"login": "octocat", "id": 1, "type": "User"},
            "sha": SHA,
            "ref": "main",
            "payload": {},
            "transient_environment": False,
            "production_environment": False,
            "performed_via_github_app": None,
        },
        "repository": {
            "id": 1296269,
            "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
            "name": name,
            "full_name": repo,
            "private": False,
            "owner": {"login": owner, "id": 2, "type": "Organization"},
            "html_url": f"https://github.com/{repo}",
            "default_branch": "main",
        },
        "organization": {"login": owner, "id": 2},
        "sender": {"login": "octocat", "id": 1, "type": "User"},
    }


def github_headers(body: bytes, event: str, delivery: str, secret: str = GITHUB_SECRET) -> dict:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/abc1234",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "123456",
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def deliver(
    agent: AgentProcess,
    payload: Any,
    *,
    event: str = "deployment_status",
    delivery: str | None = None,
    secret: str = GITHUB_SECRET,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = github_headers(body, event, delivery or str(uuid.uuid4()), secret) | (headers or {})
    return agent.http.post("/v1/hooks/github", content=body, headers=sent)


def test_successful_deployment_is_verified_once(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    delivery = str(uuid.uuid4())

    accepted = deliver(agent, deployment_status(), delivery=delivery)
    assert accepted.status_code == 202, accepted.text
    deploy = accepted.json()
    assert (deploy["service"], deploy["environment"]) == (SERVICE, ENV)
    assert deploy["version"] == SHA
    assert deploy["commit"] == SHA
    assert deploy["url"] == "https://ci.example.com/runs/123"
    assert deploy["labels"] == {
        "source": "github",
        "repository": GITHUB_REPO,
        "github_environment": GITHUB_ENV,
        "ref": "main",
    }
    record = agent.wait_deploy(deploy["id"])
    assert record["status"] == "passed", record
    assert record["verdict"]["checks"] == EXAMPLE_CHECKS

    # GitHub's "redeliver" keeps the delivery id: the same deploy, nothing runs again
    again = deliver(agent, deployment_status(), delivery=delivery)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == deploy["id"]
    assert len(agent.runs(deploy_id=deploy["id"])) == len(EXAMPLE_CHECKS)


def test_failing_deployment_gets_a_fail_verdict(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    checkout_fails(shop)

    accepted = deliver(agent, deployment_status())
    assert accepted.status_code == 202, accepted.text
    record = agent.wait_deploy(accepted.json()["id"])
    assert record["status"] == "failed", record
    assert [f["check"] for f in record["verdict"]["failing"]] == ["checkout"]
    assert record["verdict"]["failing"][0]["failure_type"] == "http_status"


def test_with_a_public_url_the_answer_links_the_deploy_page(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    public_url = "https://synth.example.com"
    agent = start_hooks_agent(tmp_path, shop, start_agent, server={"public_url": public_url})
    accepted = deliver(agent, deployment_status())
    assert accepted.status_code == 202, accepted.text
    deploy = accepted.json()
    assert deploy["page_url"] == f"{public_url}/ui/deploys/{deploy['id']}"
    agent.wait_deploy(deploy["id"])
    assert agent.get(f"/ui/deploys/{deploy['id']}").status_code == 200


def test_bad_or_missing_signature_is_401_and_runs_nothing(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    wrong = deliver(agent, deployment_status(), secret="not-the-secret")
    assert wrong.status_code == 401, wrong.text
    assert "does not match" in wrong.json()["detail"]
    body = json.dumps(deployment_status()).encode()
    unsigned = agent.http.post(
        "/v1/hooks/github",
        content=body,
        headers={"X-GitHub-Event": "deployment_status", "X-GitHub-Delivery": "d-1"},
    )
    assert unsigned.status_code == 401, unsigned.text
    # the agent's own bearer token is no GitHub signature
    bearer_only = agent.post("/v1/hooks/github", deployment_status())
    assert bearer_only.status_code == 401, bearer_only.text
    assert GITHUB_SECRET not in wrong.text + unsigned.text + agent.stderr()
    assert shop.requests == []
    assert agent.runs() == []


def test_ping_other_states_and_bad_payloads(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    ping = deliver(agent, {"zen": "Keep it logically awesome.", "hook_id": 123456}, event="ping")
    assert ping.status_code == 200, ping.text
    pending = deliver(agent, deployment_status(state="pending"))
    assert pending.status_code == 200, pending.text
    assert pending.json()["ignored"] is True
    push = deliver(agent, {"ref": "refs/heads/main"}, event="push")
    assert push.status_code == 200
    assert push.json()["ignored"] is True

    unmapped = deliver(agent, deployment_status(repo="acme/other"))
    assert unmapped.status_code == 422
    assert "acme/other" in unmapped.json()["detail"]
    broken = deliver(agent, b'{"deployment_status": ')
    assert broken.status_code == 400
    assert "not JSON" in broken.json()["detail"]
    missing = deployment_status()
    del missing["deployment"]["sha"]
    incomplete = deliver(agent, missing)
    assert incomplete.status_code == 422
    assert "deployment.sha" in incomplete.json()["detail"]
    assert shop.requests == []
    assert agent.runs() == []


def test_unconfigured_hook_answers_404(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent, hooks={})
    response = deliver(agent, deployment_status())
    assert response.status_code == 404
    assert "hooks.github" in response.json()["detail"]
