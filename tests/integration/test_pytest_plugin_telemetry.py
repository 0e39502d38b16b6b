"""The pytest plugin emits the same telemetry as `synth run`: spans over OTLP and metrics
pushed to a real Pushgateway, with phase="preprod", so dashboards and baselines compare
CI runs with production without relabelling."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agent_harness import (
    ENV,
    clean_env,
    write_check,
    write_config,
)
from otlp_receiver import OtlpHttpReceiver, otel_env, tree
from pushgateway import Pushgateway
from test_telemetry_run import HEALTH as CHECKS  # the same two checks as synth run's test

from synth.demo import ShopThread


def pytest_run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        env=clean_env(SYNTH_LOCATION="ci-runner", **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pytest_runs_emit_preprod_metrics_and_spans(
    tmp_path: Path,
    shop: ShopThread,
    pushgateway: Pushgateway,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    receiver = otlp_http()
    write_config(tmp_path, shop.base_url)
    write_check(tmp_path, "health.py", CHECKS)
    done = pytest_run(
        tmp_path,
        "--synth-env", ENV, "--synth-checks", "checks/health.py",
        "--synth-config", str(tmp_path / "synth.yaml"),
        "--synth-push-metrics", pushgateway.url,
        env=otel_env(receiver.endpoint),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # `missing` fails
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert "warning" not in done.stdout

    runs = {labels["check"]: labels for labels, _ in pushgateway.samples("synth_check_runs_total")}
    assert set(runs) == {"health", "missing"}
    assert runs["missing"]["phase"] == "preprod"
    assert runs["missing"]["location"] == "ci-runner"
    (failed,) = [labels for labels, _ in pushgateway.samples("synth_check_failures_total")]
    assert (failed["check"], failed["failure_type"]) == ("missing", "http_status")
    phases = pushgateway.samples("synth_http_phase_seconds")
    steps = [labels for labels, _ in phases if labels["http_phase"] == "first_byte"]
    assert {(s["check"], s["step"], s["phase"]) for s in steps} == {
        ("health", "health", "preprod"),
        ("missing", "missing page", "preprod"),
    }

    spans = receiver.wait_for(lambda s: sum(x.parent_span_id == "" for x in s) >= 2)
    roots = {s.attributes["synth.check"]: s for s in spans if s.parent_span_id == ""}
    assert set(roots) == {"health", "missing"}
    assert {r.attributes["synth.phase"] for r in roots.values()} == {"preprod"}
    missing = roots["missing"]
    assert missing.status_code == "error"
    (step,) = tree(spans, missing.trace_id)[missing.span_id]
    assert step.name == "missing page"


def test_a_dead_pushgateway_warns_without_changing_the_outcome(
    tmp_path: Path, shop: ShopThread
) -> None:
    write_config(tmp_path, shop.base_url)
    write_check(tmp_path, "health.py", CHECKS)
    done = pytest_run(
        tmp_path,
        "--synth-env", ENV, "--synth-checks", "checks/health.py", "-k", "health",
        "--synth-config", str(tmp_path / "synth.yaml"),
        "--synth-push-metrics", "http://127.0.0.1:9",
        env={},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "synth: warning: cannot push metrics to http://127.0.0.1:9" in done.stdout
