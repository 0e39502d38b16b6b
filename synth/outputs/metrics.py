"""Every metric synth exports, defined in one place.

Names follow Prometheus conventions (`synth_<noun>_<unit>`); labels are bounded — check,
env, phase, location, step, result, failure_type (plus service for deploy verdicts) —
never URLs, ids or free text.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from synth.model import RunResult

RUN_LABELS = ("check", "env", "phase", "location")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """The metric families of one synth process, on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.runs = Counter(
            "synth_check_runs",
            "Check runs by result and failure type.",
            (*RUN_LABELS, "result", "failure_type"),
            registry=r,
        )
        self.run_duration = Histogram(
            "synth_check_run_duration_seconds",
            "Wall time of a whole check run (all attempts' last).",
            RUN_LABELS,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.step_duration = Histogram(
            "synth_step_duration_seconds",
            "Wall time of one step of a check.",
            (*RUN_LABELS, "step"),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.up = Gauge(
            "synth_check_up",
            "1 if the last run of the check passed, 0 if it failed.",
            RUN_LABELS,
            registry=r,
        )
        self.last_run = Gauge(
            "synth_check_last_run_timestamp_seconds",
            "Unix time the last run of the check started.",
            RUN_LABELS,
            registry=r,
        )
        self.consecutive_failures = Gauge(
            "synth_check_consecutive_failures",
            "Failed runs in a row (0 after a pass).",
            RUN_LABELS,
            registry=r,
        )
        self.deploy_verdicts = Counter(
            "synth_deploy_verdicts",
            "Deploy verifications by verdict.",
            ("service", "env", "result"),
            registry=r,
        )
        self.schedule_lag = Histogram(
            "synth_scheduler_lag_seconds",
            "Actual start of a scheduled run minus its due time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("synth_runs_in_flight", "Check runs executing now.", registry=r)
        self.skipped_overlaps = Counter(
            "synth_scheduler_skipped_overlaps",
            "Scheduled runs skipped because the previous run of the check was still going.",
            ("check", "env"),
            registry=r,
        )
        self.store_errors = Counter(
            "synth_store_errors",
            "Store operations that failed (they are retried).",
            ("operation",),
            registry=r,
        )
        self.loop_blocked = Counter(
            "synth_event_loop_blocked_seconds",
            "Time the agent's event loop was blocked, by the check found running.",
            ("check",),
            registry=r,
        )
        self.checks_loaded = Gauge("synth_checks_loaded", "Checks in the active set.", registry=r)
        self.reloads = Counter(
            "synth_reloads", "Reloads of config and checks by result.", ("result",), registry=r
        )
        self.pages = Counter(
            "synth_pages",
            "Alert delivery attempts by playbook, action (trigger, resolve, change, slack) "
            "and result (sent, retry, rejected).",
            ("playbook", "action", "result"),
            registry=r,
        )
        self.outbox_depth = Gauge(
            "synth_outbox_depth", "Alerts stored and not yet delivered.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "synth_outbox_oldest_age_seconds",
            "Age of the oldest undelivered alert (0 when none waits).",
            registry=r,
        )
        self.incidents_open = Gauge(
            "synth_incidents_open",
            "Incidents synth has triggered and not yet resolved, by playbook.",
            ("playbook",),
            registry=r,
        )

    def observe_run(self, result: RunResult) -> None:
        """Record one finished run."""
        labels = (result.check, result.environment, result.phase.value, result.location)
        failure = result.failure_type.value if result.failure_type else ""
        self.runs.labels(*labels, result.status.value, failure).inc()
        self.run_duration.labels(*labels).observe(result.duration_s)
        for step in result.steps:
            self.step_duration.labels(*labels, step.name).observe(step.duration_s)
        self.up.labels(*labels).set(1 if result.passed else 0)
        self.last_run.labels(*labels).set(result.started_at.timestamp())
        failures = self.consecutive_failures.labels(*labels)
        if result.passed:
            failures.set(0)
        else:
            failures.inc()

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
