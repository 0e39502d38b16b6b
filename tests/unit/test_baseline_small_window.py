"""Judging latency from a deploy's (or a new agent's) first runs: each run against the
baseline's per-run limit, 2 of the newest 3 above to fail, and a regression of the
previous version that stands until the new version's window can judge it."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from synth.baseline.compare import compare, judge_latency, run_limit, unconfirmed, with_findings
from synth.baseline.record import StepBaseline
from synth.baseline.sketch import Sketch
from synth.baseline.window import RecentLatency, WindowStats
from synth.config import BaselineSettings
from synth.model import DeployContext, Phase, RunResult, Severity, Status, StepResult

SETTINGS = BaselineSettings(from_env="staging")  # defaults: 2x, +50 ms, 20-run windows


def base_of(durations: list[float]) -> StepBaseline:
    return StepBaseline("checkout", "staging", "list", "v1", latency=Sketch.of(durations))


FAST = base_of([0.001 + i * 0.00001 for i in range(100)])  # 1.0-2.0 ms


def young(*durations: float, previous: WindowStats | None = None) -> WindowStats:
    ordered = sorted(durations)
    since = len(durations) if previous is not None else 0
    return WindowStats(ordered[0], ordered[-1], len(durations), durations[-3:], previous, since)


def test_the_per_run_limit_is_the_strictest_of_p99_factor_and_min_increase() -> None:
    limit = run_limit(FAST, SETTINGS)
    assert limit is not None
    p95 = FAST.latency.quantile(0.95)
    assert p95 is not None
    assert abs(limit - (p95 + 0.05)) < 1e-9  # +50 ms dominates a 2 ms service
    slow = base_of([1.0] * 50 + [3.0])
    assert run_limit(slow, SETTINGS) == slow.latency.quantile(0.95) * 2  # 2x dominates


def test_one_run_above_is_a_warning_two_fail_a_fast_one_clears() -> None:
    assert judge_latency("list", FAST, young(0.0015), SETTINGS) is not None
    assert judge_latency("list", FAST, young(0.0015), SETTINGS)[1] is None  # type: ignore[index]
    _, first = judge_latency("list", FAST, young(0.301), SETTINGS)  # type: ignore[misc]
    assert first is not None
    assert (first.kind, first.severity) == ("latency_unconfirmed", Severity.WARN)
    assert "301 ms, above 52 ms" in first.message
    _, second = judge_latency("list", FAST, young(0.301, 0.302), SETTINGS)  # type: ignore[misc]
    assert second is not None
    assert (second.kind, second.severity) == ("latency", Severity.FAIL)
    assert second.message.startswith("step `list`: 2 of the last 2 runs above 52 ms (301 ms")
    _, cleared = judge_latency("list", FAST, young(0.301, 0.0012), SETTINGS)  # type: ignore[misc]
    assert cleared is None
    _, again = judge_latency("list", FAST, young(0.301, 0.0012, 0.299), SETTINGS)  # type: ignore[misc]
    assert again is not None
    assert again.severity is Severity.FAIL


def test_a_seventy_ms_regression_on_a_one_ms_service_is_above_the_limit() -> None:
    _, found = judge_latency("list", FAST, young(0.071, 0.072), SETTINGS)  # type: ignore[misc]
    assert found is not None
    assert found.severity is Severity.FAIL


def test_a_regression_of_the_previous_version_stands_until_the_new_window_can_judge() -> None:
    regressed = WindowStats(0.4, 0.41, 50, (0.4, 0.41, 0.4))
    window = young(0.0012, previous=regressed)
    _, scheduled = judge_latency("list", FAST, window, SETTINGS)  # type: ignore[misc]
    assert scheduled is not None
    assert scheduled.severity is Severity.FAIL
    assert "found before the latest deploy" in scheduled.message
    assert "until 20 runs since (1 so far)" in scheduled.message
    _, deploy = judge_latency("list", FAST, window, SETTINGS, deploy=True)  # type: ignore[misc]
    assert deploy is not None
    assert deploy.severity is Severity.WARN
    grown = WindowStats(0.0012, 0.0015, 20, (0.0012,) * 3, regressed)
    assert judge_latency("list", FAST, grown, SETTINGS)[1] is None  # type: ignore[index]
    # A previous window too small to have judged anything carries nothing.
    tiny = WindowStats(0.4, 0.41, 3, (0.4,) * 3)
    assert judge_latency("list", FAST, young(0.0012, previous=tiny), SETTINGS)[1] is None  # type: ignore[index]


def run(duration: float, *, deploy: str | None = None) -> RunResult:
    return RunResult(
        run_id="r",
        check="checkout",
        service="shop",
        environment="production",
        phase=Phase.DEPLOY if deploy else Phase.SCHEDULED,
        location="local",
        status=Status.PASSED,
        started_at=datetime.now(UTC),
        duration_s=duration,
        steps=(StepResult(name="list", status=Status.PASSED, duration_s=duration),),
        deploy=DeployContext(deploy, "shop", "production", deploy) if deploy else None,
    )


def judged(window: RecentLatency, result: RunResult) -> RunResult:
    window.add(result)
    comparison = compare(
        result,
        {"list": FAST},
        lambda step: window.stats(result.check, result.environment, step),
        SETTINGS,
    )
    return with_findings(result, comparison.findings)


def test_a_deploy_starts_afresh_but_does_not_clear_a_scheduled_regression() -> None:
    window = RecentLatency(50)
    for _ in range(20):
        regressed = judged(window, run(0.4))
    assert not regressed.passed
    # The deploy's own run is fast: the verification judges the new version on it.
    deployed = judged(window, run(0.0012, deploy="v5"))
    assert deployed.passed
    assert [f.severity for f in deployed.findings] == [Severity.WARN]
    # Scheduled runs of the new version: the regression stands until 20 runs say otherwise.
    for n in range(2, 20):
        assert not judged(window, run(0.0012)).passed, n
    assert judged(window, run(0.0012)).passed


def test_frequent_deploys_do_not_keep_an_old_regression_standing_for_ever() -> None:
    """Deploys every few runs never fill a window; the regression stands until 20 runs of
    newer versions, then it is gone even though no window of them reached 20."""
    window = RecentLatency(50)
    for _ in range(20):
        judged(window, run(0.4))
    outcomes = []
    for version in range(5):
        outcomes.append(judged(window, run(0.0012, deploy=f"v{version}")).passed)  # deploy run
        outcomes.extend(judged(window, run(0.0012)).passed for _ in range(4))
    # 25 fast runs: the first 19 still carry the regression (scheduled ones fail), then not.
    scheduled = [passed for i, passed in enumerate(outcomes) if i % 5 != 0]
    assert scheduled[:15] == [False] * 15
    assert scheduled[-4:] == [True] * 4
    assert all(outcomes[i] for i in range(0, 25, 5))  # deploy runs: a warning, not a failure


def test_unconfirmed_asks_for_another_run_only_of_a_passed_run() -> None:
    window = RecentLatency(50)
    first = judged(window, run(0.3, deploy="v2"))
    assert first.passed
    assert unconfirmed(first)
    second = judged(window, run(0.3, deploy="v2"))
    assert not second.passed
    assert not unconfirmed(second)
    assert second.failure is not None
    assert "2 of the last 2 runs" in second.failure.message


def test_false_failures_under_an_unchanged_service_stay_below_the_bound() -> None:
    """With the limit at the baseline's p99 alone (no factor, no minimum increase), a run is
    above with p ≈ 1 %; windows of the first runs then fail at ≈ 3p² = 3·10⁻⁴."""
    rng = random.Random(21)
    draw = lambda: rng.lognormvariate(-6.5, 0.4)  # noqa: E731 (~1.5 ms, a real spread)
    base = base_of([draw() for _ in range(5000)])
    strict = BaselineSettings(from_env="staging", latency_factor=1.0001, min_increase=0)
    limit = run_limit(base, strict)
    assert limit is not None
    above = sum(draw() > limit for _ in range(20_000)) / 20_000
    assert 0.005 < above < 0.02  # the limit is the p99
    failures = 0
    windows = 15_000
    for _ in range(windows):
        durations = [draw() for _ in range(3)]
        for n in range(1, 4):
            _, finding = judge_latency("list", base, young(*durations[:n]), strict)  # type: ignore[misc]
            if finding is not None and finding.severity is Severity.FAIL:
                failures += 1
                break
    rate = failures / windows
    assert rate < 3 * above**2 * 2  # within 2x of the binomial bound
    assert rate < 1e-3
