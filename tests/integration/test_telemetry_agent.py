"""The agent's telemetry, `synth agent` as a real subprocess against the demo shop: traces
to a real OTLP receiver, OpenMetrics with exemplars naming those traces, JSON logs with
trace and span ids, and a collector that hangs costing the checks nothing but dropped,
counted spans."""

from __future__ import annotations

import itertools
import json
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent_harness import (
    StartAgent,
    wait_for,
    write_check,
    write_config,
)
from otlp_receiver import OtlpHttpReceiver, otel_env
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from synth.demo import ShopThread

CHECKS = """
    import logging

    import synth

    log = logging.getLogger("checks.tick")

    @synth.check(service="shop", every="1s", timeout="5s", retries=0)
    async def tick(flow):
        async with flow.step("health"):
            log.warning("probing health")
            (await flow.get("/health")).expect_status(200)

    @synth.check(service="shop", every="1s", timeout="5s", retries=0)
    async def broken(flow):
        async with flow.step("missing page"):
            (await flow.get("/no-such-page")).expect_status(200)
"""

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def exemplars(text: str, name: str) -> list[dict[str, str]]:
    """Exemplar labels of every sample `name` in an OpenMetrics exposition."""
    return [
        dict(sample.exemplar.labels)
        for family in openmetrics_families(text)
        for sample in family.samples
        if sample.name == name and sample.exemplar is not None
    ]


def test_traces_exemplars_and_logs(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    receiver = otlp_http()
    write_check(tmp_path, "checks.py", CHECKS)
    # The step and phase histograms are opt-in; their exemplars are tested here too.
    detail = {"metrics": {"detail": ["phases", "steps"]}}
    config = write_config(tmp_path, shop.base_url, extra=detail)
    agent = start_agent(config, env=otel_env(receiver.endpoint))

    spans = receiver.wait_for(
        lambda s: {"tick", "broken"} <= {x.name for x in s if x.parent_span_id == ""}
    )
    roots = [s for s in spans if s.parent_span_id == ""]
    assert {r.attributes["synth.phase"] for r in roots} == {"scheduled"}
    assert {r.resource["service.name"] for r in roots} == {"synth"}

    # OpenMetrics when asked, with exemplars naming exported traces.
    def scraped() -> str | None:
        response = agent.http.get("/metrics", headers={"Accept": OPENMETRICS})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        text = response.text
        return text if exemplars(text, "synth_http_phase_duration_seconds_bucket") else None

    text = wait_for(scraped, timeout=10, what="exemplars on /metrics")
    assert text.rstrip().endswith("# EOF")
    for name in (
        "synth_check_run_duration_seconds_bucket",
        "synth_step_duration_seconds_bucket",
        "synth_http_phase_duration_seconds_bucket",
    ):
        found = exemplars(text, name)
        assert found, f"no exemplar on {name}"
        assert all(set(e) == {"trace_id"} and len(e["trace_id"]) == 32 for e in found)
    run_traces = {e["trace_id"] for e in exemplars(text, "synth_check_run_duration_seconds_bucket")}
    receiver.wait_for(lambda s: run_traces <= {x.trace_id for x in s})
    assert "synth_agent_info" in text
    assert "process_cpu_seconds_total" in text

    # Plain text for everyone else: no exemplars there.
    plain = agent.http.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain")
    assert " # {" not in plain.text
    assert "synth_http_phase_duration_seconds_bucket{" in plain.text

    # Logs: one JSON event per line; those made during a run name its span.
    lines = [line for line in agent.stderr().splitlines() if line.strip()]
    events = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(events) == len(lines), "every stderr line is one JSON event"
    probing = [e for e in events if e["msg"] == "probing health"]
    assert probing
    event = probing[0]

    def logged_span_exported() -> bool:
        return any(
            (s.trace_id, s.span_id) == (event["trace_id"], event["span_id"]) for s in receiver.spans
        )

    wait_for(logged_span_exported, timeout=10, what="the logged span among the exported ones")
    logged = next(s for s in receiver.spans if s.span_id == event["span_id"])
    assert logged.name == "health"
    assert logged.attributes["synth.step"] == "health"
    failed = [
        e
        for e in events
        if e["msg"].startswith("check broken failed") and e.get("check") == "broken"
    ]
    assert failed
    assert failed[0]["level"] == "warning"
    assert failed[0]["failure_type"] == "http_status"
    assert failed[0]["step"] == "missing page"
    receiver.wait_for(
        lambda s: any(x.trace_id == failed[0]["trace_id"] and x.name == "broken" for x in s)
    )


def started(run: dict[str, object]) -> float:
    return datetime.fromisoformat(str(run["started_at"])).timestamp()


def test_hanging_collector_costs_checks_nothing(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    hanging = otlp_http("hang")
    write_check(tmp_path, "checks.py", CHECKS)
    env = otel_env(
        hanging.endpoint,
        OTEL_EXPORTER_OTLP_TIMEOUT="300",
        OTEL_BSP_MAX_QUEUE_SIZE="4",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="2",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    agent = start_agent(write_config(tmp_path, shop.base_url), env=env)
    assert agent.metric("synth_telemetry_spans_dropped_total", exporter="otlp_http") == 0

    time.sleep(4.5)
    runs = agent.runs(check="tick")
    assert len(runs) >= 3
    starts = sorted(started(r) for r in runs)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert 0.8 <= statistics.median(gaps) <= 1.2, gaps
    assert max(float(str(r["duration_s"])) for r in runs) < 0.5, runs
    assert {r["status"] for r in runs} == {"passed"}

    dropped = agent.metric("synth_telemetry_spans_dropped_total", exporter="otlp_http")
    errors = agent.metric("synth_telemetry_export_errors_total", exporter="otlp_http")
    assert dropped is not None
    assert dropped >= 6
    assert errors is not None
    assert errors >= 1
    assert hanging.exports == 0  # nothing ever got through
    lag_sum = agent.metric("synth_scheduler_lag_seconds_sum")
    lag_count = agent.metric("synth_scheduler_lag_seconds_count")
    assert lag_sum is not None
    assert lag_count
    assert lag_sum / lag_count < 0.2

    # A graceful stop is bounded even with exports hanging.
    began = time.monotonic()
    code, killed = agent.stop()
    assert (code, killed) == (0, False)
    assert time.monotonic() - began < 10
    # One warning that export fails, not one per batch.
    warnings = [e for e in agent.logs() if e["msg"].startswith("trace export failing")]
    assert len(warnings) == 1
    exporter_lines = [e for e in agent.logs() if e["logger"].startswith("opentelemetry")]
    assert len(exporter_lines) <= 2, exporter_lines
