"""A freshly started agent (real subprocess, real /metrics) exports every counter series
whose labels it already knows at 0, so `increase()` sees the first event; and no family
has `_created` samples."""

from __future__ import annotations

from pathlib import Path

import yaml
from agent_harness import ENV, StartAgent, write_check, write_config
from prometheus_client.parser import text_string_to_metric_families

from synth.model import DeliveryResult, FailureType

# Scheduled once a day: its first run is spread uniformly over the day, so the scrape
# right after start precedes it (and the test says so if it did not).
CHECKS = """
    checks:
      - name: alpha
        service: shop
        every: 24h
        steps: [{request: {path: /health}}]
      - name: beta
        service: shop
        every: 24h
        steps: [{request: {path: /health}}]
"""
STORE_OPERATIONS = (
    "open",
    "save_run",
    "save_deploy",
    "touch_deploys",
    "list_baselines",
    "update_alert",
    "add_outbox",
    "outbox",
)


def test_every_known_counter_series_is_exported_at_zero_at_start(
    tmp_path: Path, start_agent: StartAgent
) -> None:
    write_check(tmp_path, "scheduled.yaml", CHECKS)
    config = write_config(tmp_path, "http://127.0.0.1:9")
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["location"] = "here"
    data["playbooks"] = {
        "oncall": {"routing_key": "r" * 32, "slack_webhook": "https://hooks.example/x"},
        "quiet": {"routing_key": "q" * 32},
    }
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    agent = start_agent(config)
    text = agent.get("/metrics").text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def at_zero(name: str, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        assert key in samples, f"{name}{labels} is not exported"
        assert samples[key] == 0, f"{name}{labels} = {samples[key]}"

    for result in ("ok", "error"):
        at_zero("synth_reloads_total", result=result)
    for operation in STORE_OPERATIONS:
        at_zero("synth_store_errors_total", operation=operation)
    at_zero("synth_run_process_restarts_total")
    for check in ("alpha", "beta"):
        at_zero("synth_scheduler_skipped_overlaps_total", check=check, env=ENV)
        at_zero("synth_event_loop_blocked_seconds_total", check=check)
        run = {"check": check, "env": ENV, "phase": "scheduled", "location": "here"}
        at_zero("synth_check_runs_total", **run, result="passed", failure_type="")
        for failure in FailureType:
            at_zero("synth_check_runs_total", **run, result="failed", failure_type=failure.value)
    for result in ("pass", "fail", "error"):
        at_zero("synth_deploy_verdicts_total", service="shop", env=ENV, result=result)
    for playbook, actions in (
        ("oncall", ("trigger", "resolve", "change", "slack")),
        ("quiet", ("trigger", "resolve", "change")),
    ):
        for action in actions:
            for delivery in DeliveryResult:
                at_zero("synth_pages_total", playbook=playbook, action=action, result=delivery)
    assert not [key for key in samples if key[0].endswith("_created")]
    # Every counter family has its series (none waits for an event), except the trace
    # exporter's: with tracing off there is no exporter to label them with.
    no_exporter = {"synth_telemetry_spans_dropped", "synth_telemetry_export_errors"}
    for family in text_string_to_metric_families(text):
        if family.type == "counter" and family.name.startswith("synth_"):
            if family.name in no_exporter:
                continue
            assert family.samples, f"{family.name} has no series at start"
