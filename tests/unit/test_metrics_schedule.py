"""Series the alert rules join on: the scheduled interval per check × env, and deploy
verdict counters that exist at 0 before the first verdict."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from synth.agent.scheduler import interval_s
from synth.checks.flow import Flow
from synth.metrics_settings import MetricsSettings
from synth.model import CheckSpec, FailureType, Schedule
from synth.outputs.metrics import Metrics


async def _noop(flow: Flow) -> None:
    """Never run: only the schedule is read."""


def spec(schedule: Schedule) -> CheckSpec:
    return CheckSpec(name="c", func=_noop, service="shop", schedule=schedule)


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_interval_of_every_and_of_cron() -> None:
    assert interval_s(spec(Schedule(every_s=15.0))) == 15.0
    assert interval_s(spec(Schedule(cron="*/5 * * * *"))) == 300.0
    assert interval_s(spec(Schedule(cron="30 3 * * *"))) == 86400.0
    assert math.isfinite(interval_s(spec(Schedule())))


def test_set_schedule_keeps_exactly_the_scheduled_pairs() -> None:
    metrics = Metrics()
    metrics.set_schedule({("checkout", "prod"): 60.0, ("browse", "prod"): 30.0}, "eu")
    metrics.set_schedule({("checkout", "prod"): 120.0}, "eu")
    assert samples(metrics, "synth_check_interval_seconds") == {
        (("check", "checkout"), ("env", "prod"), ("location", "eu")): 120.0
    }
    metrics.set_schedule({}, "eu")
    assert samples(metrics, "synth_check_interval_seconds") == {}


def test_deploy_targets_export_every_verdict_at_zero() -> None:
    metrics = Metrics()
    metrics.declare_deploy_targets([("shop", "prod")])
    assert samples(metrics, "synth_deploy_verdicts_total") == {
        (("env", "prod"), ("result", result), ("service", "shop")): 0.0
        for result in ("pass", "fail", "error")
    }


def test_flaky_ratio_exists_at_zero_for_every_scheduled_pair_and_keeps_its_value() -> None:
    """An alert on `synth_check_flaky_ratio > 0.05` needs the series before the first
    transient failure; a reload must not reset a ratio already measured."""
    metrics = Metrics()
    metrics.set_schedule({("a", "prod"): 60.0, ("b", "prod"): 60.0}, "eu")
    assert samples(metrics, "synth_check_flaky_ratio") == {
        (("check", "a"), ("env", "prod"), ("location", "eu")): 0.0,
        (("check", "b"), ("env", "prod"), ("location", "eu")): 0.0,
    }
    metrics.flakiness(("a", "prod", "eu"), 0.25)
    metrics.set_schedule({("a", "prod"): 60.0}, "eu")
    assert samples(metrics, "synth_check_flaky_ratio") == {
        (("check", "a"), ("env", "prod"), ("location", "eu")): 0.25,
    }


def test_failure_types_at_zero_only_when_asked_for() -> None:
    """By default a failure type's series appears with its first failure (10 fewer series
    per check); `metrics.detail: [failure_types]` exports them all at 0 up front."""
    lean = Metrics()
    lean.set_schedule({("a", "prod"): 60.0}, "eu")
    assert samples(lean, "synth_check_failures_total") == {}
    assert {dict(k)["result"] for k in samples(lean, "synth_check_runs_total")} == {
        "passed",
        "failed",
        "passed_after_retry",
    }
    detailed = Metrics(settings=MetricsSettings(detail=("failure_types",)))
    detailed.set_schedule({("a", "prod"): 60.0}, "eu")
    zeroed = samples(detailed, "synth_check_failures_total")
    assert {dict(k)["failure_type"] for k in zeroed} == {f.value for f in FailureType}
    assert set(zeroed.values()) == {0.0}
