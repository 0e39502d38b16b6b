"""A real Prometheus scrapes a real `synth agent` and evaluates the shipped rules.

The agent runs two checks every 2 seconds against the demo shop: `tick` passes, `down` calls
a service whose port nothing listens on. Prometheus (the Debian package's binary, its own
temp TSDB, a free 127.0.0.1 port) scrapes the agent every second and loads a copy of
deploy/prometheus/synth-rules.yaml in which only the `for:` durations are rewritten to
1s, so alerts meant to wait minutes fire within the test; every expression is the
shipped one. The test reads series, recording rules, alerts and every dashboard
expression back through Prometheus' HTTP API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_harness import (
    ENV,
    SERVICE,
    AgentProcess,
    StartAgent,
    wait_for,
    write_check,
    write_config,
)
from prometheus import RULES, PrometheusServer, as_promql, dashboard, expressions

from synth.demo import ShopThread

JOB = "synth-agent"
LOCATION = "test-eu"
SERIES_TIMEOUT_S = 15.0
ALERT_TIMEOUT_S = 15.0

TICK = """
    import synth

    @synth.check(service="shop", every="2s", timeout="5s")
    async def tick(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""

DOWN = """
    import synth

    @synth.check(service="down", every="2s", timeout="2s")
    async def down(flow):
        async with flow.step("home"):
            r = await flow.get("/")
            r.expect_status(200)
"""

# Dashboard panels that must show data for this agent, on the default metrics (the others
# show series that only appear on errors, TLS targets or telemetry this agent does not
# have, or opt-in `metrics.detail` families).
PANELS_WITH_DATA = {
    "Check status by environment",
    "Success ratio (1h)",
    "Failing locations",
    "Run duration p95 by phase",
    "Run duration p50 by phase",
    "HTTP phases of the last run (dns, connect, tls, send, first byte, body)",
    "Failures by type",
    "Failed runs by check and phase",
    "Consecutive failures",
    "Agents up",
    "Scheduler lag p99",
    "Runs in flight",
}


def fast_rules(directory: Path) -> Path:
    """The shipped rules with every `for:` set to 1s; expressions untouched."""
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    path = directory / "synth-rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return path


def prometheus_config(directory: Path, agent_url: str) -> Path:
    target = agent_url.removeprefix("http://")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(fast_rules(directory))],
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def agent_config(directory: Path, shop_url: str, closed_port: int) -> Path:
    path = write_config(directory, shop_url)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["location"] = LOCATION
    config["environments"][ENV]["services"]["down"] = {
        "base_url": f"http://127.0.0.1:{closed_port}"
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    return directory


@pytest.fixture
def scraped_agent(
    tmp_path: Path,
    prometheus_dir: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    closed_port: int,
) -> Iterator[tuple[AgentProcess, PrometheusServer]]:
    write_check(tmp_path, "tick.py", TICK)
    write_check(tmp_path, "down.py", DOWN)
    agent = start_agent(agent_config(tmp_path, shop.base_url, closed_port))
    server = PrometheusServer.start(prometheus_config(prometheus_dir, agent.url), prometheus_dir)
    try:
        yield agent, server
    finally:
        server.stop()


def labels_of(result: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: v for k, v in r["metric"].items() if k not in ("instance", "job")} for r in result]


def value(server: PrometheusServer, expr: str) -> float | None:
    """The single value of `expr` now, or None while it has no result."""
    result = server.query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else None


def alert(server: PrometheusServer, name: str, state: str, **labels: str) -> dict[str, Any] | None:
    for found in server.alerts():
        if (
            found["labels"]["alertname"] == name
            and found["state"] == state
            and all(found["labels"].get(k) == v for k, v in labels.items())
        ):
            return found
    return None


def test_prometheus_scrapes_the_agent_and_evaluates_the_shipped_rules(
    scraped_agent: tuple[AgentProcess, PrometheusServer],
) -> None:
    agent, server = scraped_agent
    run_labels = {"env": ENV, "phase": "scheduled", "location": LOCATION}

    # The series, with exactly the bounded labels.
    runs = wait_for(
        lambda: (
            len(found := server.query('synth_check_runs_total{job="synth-agent"} > 0')) >= 2
            and found
        ),
        timeout=SERIES_TIMEOUT_S,
        what="synth_check_runs_total for both checks in Prometheus",
    )
    # Every other result of a scheduled check is there at 0 (passed, failed,
    # passed_after_retry: 3 per check), so increase() sees a first failure; the failure's
    # type is its own counter, created with it.
    every_outcome = server.query('synth_check_runs_total{job="synth-agent"}')
    assert len(every_outcome) == 2 * 3, labels_of(every_outcome)
    assert sorted(labels_of(runs), key=lambda labels: labels["check"]) == [
        {"__name__": "synth_check_runs_total", "check": "down", **run_labels, "result": "failed"},
        {"__name__": "synth_check_runs_total", "check": "tick", **run_labels, "result": "passed"},
    ]
    failures = server.query('synth_check_failures_total{job="synth-agent"}')
    assert labels_of(failures) == [
        {"__name__": "synth_check_failures_total", "check": "down", **run_labels}
        | {"failure_type": "connect"}
    ]
    # The last run's HTTP phases as gauges (as blackbox does): those a plain-http request
    # to an IP address has — no dns, no tls.
    phases = server.query('synth_http_phase_seconds{check="tick"}')
    assert sorted(labels["http_phase"] for labels in labels_of(phases)) == sorted(
        ("connect", "send", "first_byte", "body")
    )
    assert {labels["step"] for labels in labels_of(phases)} == {"health"}
    interval = server.query('synth_check_interval_seconds{check="tick"}')
    assert labels_of(interval) == [
        {"__name__": "synth_check_interval_seconds", "check": "tick", "env": ENV}
        | {"location": LOCATION}
    ]
    assert float(interval[0]["value"][1]) == 2.0
    assert value(server, f'up{{job="{JOB}"}}') == 1.0

    # Recording rules evaluate over the scraped series.
    ratio = "check_env_phase:synth_check_success:ratio_rate5m"
    wait_for(
        lambda: (
            value(server, f'{ratio}{{check="tick"}}') == 1.0
            and value(server, f'{ratio}{{check="down"}}') == 0.0
        ),
        timeout=SERIES_TIMEOUT_S,
        what="success ratios 1 (tick) and 0 (down)",
    )
    failing = "check_env:synth_check_failing_locations:count"
    assert value(server, f'{failing}{{check="down", env="{ENV}"}}') == 1.0
    assert value(server, f'{failing}{{check="tick", env="{ENV}"}}') == 0.0
    p95 = wait_for(
        lambda: value(
            server, 'check_env_phase:synth_check_run_duration_seconds:p95_5m{check="tick"}'
        ),
        timeout=SERIES_TIMEOUT_S,
        what="the run-duration p95 recording rule",
    )
    assert 0 < p95 < 5

    # The failing check's alert goes pending, then firing, with its labels; the passing
    # check and the running schedule raise nothing.
    firing = wait_for(
        lambda: alert(server, "SynthCheckFailing", "firing", check="down"),
        timeout=ALERT_TIMEOUT_S,
        what="SynthCheckFailing firing for `down`",
    )
    assert firing["labels"] == {
        "alertname": "SynthCheckFailing",
        "severity": "critical",
        "check": "down",
        "instance": agent.url.removeprefix("http://"),
        "job": JOB,
        **run_labels,
    }
    assert firing["annotations"]["runbook_url"] == "docs/runbooks.md#synthcheckfailing"
    assert not any(a["labels"].get("check") == "tick" for a in server.alerts())
    assert not any(a["labels"]["alertname"] == "SynthCheckNotRunning" for a in server.alerts())

    # Every dashboard expression runs on this Prometheus; the core panels show data.
    for where, expr in expressions(dashboard()):
        result = server.query(as_promql(expr))
        title = re.search(r"'(.*)'", where)
        if where.startswith("panel") and title and title[1] in PANELS_WITH_DATA:
            assert result, f"{where}: no data for {as_promql(expr)}"

    # A deploy of the `down` service fails verification: SynthDeployVerdictFailed.
    response = agent.deploy({"service": "down", "environment": ENV, "version": "2.0.0"})
    assert response.status_code == 202, response.text
    record = agent.wait_deploy(response.json()["id"])
    assert record["verdict"]["result"] == "fail", record
    verdict = wait_for(
        lambda: alert(server, "SynthDeployVerdictFailed", "firing", service="down", env=ENV),
        timeout=ALERT_TIMEOUT_S,
        what="SynthDeployVerdictFailed firing",
    )
    assert verdict["labels"]["result"] == "fail"
    annotations = {a["name"]: a["expr"] for a in dashboard()["annotations"]["list"] if "expr" in a}
    marked = server.query(as_promql(annotations["Deploy verdict: fail / error"]))
    assert labels_of(marked) == [{"service": "down", "env": ENV, "result": "fail"}]
    assert server.query(as_promql(annotations["Deploy verdict: pass"])) == []
    deploy_phase = server.query(f'synth_check_up{{phase="deploy", location="{LOCATION}"}}')
    assert [r["metric"]["check"] for r in deploy_phase] == ["down"]
    assert not alert(server, "SynthDeployVerdictFailed", "firing", service=SERVICE)

    # The agent stops: SynthAgentDown fires for its instance.
    code, killed = agent.stop()
    assert (code, killed) == (0, False)
    wait_for(
        lambda: alert(server, "SynthAgentDown", "firing", job=JOB),
        timeout=ALERT_TIMEOUT_S,
        what="SynthAgentDown firing after the agent stopped",
    )
