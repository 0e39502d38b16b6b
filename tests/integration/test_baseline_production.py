"""The whole loop with real processes: CI runs the checks with pytest against staging and
records the baseline in a running agent; the agent's scheduled production runs and a
deploy verification are compared with it. Latency injected into one endpoint and a type
change in one field are flagged on exactly that step and that field."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import yaml
from agent_harness import (
    EXAMPLE_CHECKS,
    HMAC_SECRET,
    SHOP_PASSWORD,
    SYNTH,
    TOKEN,
    AgentProcess,
    StartAgent,
    clean_env,
    store_url,
    wait_for,
)

from synth.demo import ShopThread

PYTEST_TIMEOUT_S = 60.0
SLOW_MS = 400
RATIO = "synth_step_baseline_latency_ratio"


def write_checkout(directory: Path, every: str) -> Path:
    """The example checkout check, scheduled every `every`."""
    source = (EXAMPLE_CHECKS / "shop_checkout.py").read_text(encoding="utf-8")
    assert 'every="30s"' in source
    checks = directory / "checks"
    checks.mkdir(parents=True, exist_ok=True)
    (checks / "shop_checkout.py").write_text(source.replace('every="30s"', f'every="{every}"'))
    return checks


def environment(shop: ShopThread) -> dict[str, Any]:
    return {
        "services": {"shop": {"base_url": shop.base_url}},
        "secrets": {"shop_password": SHOP_PASSWORD},
    }


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def start_production_agent(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> AgentProcess:
    directory = tmp_path / "agent"
    write_checkout(directory, every="1s")
    config = write_yaml(
        directory / "synth.yaml",
        {
            "checks": ["checks"],
            "environments": {"production": environment(shop)},
            "server": {
                "host": "127.0.0.1",
                "port": 0,
                "tokens": [TOKEN],
                "hmac_secret": HMAC_SECRET,
            },
            "store": {"url": store_url(directory)},
            "scheduler": {"jitter": 0},
            "baseline": {
                "from_env": "staging",
                "min_samples": 2,
                "window": 5,
                "window_min_samples": 3,
                "min_increase": "200ms",
            },
        },
    )
    return start_agent(config)


def record_with_pytest(tmp_path: Path, shop: ShopThread, agent: AgentProcess, n: int) -> Path:
    """What CI does: pytest with the synth plugin against staging, recording to the agent."""
    ci = tmp_path / "ci"
    checks = write_checkout(ci, every="30s")
    config = write_yaml(ci / "synth.yaml", {"environments": {"staging": environment(shop)}})
    junit = ci / "junit.xml"
    command = [
        sys.executable, "-m", "pytest", "-p", "synth", "-p", "no:cacheprovider", "-q",
        "--synth-env", "staging", "--synth-config", str(config), "--synth-checks", str(checks),
        "--synth-baseline-url", agent.url, "--synth-version", "v1", "--junitxml", str(junit),
    ]  # fmt: skip
    for _ in range(n):
        done = subprocess.run(
            command,
            cwd=ci,
            env=clean_env(SYNTH_TOKEN=TOKEN),
            capture_output=True,
            text=True,
            timeout=PYTEST_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "synth: baseline recorded for 5 step(s) on version v1" in done.stdout, done.stdout
    return junit


def full_runs(agent: AgentProcess, limit: int = 20) -> list[dict[str, Any]]:
    runs = []
    for summary in agent.runs(check="checkout", env="production", limit=limit):
        response = agent.get(f"/v1/runs/{summary['run_id']}")
        assert response.status_code == 200, response.text
        runs.append(response.json())
    return runs


def test_production_is_compared_with_the_pytest_baseline(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_production_agent(tmp_path, shop, start_agent)

    # Writes are authenticated, and a bad fragment is refused with the reason.
    assert agent.post("/v1/baselines", {"fragments": [{}]}, authenticated=False).status_code == 401
    refused = agent.post("/v1/baselines", {"fragments": [{"check": "x"}]})
    assert refused.status_code == 422
    assert "fragments[0]" in refused.text

    junit = record_with_pytest(tmp_path, shop, agent, n=2)
    cases = ET.parse(junit).getroot().iter("testcase")
    assert [case.get("name") for case in cases] == ["checkout"]

    listed = agent.get("/v1/baselines", check="checkout", env="staging").json()["baselines"]
    assert sorted(b["step"] for b in listed) == [
        "add to cart", "check out", "list products", "log in", "order status",
    ]  # fmt: skip
    assert {(b["version"], b["runs"], b["passed"]) for b in listed} == {("v1", 2, 2)}
    order_status = next(b for b in listed if b["step"] == "order status")
    assert order_status["contract"]["fields"]["order.total"]["types"] == {"number": 2}

    # Unchanged production: compared (the ratio metric exists), nothing flagged.
    def ratio() -> float | None:
        return agent.metric(RATIO, check="checkout", env="production", step="list products")

    wait_for(ratio, timeout=15, what="a latency ratio for list products")
    unchanged = wait_for(
        lambda: (
            [r for r in full_runs(agent) if r["findings"] == [] and r["status"] == "passed"]
            if (ratio() or 0) > 0
            else None
        ),
        timeout=10,
        what="a compared production run",
    )
    assert unchanged

    shop.set_faults(
        path_latency_ms={"/api/products": SLOW_MS},
        type_change="order.total",
        path_prefix="/api/orders/",
    )

    def flagged() -> dict[str, Any] | None:
        for run in full_runs(agent, limit=5):
            if any(f["kind"] == "latency" for f in run["findings"]):
                return run
        return None

    run = wait_for(flagged, timeout=20, what="a production run flagged for latency", interval=0.3)
    assert run["status"] == "failed"
    assert run["phase"] == "scheduled"
    assert {(f["step"], f["kind"], f["field"]) for f in run["findings"]} == {
        ("list products", "latency", None),
        ("order status", "type_changed", "order.total"),
    }
    messages = {f["kind"]: f["message"] for f in run["findings"]}
    assert re.fullmatch(
        r"step `list products`: p95 (\d+) ms vs baseline [\d.]+ ms \(\d+\.\dx\)",
        messages["latency"],
    ), messages
    p95_ms = int(re.search(r"p95 (\d+) ms", messages["latency"]).group(1))  # type: ignore[union-attr]
    assert p95_ms >= SLOW_MS
    assert messages["type_changed"] == (
        "step `order status`: field `order.total` changed from number to string"
    )
    assert run["failure_type"] == "regression"
    assert run["failed_step"] == "list products"
    # Every step of the run itself passed: the findings are what failed it.
    assert all(step["status"] == "passed" for step in run["steps"])
    assert (ratio() or 0) > 2

    # A deploy verification carries the comparison into its verdict.
    deploy = agent.deploy({"service": "shop", "environment": "production", "version": "2.0"})
    assert deploy.status_code == 202, deploy.text
    record = agent.wait_deploy(deploy.json()["id"])
    verdict = record["verdict"]
    assert verdict["result"] == "fail", verdict
    assert verdict["failing"][0]["check"] == "checkout"
    assert {(c["check"], c["step"], c["field"]) for c in verdict["comparison"]} >= {
        ("checkout", "order status", "order.total")
    }

    # The CLI reads the same store: staging baseline against recent production runs.
    db = store_url(tmp_path / "agent")
    show = subprocess.run(
        [SYNTH, "baseline", "show", "checkout", "--env", "staging", "--store", db],
        capture_output=True, text=True, timeout=30, check=False, env=clean_env(),
    )  # fmt: skip
    assert show.returncode == 0, show.stderr
    assert re.search(r"staging\s+order status\s+v1\s+2\s.*no: 2 of 20 samples", show.stdout), (
        show.stdout
    )
    assert "fewer than 20 samples (baseline.min_samples) is not judged" in show.stdout
    diff = subprocess.run(
        [SYNTH, "baseline", "diff", "--from", "staging", "--to", "production", "--store", db],
        capture_output=True, text=True, timeout=30, check=False, env=clean_env(),
    )  # fmt: skip
    assert diff.returncode == 0, diff.stderr
    line = next(x for x in diff.stdout.splitlines() if "order status" in x)
    # The newest window holds runs from before the fault (number) and after it (string);
    # the contract shown is the newest one.
    assert "order.total: number→string" in line, diff.stdout
    assert diff.stdout.splitlines()[1].startswith(
        "production: the newest 20 stored runs of each check ("
    ), diff.stdout
    header = diff.stdout.splitlines()[2]
    assert header.split() == [
        "CHECK", "STEP", "FROM", "P50", "FROM", "P95", "TO", "P50", "TO", "P95",
        "RATIO", "CONTRACT",
    ]  # fmt: skip
