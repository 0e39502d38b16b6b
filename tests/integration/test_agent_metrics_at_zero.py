"""A freshly started agent (real subprocess, real /metrics) exports the counter series
alerts need at 0, so `increase()` sees the first event; the rare per-check ones (failure
types, skipped overlaps, a blocked loop, folded step names) wait for their event, which
keeps a check's series few; and no family has `_created` samples."""

from __future__ import annotations

from pathlib import Path

import yaml
from agent_harness import ENV, StartAgent, write_check, write_config
from prometheus_client.parser import text_string_to_metric_families

from synth.model import DeliveryResult

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
        run = {"check": check, "env": ENV, "phase": "scheduled", "location": "here"}
        for result in ("passed", "failed", "passed_after_retry"):
            at_zero("synth_check_runs_total", **run, result=result)
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
    # exporter's (with tracing off there is no exporter to label them with) and the rare
    # per-check ones, which appear with their first event.
    no_exporter = {"synth_telemetry_spans_dropped", "synth_telemetry_export_errors"}
    on_first_event = {
        "synth_check_failures",
        "synth_scheduler_skipped_overlaps",
        "synth_event_loop_blocked_seconds",
        "synth_check_steps_folded",
    }
    for family in text_string_to_metric_families(text):
        if family.type == "counter" and family.name.startswith("synth_"):
            if family.name in no_exporter:
                continue
            if family.name in on_first_event:
                assert family.samples == [], f"{family.name} has series before any event"
                continue
            assert family.samples, f"{family.name} has no series at start"
