"""A check's flakiness survives its agent: a real `synth agent` with a real SQLite store
counts transient failures, is stopped and started again, and reports the same 24 h ratio,
runs and cause from the stored runs before any new run could have changed them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_harness import ENV, AgentProcess, StartAgent, wait_for, write_check, write_config

from synth.demo import ShopThread

CHECK = """\
name: flaky-health
service: shop
every: 1s
retries: 0
steps:
  - name: health
    request: {method: GET, path: /health}
    expect: {status: 200}
"""


def flaky(agent: AgentProcess) -> dict[str, Any] | None:
    response = agent.get("/v1/checks")
    assert response.status_code == 200, response.text
    check = next(c for c in response.json()["checks"] if c["name"] == "flaky-health")
    entry: dict[str, Any] | None = check["flaky"].get(ENV)
    return entry


def test_flakiness_is_read_back_after_a_restart(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    write_check(tmp_path, "flaky.yaml", CHECK)
    config = write_config(tmp_path, shop.base_url, scheduler={"jitter": 0})
    agent = start_agent(config)

    def latest() -> dict[str, Any] | None:
        runs = agent.runs(check="flaky-health", limit=1)
        return runs[0] if runs else None

    # Single failed runs between passes: transient failures.
    for _ in range(3):
        shop.set_faults(status=503, path_prefix="/health")
        failed = wait_for(
            lambda: (run := latest()) and run["status"] == "failed" and run,
            timeout=10,
            what="a failed run",
        )
        shop.clear_faults()
        wait_for(
            lambda f=failed: (
                (run := latest()) and run["run_id"] != f["run_id"] and run["status"] == "passed"
            ),
            timeout=10,
            what="a passing run after the failure",
        )
    counted = wait_for(
        lambda: (f := flaky(agent)) and f["transient_failures_24h"] >= 1 and f,
        timeout=10,
        what="transient failures counted",
    )
    assert counted["step"] == "health"
    assert counted["failure_type"] == "http_status"
    code, killed = agent.stop()
    assert (code, killed) == (0, False)

    restarted = start_agent(config)
    seeded = wait_for(lambda: flaky(restarted), timeout=10, what="flakiness read back")
    assert seeded["transient_failures_24h"] == counted["transient_failures_24h"]
    assert seeded["runs_24h"] >= counted["runs_24h"]
    assert seeded["step"] == "health"
    assert seeded["failure_type"] == "http_status"
    ratio = restarted.metric(
        "synth_check_flaky_ratio", check="flaky-health", env=ENV, location="local"
    )
    assert ratio is not None
    assert ratio > 0
