"""Flakiness read back from the stored runs (synth.store.flaky_history) against a real
SQLite file and a private PostgreSQL server: what an agent that restarts, or a cluster
member that takes a check over, knows of its last 24 h is exactly what the agent that ran
it counted in memory — the same runs, transient failures and causes, in the same hours."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from postgres import PostgresServer, postgres_server  # noqa: F401
from store_backends import new_url_fixture, store_fixture  # noqa: F401

from synth.alerting.flaky import FlakyTracker
from synth.model import (
    FailedAttempt,
    Failure,
    FailureType,
    Phase,
    RunResult,
    Status,
    StepResult,
)
from synth.store import Store

NOW = datetime(2026, 12, 6, 15, 20, 0, tzinfo=UTC)
LOCATION = "eu-1"
STEPS = ("log in", "pay")
TYPES = (FailureType.TIMEOUT, FailureType.HTTP_STATUS)
ENDS = "ends-failing-once"
PRE = Phase.PREPROD


def run(
    check: str,
    n: int,
    at: datetime,
    outcome: str,
    rng: random.Random,
    *,
    location: str = LOCATION,
    phase: Phase = Phase.SCHEDULED,
) -> RunResult:
    """A run that `passed`, `failed` (at a random step and type) or `retried` (passed on
    its second attempt after a failure at a random step and type)."""
    step, kind = rng.choice(STEPS), rng.choice(TYPES)
    failure = Failure(kind, f"{step} went wrong")
    failed = outcome == "failed"
    attempts = (FailedAttempt(1, failure, step, "0" * 32),) if outcome == "retried" else ()
    return RunResult(
        run_id=f"{check}-{n:05d}",
        check=check,
        service="shop",
        environment="prod",
        phase=phase,
        location=location,
        status=Status.FAILED if failed else Status.PASSED,
        started_at=at,
        duration_s=0.1,
        steps=(StepResult(step, Status.FAILED if failed else Status.PASSED, 0.1),),
        attempts=2 if outcome == "retried" else 1,
        failure=failure if failed else None,
        failed_step=step if failed else None,
        failed_attempts=attempts,
    )


def history_of(check: str, seed: int, count: int) -> list[RunResult]:
    """`count` runs over the 24 h before NOW (older ones too, which must not count):
    mostly passes, single failures, failure streaks and passes on retry."""
    rng = random.Random(seed)
    start = NOW - timedelta(hours=26)
    step = timedelta(hours=26) / count
    outcomes = rng.choices(["passed", "failed", "retried"], weights=[80, 12, 8], k=count)
    return [run(check, i, start + i * step, o, rng) for i, o in enumerate(outcomes)]


async def test_the_store_gives_back_what_the_tracker_counted(store: Store) -> None:
    runs: dict[str, list[RunResult]] = {
        "checkout": history_of("checkout", 1, 400),
        "browse": history_of("browse", 2, 250),
        "ends-failing-once": [
            *history_of("ends-failing-once", 3, 60)[:-1],
            run(
                "ends-failing-once", 99_998, NOW - timedelta(minutes=2), "passed", random.Random(0)
            ),
            run(
                "ends-failing-once", 99_999, NOW - timedelta(minutes=1), "failed", random.Random(0)
            ),
        ],
    }
    # Noise the history must not count: another location, pre-prod runs, another check.
    rng = random.Random(4)
    others = [
        run(
            "checkout",
            50_000 + i,
            NOW - timedelta(hours=1, minutes=i),
            "failed",
            rng,
            location="us-1",
        )
        for i in range(20)
    ] + [
        run(
            "checkout",
            60_000 + i,
            NOW - timedelta(hours=2, minutes=i),
            "failed",
            rng,
            phase=Phase.PREPROD,
        )
        for i in range(20)
    ]
    for results in [*runs.values(), others, history_of("not-asked", 5, 30)]:
        await store.save_runs(results)

    pairs = {(check, "prod") for check in runs}
    history = await store.flaky_history(location=LOCATION, pairs=pairs, now=NOW)

    for check, results in runs.items():
        counted = FlakyTracker(clock=lambda: NOW.timestamp())
        for result in results:
            counted_at = result.started_at.timestamp()
            counted._clock = lambda at=counted_at: at  # type: ignore[misc]
            counted.observe(result)
        counted._clock = lambda: NOW.timestamp()  # type: ignore[misc]
        expected = counted.flakiness(check, "prod")
        assert expected.runs > 0

        seeded = FlakyTracker(clock=lambda: NOW.timestamp())
        got = seeded.seed((check, "prod"), history.get((check, "prod")))
        assert (got.runs, got.transient, got.step, got.failure_type) == (
            expected.runs,
            expected.transient,
            expected.step,
            expected.failure_type,
        ), check
        # The next run continues the count the same way in both.
        follow = run(check, 99_999_9, NOW, "passed", random.Random(0))
        assert seeded.observe(follow) == counted.observe(follow), check

    assert ("not-asked", "prod") not in history
    assert history[("ends-failing-once", "prod")].pending is not None


async def test_no_runs_no_history(store: Store) -> None:
    history = await store.flaky_history(location=LOCATION, pairs={("new", "prod")}, now=NOW)
    assert history == {}
    assert FlakyTracker().seed(("new", "prod"), None).runs == 0
