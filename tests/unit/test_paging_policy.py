"""Paging defaults that hold: sensitivity presets and their precedence, the false-page
arithmetic, `failing_for` triggers, transient failures kept on the result and counted as
flakiness."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from synth.alerting.flaky import FlakyTracker
from synth.alerting.playbook import LocationState, Rule, observe
from synth.alerting.policy import (
    MONTH_S,
    PRESETS,
    false_pages,
    noisy_playbook_warnings,
    retries_for,
    rule_for,
)
from synth.baseline.record import fragments
from synth.codec import run_from_dict, run_to_dict
from synth.config import PlaybookSettings, Settings, TriggerRule
from synth.model import (
    CheckSpec,
    FailedAttempt,
    Failure,
    FailureType,
    Phase,
    RunResult,
    Schedule,
    Sensitivity,
    Status,
    StepResult,
)
from synth.outputs.report_terminal import render_run

KEY = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def _flow(flow: Any) -> None:
    return None


def spec(**fields: Any) -> CheckSpec:
    return CheckSpec(name="checkout", func=_flow, service="shop", **fields)


def settings(**playbook: Any) -> Settings:
    return Settings(
        playbooks={"oncall": PlaybookSettings(routing_key=KEY, **playbook)},  # type: ignore[arg-type]
        default_playbook="oncall",
    )


def test_default_is_medium_one_retry_two_failed_runs() -> None:
    s = Settings()
    assert retries_for(spec(), s) == 1
    rule = rule_for(settings().playbooks["oncall"], spec())
    assert (rule.consecutive, rule.resolve_after) == (2, 2)


def test_precedence_check_retries_then_check_sensitivity_then_playbook() -> None:
    s = settings(sensitivity="low", trigger={"consecutive": 5}, resolve_after=4)
    playbook = s.playbooks["oncall"]
    # The playbook's explicit trigger beats its own preset; its preset gives the retries.
    assert retries_for(spec(), s) == PRESETS[Sensitivity.LOW].retries
    assert (rule_for(playbook, spec()).consecutive, rule_for(playbook, spec()).resolve_after) == (
        5,
        4,
    )
    # A check's sensitivity beats the playbook's settings; its own retries beat everything.
    high = spec(sensitivity=Sensitivity.HIGH)
    assert retries_for(high, s) == 2
    assert rule_for(playbook, high).consecutive == 1
    assert retries_for(spec(sensitivity=Sensitivity.HIGH, retries=0), s) == 0


def test_medium_pages_falsely_less_than_once_a_month_at_5_percent_and_1_minute() -> None:
    rule = rule_for(settings().playbooks["oncall"], spec())
    monthly = false_pages(failure_rate=0.05, interval_s=60, retries=1, rule=rule, period_s=MONTH_S)
    assert monthly < 1
    old = false_pages(failure_rate=0.05, interval_s=60, retries=0, rule=rule, period_s=MONTH_S)
    assert old > 100  # the old default: retries 0, consecutive 2


def test_false_page_arithmetic_agrees_with_a_simulation() -> None:
    """The formula against the state machine itself, fed seeded random outcomes."""
    rule = Rule(consecutive=2, resolve_after=2)
    rng = random.Random(7)
    q = 0.2  # a noisy run-failure rate, so a short simulation sees many crossings
    state: LocationState | None = None
    crossings = 0
    runs = 50_000
    for i in range(runs):
        was = state.failing if state else False
        state = observe(state, "here", rng.random() < q, T0 + timedelta(seconds=i), rule)
        crossings += state.failing and not was
    expected = false_pages(failure_rate=q, interval_s=1, retries=0, rule=rule, period_s=runs)
    assert abs(crossings - expected) / expected < 0.1


def test_failing_for_needs_the_whole_window_and_two_runs() -> None:
    rule = Rule(consecutive=None, failing_for_s=120.0)
    state = None
    failing_at = []
    for second in range(0, 200, 30):
        state = observe(state, "here", True, T0 + timedelta(seconds=second), rule)
        failing_at.append((second, state.failing))
    assert next(s for s, failing in failing_at if failing) == 120
    # A pass resets the window.
    state = observe(state, "here", False, T0 + timedelta(seconds=210), rule)
    assert state.failing_since is None


def test_trigger_takes_exactly_one_rule() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        TriggerRule(consecutive=2, failing_for=60.0)
    assert TriggerRule.model_validate({"failing_for": "2m"}).failing_for == 120.0


def test_validate_warns_about_a_playbook_that_pages_on_noise() -> None:
    noisy = settings(sensitivity="high")
    checks = [spec(schedule=Schedule(every_s=10))]
    [warning] = noisy_playbook_warnings(noisy, checks)
    assert "checkout" in warning
    assert "a week" in warning
    assert noisy_playbook_warnings(settings(), [spec(schedule=Schedule(every_s=60))]) == []


def result(status: Status, *, retried: bool = False, step: str = "pay") -> RunResult:
    failure = Failure(FailureType.TIMEOUT, "timed out after 5s")
    attempts = (FailedAttempt(1, failure, step, "ab" * 16),) if retried else ()
    return RunResult(
        run_id="r",
        check="checkout",
        service="shop",
        environment="production",
        phase=Phase.SCHEDULED,
        location="here",
        status=status,
        started_at=T0,
        duration_s=0.1,
        steps=(),
        attempts=len(attempts) + 1,
        failure=failure if status is Status.FAILED else None,
        failed_step=step if status is Status.FAILED else None,
        failed_attempts=attempts,
    )


def test_a_pass_on_retry_is_not_a_clean_pass_in_any_output() -> None:
    retried = result(Status.PASSED, retried=True)
    assert retried.outcome == "passed_after_retry"
    data = run_to_dict(retried)
    assert data["outcome"] == "passed_after_retry"
    assert run_from_dict(data) == retried
    text = render_run(retried)
    assert "passed on attempt 2" in text
    assert "attempt 1 failed at step 'pay': timeout" in text


def test_flakiness_counts_retries_and_single_failures_between_passes() -> None:
    clock = [1_000_000.0]
    tracker = FlakyTracker(clock=lambda: clock[0])
    outcomes = [result(Status.PASSED)] * 90
    outcomes += [result(Status.PASSED, retried=True)] * 4
    outcomes += [result(Status.FAILED), result(Status.PASSED)]  # one isolated failure
    outcomes += [result(Status.FAILED)] * 3 + [result(Status.PASSED)]  # an outage: not noise
    for r in outcomes:
        flakiness = tracker.observe(r)
    assert (flakiness.runs, flakiness.transient) == (len(outcomes), 5)
    assert flakiness.describe("checkout") == (
        "checkout is flaky: 5% transient failures in 24 h, step 'pay', mostly timeout"
    )
    clock[0] += 86_400 + 3_600  # a day later the window is empty
    assert tracker.flakiness("checkout", "production").runs == 0


def test_the_readme_table_is_the_arithmetic() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    columns = ((0.01, 60), (0.05, 60), (0.05, 10), (0.10, 60))
    for sensitivity, preset in PRESETS.items():
        rule = Rule(consecutive=preset.trigger.consecutive, resolve_after=preset.resolve_after)
        monthly = [
            false_pages(
                failure_rate=p, interval_s=i, retries=preset.retries, rule=rule, period_s=MONTH_S
            )
            for p, i in columns
        ]
        cells = [f"{value:.2g}" for value in monthly]
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{sensitivity}`"))
        assert row.split(" | ")[2:] == [*cells[:-1], cells[-1] + " |"], row


def test_the_baseline_learns_only_from_the_passing_attempt() -> None:
    step = StepResult("pay", Status.PASSED, 0.01)
    retried = dataclasses.replace(result(Status.PASSED, retried=True), steps=(step,))
    [fragment] = fragments([retried], "v1")
    assert (fragment.runs, fragment.passed) == (1, 1)
