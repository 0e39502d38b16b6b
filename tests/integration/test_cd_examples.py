"""The CD-tool examples in deploy/examples, played against a real agent running the
shipped Kubernetes config (deploy/kubernetes/base/synth.yaml, its `production` environment
pointed at the demo shop): the request each tool would build from the example is sent as
that tool sends it, and the answer is judged the way the tool judges it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from agent_harness import (
    SHOP_PASSWORD,
    AgentProcess,
    StartAgent,
    copy_example_checks,
    store_url,
)
from hooks_support import EXAMPLE_CHECKS, checkout_fails

from synth.demo import ShopThread

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "deploy" / "examples"
BASE = REPO / "deploy" / "kubernetes" / "base"
REVISION = "4f2a9c1e0b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"


SECRETS_DIR = "/var/run/secrets/synth"


def example_secret() -> dict[str, str]:
    """The example Secret's keys, each with a stand-in for its placeholder (the agent
    refuses `CHANGE-ME-…` values)."""
    path = EXAMPLES / "kubernetes" / "secret.example.yaml"
    secret = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {key: stand_in(value) for key, value in secret["stringData"].items()}


def stand_in(placeholder: str) -> str:
    return placeholder.replace("CHANGE-ME-", "test-stand-in-", 1)


@pytest.fixture(name="agent")
def agent_fixture(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, monkeypatch: pytest.MonkeyPatch
) -> AgentProcess:
    """The shipped config as the Deployment runs it, secrets from the example Secret."""
    # The Secret's keys as the files the Deployment mounts, where the config reads them.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    for key, value in (example_secret() | {"shop-password": SHOP_PASSWORD}).items():
        (secrets_dir / key).write_text(value, encoding="utf-8")
    text = (BASE / "synth.yaml").read_text(encoding="utf-8")
    config = yaml.safe_load(text.replace(SECRETS_DIR, str(secrets_dir)))
    config["checks"] = [str(copy_example_checks(tmp_path))]
    config["environments"]["production"]["services"]["shop"]["base_url"] = shop.base_url
    config["server"] |= {"host": "127.0.0.1", "port": 0}
    config["store"] = {"url": store_url(tmp_path)}
    config["scheduler"] = {"enabled": False}
    config["deploys"] = {"settle": 0}
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return start_agent(path)


def fill(template: str, values: dict[str, str]) -> str:
    """Substitute Go-template (`{{.app.x}}`) and Argo (`{{ args.x }}`) placeholders."""

    def one(match: re.Match[str]) -> str:
        key = match[1].strip()
        assert key in values, f"no sample value for {key}"
        return values[key]

    return re.sub(r"\{\{([^}]*)\}\}", one, template)


def service_path(url: str) -> str:
    """The path of an in-cluster URL to the synth Service, after checking it is one."""
    parts = urlsplit(url)
    assert parts.hostname == "synth.synth.svc.cluster.local", url
    assert parts.port == 8484, url
    return parts.path


# -- Argo CD ----------------------------------------------------------------------------------

ARGOCD_SAMPLE = {
    ".app.metadata.name": "shop-production",
    ".app.metadata.namespace": "argocd",
    ".app.spec.project": "default",
    ".app.status.operationState.syncResult.revision": REVISION,
    "toJson .app.status.operationState.syncResult.revisions": "null",
    ".app.status.operationState.finishedAt": "2026-11-23T10:00:00Z",
    ".context.argocdUrl": "https://argocd.example.com",
}


# A multi-source application: Argo CD renders `revision` empty and fills `revisions`.
ARGOCD_MULTI_SOURCE = ARGOCD_SAMPLE | {
    ".app.status.operationState.syncResult.revision": "",
    "toJson .app.status.operationState.syncResult.revisions": json.dumps([REVISION, "9f8e7d6"]),
}


def argocd_request(sample: dict[str, str] = ARGOCD_SAMPLE) -> tuple[str, dict[str, str], bytes]:
    cm = yaml.safe_load((EXAMPLES / "argocd" / "argocd-notifications-cm.yaml").read_text())
    kubernetes_validate.validate(cm, "1.37", strict=True)
    service = yaml.safe_load(cm["data"]["service.webhook.synth"])
    webhook = yaml.safe_load(cm["data"]["template.synth-deploy"])["webhook"]["synth"]
    token = example_secret()["argocd-token"]  # argocd-notifications-secret `synth-token`
    headers = {h["name"]: h["value"].replace("$synth-token", token) for h in service["headers"]}
    assert webhook["method"] == "POST"
    path = service_path(service["url"]) + webhook["path"]
    body = fill(webhook["body"], sample).encode()
    assert "on-deployed-synth" in "".join(cm["data"])
    return path, headers, body


@pytest.mark.parametrize("sample", [ARGOCD_SAMPLE, ARGOCD_MULTI_SOURCE], ids=["one", "multi"])
def test_argocd_example_notification_is_verified(
    agent: AgentProcess, sample: dict[str, str]
) -> None:
    path, headers, body = argocd_request(sample)
    response = agent.http.post(path, content=body, headers=headers)
    assert response.status_code == 202, response.text
    deploy = response.json()
    assert (deploy["service"], deploy["environment"], deploy["version"]) == (
        "shop",
        "production",
        REVISION,
    )
    assert agent.wait_deploy(deploy["id"])["status"] == "passed"


# -- Flagger ----------------------------------------------------------------------------------


def flagger_calls() -> list[tuple[str, str, dict[str, Any]]]:
    """(type, path, payload) for each webhook of the example Canary, as Flagger posts them."""
    canary = yaml.safe_load((EXAMPLES / "flagger" / "canary.yaml").read_text(encoding="utf-8"))
    assert canary["apiVersion"] == "flagger.app/v1beta1"
    calls = []
    for hook in canary["spec"]["analysis"]["webhooks"]:
        payload = {
            "name": canary["metadata"]["name"],
            "namespace": canary["metadata"]["namespace"],
            "phase": "Progressing",
            "checksum": "85d557f47b",
            # the example's token placeholder, as the agent's stand-in Secret holds it
            "metadata": hook["metadata"] | {"token": stand_in(hook["metadata"]["token"])},
        }
        calls.append((hook["type"], service_path(hook["url"]), payload))
    return calls


def test_flagger_example_gates_the_canary(agent: AgentProcess, shop: ShopThread) -> None:
    calls = flagger_calls()
    assert [c[0] for c in calls] == ["pre-rollout", "rollout", "post-rollout"]
    for _, path, payload in calls:
        response = agent.http.post(path, json=payload, timeout=90)
        assert response.status_code == 200, response.text  # Flagger advances
    rollout = next(c for c in calls if c[0] == "rollout")
    assert agent.http.post(rollout[1], json=rollout[2], timeout=90).json()["checks"] == ["checkout"]
    checkout_fails(shop)
    for _, path, payload in calls:
        response = agent.http.post(path, json=payload, timeout=90)
        assert response.status_code == 412, response.text  # Flagger halts / rolls back


# -- Argo Rollouts ----------------------------------------------------------------------------


def rollouts_request() -> tuple[str, str, dict[str, str], dict[str, Any], str]:
    template = yaml.safe_load(
        (EXAMPLES / "argo-rollouts" / "analysistemplate.yaml").read_text(encoding="utf-8")
    )
    args = {a["name"]: a.get("value") for a in template["spec"]["args"]}
    values = {
        "args.service": args["service"],
        "args.environment": args["environment"],
        "args.version": "rollout-6d4f8",
        "args.synth-token": example_secret()["api-token"],  # Secret synth-token/token
    }
    metric = template["spec"]["metrics"][0]
    web = metric["provider"]["web"]
    headers = {h["key"]: fill(h["value"], values) for h in web["headers"]}
    body = json.loads(fill(json.dumps(web["jsonBody"]), values))
    return web["method"], service_path(web["url"]), headers, body, metric["successCondition"]


def test_argo_rollouts_example_measurement(agent: AgentProcess, shop: ShopThread) -> None:
    method, path, headers, body, condition = rollouts_request()
    assert condition == "result.passed == true"
    response = agent.http.request(method, path, json=body, headers=headers, timeout=150)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["passed"] is True  # successCondition holds
    assert result["checks"] == EXAMPLE_CHECKS
    checkout_fails(shop)
    failed = agent.http.request(method, path, json=body, headers=headers, timeout=150).json()
    assert failed["passed"] is False
    assert failed["verdict"] == "fail"  # failureCondition holds
