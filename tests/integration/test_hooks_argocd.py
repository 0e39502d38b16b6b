"""Argo CD notifications webhooks against a real agent and the demo shop: the body the
example template (deploy/examples/argocd) renders, with a bearer token or basic auth."""

from __future__ import annotations

import base64
from typing import Any

from agent_harness import ENV, SERVICE, StartAgent
from hooks_support import (
    ARGOCD_APP,
    ARGOCD_PASSWORD,
    ARGOCD_TOKEN,
    ARGOCD_USER,
    EXAMPLE_CHECKS,
    checkout_fails,
    start_hooks_agent,
)

from synth.demo import ShopThread

PATH = "/v1/hooks/argocd"
REVISION = "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def notification(**fields: Any) -> dict[str, Any]:
    return {
        "app": ARGOCD_APP,
        "namespace": "argocd",
        "project": "default",
        "revision": REVISION,
        "finishedAt": "2026-11-23T10:00:00Z",
        "url": f"https://argocd.example.com/applications/{ARGOCD_APP}",
        "health": "Healthy",
        "sync": "Synced",
    } | fields


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sync_notification_is_verified_once(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    accepted = agent.http.post(PATH, json=notification(), headers=bearer(ARGOCD_TOKEN))
    assert accepted.status_code == 202, accepted.text
    deploy = accepted.json()
    assert (deploy["service"], deploy["environment"], deploy["version"]) == (SERVICE, ENV, REVISION)
    assert deploy["labels"] == {"source": "argocd", "app": ARGOCD_APP, "project": "default"}
    record = agent.wait_deploy(deploy["id"])
    assert record["status"] == "passed", record
    assert record["verdict"]["checks"] == EXAMPLE_CHECKS

    # the controller retrying the same notification (basic auth this time): same deploy
    again = agent.http.post(PATH, json=notification(), headers=basic(ARGOCD_USER, ARGOCD_PASSWORD))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == deploy["id"]


def test_failing_sync_gets_a_fail_verdict(
    tmp_path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    checkout_fails(shop)
    accepted = agent.http.post(
        PATH, json=notification(), headers=basic(ARGOCD_USER, ARGOCD_PASSWORD)
    )
    assert accepted.status_code == 202, accepted.text
    record = agent.wait_deploy(accepted.json()["id"])
    assert record["status"] == "failed", record
    assert [f["check"] for f in record["verdict"]["failing"]] == ["checkout"]


def test_credentials_and_bad_payloads(tmp_path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_hooks_agent(tmp_path, shop, start_agent)
    assert agent.http.post(PATH, json=notification()).status_code == 401
    assert agent.http.post(PATH, json=notification(), headers=bearer("no")).status_code == 401
    wrong = agent.http.post(PATH, json=notification(), headers=basic(ARGOCD_USER, "no"))
    assert wrong.status_code == 401
    assert ARGOCD_PASSWORD not in wrong.text + agent.stderr()

    auth = bearer(ARGOCD_TOKEN)
    unmapped = agent.http.post(PATH, json=notification(app="other-app"), headers=auth)
    assert unmapped.status_code == 422
    assert "other-app" in unmapped.json()["detail"]
    long_revision = agent.http.post(PATH, json=notification(revision="x" * 201), headers=auth)
    assert long_revision.status_code == 422
    assert "revision" in long_revision.json()["detail"]
    bad_service = agent.http.post(
        PATH, json=notification(service="../etc", environment=ENV), headers=auth
    )
    assert bad_service.status_code == 422
    assert shop.requests == []
    assert agent.runs() == []
