"""Fuzz the agent's HTTP API from its own OpenAPI document: `schemathesis run --checks all`
(every check: no 5xx, status codes, content types and bodies as documented, invalid input
refused, valid input accepted, Allow headers, authentication not ignored, …) against a real
`synth agent` with every hook configured, authenticated with the test token. The document
and the server must agree: 0 findings. The repository's schemathesis.toml says which
refusals JSON Schema cannot express, and why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from agent_harness import (
    REPO,
    TOKEN,
    AgentProcess,
    StartAgent,
    copy_example_checks,
    write_config,
)

from synth.demo import ShopThread

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
EXAMPLES = 25  # per operation and phase: ~1,000 requests, about a minute
RUN_TIMEOUT_S = 600


def start_fuzz_agent(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> AgentProcess:
    """The example checks, no schedule, short deploy limits and gate waits (generated deploys
    naming a configured service must not hold the agent for minutes), and the hooks that
    take the agent's bearer token configured without tokens of their own."""
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path,
        shop.base_url,
        scheduler={"enabled": False},
        deploys={"max_settle": "1s", "max_window": "1s"},
    )
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["hooks"] = {
        "github": {"secret": "github-webhook-secret-0123", "services": {"acme/shop": "shop"}},
        "argocd": {"targets": {"shop-staging": {"service": "shop", "environment": "staging"}}},
        "flagger": {"wait": "2s"},
        "argo_rollouts": {"wait": "2s"},
    }
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return start_agent(config)


def test_schemathesis_all_checks_find_nothing(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_fuzz_agent(tmp_path, shop, start_agent)
    command = [
        SCHEMATHESIS,
        "--no-color",
        "--config-file",
        str(REPO / "schemathesis.toml"),
        "run",
        f"{agent.url}/openapi.json",
        "--checks",
        "all",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--max-examples",
        str(EXAMPLES),
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=tmp_path
    )
    output = done.stdout + done.stderr
    summary = output[-4000:]
    assert done.returncode == 0, summary
    assert "Failures:" not in output, summary
    assert "passed" in output, summary
    assert agent.process.poll() is None, "the agent died under the fuzzer"
    assert agent.get("/healthz").status_code == 200
