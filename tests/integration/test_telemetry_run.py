"""Pre-prod telemetry from `synth run` (a real subprocess): metrics pushed to a real
Pushgateway under job="synth" with phase="preprod", traces over OTLP to a real receiver,
and neither a dead Pushgateway nor a dead collector changing what the run reports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agent_harness import (
    ENV,
    SYNTH,
    clean_env,
    write_check,
    write_config,
)
from otlp_receiver import OtlpHttpReceiver, otel_env, tree
from pushgateway import Pushgateway

from synth.demo import ShopThread

HEALTH = """
    import synth

    @synth.check(service="shop", timeout="5s")
    async def health(flow):
        async with flow.step("health"):
            (await flow.get("/health")).expect_status(200)

    @synth.check(service="shop", timeout="5s")
    async def missing(flow):
        async with flow.step("missing page"):
            (await flow.get("/no-such-page")).expect_status(200)
"""

RUN_TIMEOUT_S = 60


def synth_run(
    directory: Path, *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNTH, "run", "--config", str(directory / "synth.yaml"), "--env", ENV, *args],
        cwd=directory,
        env=clean_env(SYNTH_LOCATION="ci-runner", **(env or {})),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def setup(tmp_path: Path, shop: ShopThread) -> Path:
    write_config(tmp_path, shop.base_url)
    write_check(tmp_path, "health.py", HEALTH)
    return tmp_path


def test_push_preprod_metrics_and_traces(
    tmp_path: Path,
    shop: ShopThread,
    pushgateway: Pushgateway,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    receiver = otlp_http()
    directory = setup(tmp_path, shop)
    env = otel_env(receiver.endpoint, OTEL_SERVICE_NAME="shop-synthetics")
    done = synth_run(directory, "--push-metrics", pushgateway.url, env=env)
    assert done.returncode == 1, done.stderr  # `missing` fails: exit code as without push
    assert "warning" not in done.stderr

    runs = pushgateway.samples("synth_check_runs_total")
    by_check = {labels["check"]: (labels, value) for labels, value in runs}
    assert set(by_check) == {"health", "missing"}
    labels, value = by_check["missing"]
    assert value == 1
    assert labels == {
        "check": "missing",
        "env": ENV,
        "phase": "preprod",  # the default phase of `synth run`
        "location": "ci-runner",
        "result": "failed",
        "job": "synth",
        "instance": "",  # the gateway's own empty instance label
    }
    assert by_check["health"][0]["result"] == "passed"
    ((failed, count),) = pushgateway.samples("synth_check_failures_total")
    assert (failed["check"], failed["failure_type"], count) == ("missing", "http_status", 1)
    phases = pushgateway.samples("synth_http_phase_seconds")
    assert {(s["check"], s["step"]) for s, _ in phases} == {
        ("health", "health"),
        ("missing", "missing page"),
    }
    measured = {s["http_phase"] for s, seconds in phases if seconds > 0}
    assert {"connect", "first_byte"} <= measured
    errors = pushgateway.samples("synth_telemetry_export_errors_total")
    assert [(s["exporter"], v) for s, v in errors] == [("otlp_http", 0.0)]

    # The same run's traces reached the collector with the same words.
    spans = receiver.wait_for(lambda s: sum(x.parent_span_id == "" for x in s) >= 2)
    roots = {s.attributes["synth.check"]: s for s in spans if s.parent_span_id == ""}
    assert set(roots) == {"health", "missing"}
    missing = roots["missing"]
    assert missing.attributes["synth.phase"] == "preprod"
    assert missing.attributes["synth.location"] == "ci-runner"
    assert missing.status_code == "error"
    assert missing.resource["service.name"] == "shop-synthetics"
    assert missing.resource["deployment.environment.name"] == ENV
    children = tree(spans, missing.trace_id)
    (step,) = children[missing.span_id]
    assert step.name == "missing page"
    (client,) = children[step.span_id]
    assert client.attributes["http.response.status_code"] == 404


def test_adhoc_phase_and_push_label(
    tmp_path: Path, shop: ShopThread, pushgateway: Pushgateway
) -> None:
    directory = setup(tmp_path, shop)
    done = synth_run(
        directory,
        "--check",
        "health",
        "--phase",
        "adhoc",
        "--push-metrics",
        pushgateway.url,
        "--push-label",
        "pipeline=web-42",
    )
    assert done.returncode == 0, done.stderr
    ((labels, value),) = pushgateway.samples("synth_check_runs_total")
    assert labels["phase"] == "adhoc"
    assert labels["pipeline"] == "web-42"
    assert value == 1


def test_dead_pushgateway_warns_and_keeps_exit_code(
    tmp_path: Path, shop: ShopThread, closed_port: int
) -> None:
    directory = setup(tmp_path, shop)
    url = f"http://user:pushpass-123@127.0.0.1:{closed_port}"
    passed = synth_run(directory, "--check", "health", "--push-metrics", url)
    assert passed.returncode == 0, passed.stderr
    assert "synth: warning: cannot push metrics to" in passed.stderr
    assert "pushpass-123" not in passed.stderr + passed.stdout
    failed = synth_run(directory, "--check", "missing", "--push-metrics", url)
    assert failed.returncode == 1
    assert "cannot push metrics" in failed.stderr


def test_dead_collector_does_not_hold_up_the_run(
    tmp_path: Path, shop: ShopThread, closed_port: int, pushgateway: Pushgateway
) -> None:
    directory = setup(tmp_path, shop)
    env = otel_env(f"http://127.0.0.1:{closed_port}", OTEL_EXPORTER_OTLP_TIMEOUT="1000")
    started = time.monotonic()
    done = synth_run(directory, "--push-metrics", pushgateway.url, env=env)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert elapsed < 15, f"synth run took {elapsed:.1f}s with the collector down"
    dropped = pushgateway.samples("synth_telemetry_spans_dropped_total")
    errors = pushgateway.samples("synth_telemetry_export_errors_total")
    assert [s["exporter"] for s, _ in dropped] == ["otlp_http"]
    assert dropped[0][1] >= 6  # two runs x (run + step + request) spans
    assert errors[0][1] >= 1
    runs = pushgateway.samples("synth_check_runs_total")
    assert sorted(s["result"] for s, _ in runs) == ["failed", "passed"]


def test_bad_otel_setting_is_a_usage_error(tmp_path: Path, shop: ShopThread) -> None:
    directory = setup(tmp_path, shop)
    done = synth_run(
        directory,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        },
    )
    assert done.returncode == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' is not supported" in done.stderr


def test_bad_push_url_is_refused_before_running(tmp_path: Path, shop: ShopThread) -> None:
    directory = setup(tmp_path, shop)
    done = synth_run(directory, "--push-metrics", "ftp://gateway:9091")
    assert done.returncode == 2
    assert "--push-metrics: not an http(s) URL: 'ftp://gateway:9091'" in done.stderr
    assert "Running" not in done.stdout
    assert not [r for r in shop.requests if r.path == "/health"]
