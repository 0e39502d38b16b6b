"""A `synth agent` subprocess with every CD-tool hook configured, for tests/integration/
test_hooks_*.py: the example checks (browse, checkout, shop-port) against the demo shop,
no schedule, so every shop request and run comes from the hook under test."""

from __future__ import annotations

from pathlib import Path

import yaml
from agent_harness import ENV, SERVICE, AgentProcess, StartAgent, copy_example_checks, write_config

from synth.demo import ShopThread

GITHUB_SECRET = "github-webhook-secret"
GITHUB_REPO = "acme/shop"
GITHUB_ENV = "stage"  # mapped to synth's `staging`
ARGOCD_TOKEN = "argocd-hook-token"
ARGOCD_USER = "argocd"
ARGOCD_PASSWORD = "argocd-basic-password"
ARGOCD_APP = "shop-staging"
FLAGGER_TOKEN = "flagger-hook-token"
FLAGGER_CANARY = ("test", "shop")
EXAMPLE_CHECKS = ["browse", "checkout", "shop-port"]

HOOKS = {
    "github": {
        "secret": GITHUB_SECRET,
        "services": {GITHUB_REPO: SERVICE},
        "environments": {GITHUB_ENV: ENV},
    },
    "argocd": {
        "tokens": [ARGOCD_TOKEN],
        "basic_auth": {"username": ARGOCD_USER, "password": ARGOCD_PASSWORD},
        "targets": {ARGOCD_APP: {"service": SERVICE, "environment": ENV}},
    },
    "flagger": {
        "tokens": [FLAGGER_TOKEN],
        "wait": "30s",
        "targets": {"/".join(FLAGGER_CANARY): {"service": SERVICE, "environment": ENV}},
    },
    # no tokens of its own: the agent's server.tokens (agent_harness.TOKEN) are accepted
    "argo_rollouts": {"wait": "30s"},
}


def start_hooks_agent(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    *,
    hooks: dict | None = None,
    server: dict | None = None,
) -> AgentProcess:
    copy_example_checks(tmp_path)
    config = write_config(tmp_path, shop.base_url, scheduler={"enabled": False})
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["hooks"] = HOOKS if hooks is None else hooks
    data["server"] = data.get("server", {}) | (server or {})
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return start_agent(config)


def checkout_fails(shop: ShopThread) -> None:
    """The demo fault that makes the `checkout` check fail (and only it)."""
    shop.set_faults(status=503, path_prefix="/api/checkout")
