""" "Caught before production" against a store seeded with real records (SQLite and a
private PostgreSQL): a failure first seen in a pre-prod run or a non-production
environment counts as caught before production in the week it was first seen, one first
seen in production counts there, a failure first seen before the period is not new, and
`environments.<name>.production` overrides the default (every environment but
`baseline.from_env`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postgres import PostgresServer, postgres_server  # noqa: F401
from store_backends import new_url_fixture, store_fixture  # noqa: F401

from synth.config import Settings
from synth.model import Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import Store
from synth.ui.caught import caught_by_week, production_test

MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_ids = iter(range(1_000_000))


def failed(
    check: str,
    env: str,
    at: datetime,
    *,
    kind: FailureType = FailureType.SCHEMA,
    phase: Phase = Phase.SCHEDULED,
    service: str = "shop",
    step: str = "get cart",
) -> RunResult:
    failure = Failure(kind, "the cart lost its total")
    return RunResult(
        run_id=f"r{next(_ids)}",
        check=check,
        service=service,
        environment=env,
        phase=phase,
        location="local",
        status=Status.FAILED,
        started_at=at,
        duration_s=0.2,
        steps=(StepResult(step, Status.FAILED, 0.2, failure=failure),),
        failure=failure,
        failed_step=step,
    )


def settings(**environments: dict[str, object]) -> Settings:
    return Settings.model_validate(
        {"baseline": {"from_env": "staging"}, "environments": {"staging": {}, "prod": {}}}
        | ({"environments": environments} if environments else {})
    )


async def test_failures_count_where_they_were_first_seen(store: Store) -> None:
    last_week, this_week = MONDAY - timedelta(days=7), MONDAY
    await store.save_runs(
        [
            # Caught in staging, then reached production anyway: still caught first.
            failed("cart", "staging", last_week + timedelta(hours=1)),
            failed("cart", "prod", last_week + timedelta(days=2)),
            # A pre-prod (pytest) run in any environment is before production.
            failed("login", "prod", this_week, kind=FailureType.AUTH, phase=Phase.PREPROD),
            # First seen in production.
            failed("search", "prod", this_week + timedelta(hours=3), kind=FailureType.TIMEOUT),
            failed("search", "staging", this_week + timedelta(hours=5), kind=FailureType.TIMEOUT),
            # Another step of the same check is another failure.
            failed("cart", "prod", this_week + timedelta(hours=2), step="pay"),
            # Seen long before the period: not new this period.
            failed("old", "prod", MONDAY - timedelta(weeks=20)),
            failed("old", "prod", this_week + timedelta(hours=1)),
            failed("pay", "prod", this_week, service="billing"),
        ]
    )
    is_production = production_test(settings())
    counts = await caught_by_week(
        store, is_production=is_production, since=MONDAY - timedelta(weeks=4)
    )
    table = {
        (c.week, c.service, c.failure_type): (c.before_production, c.in_production) for c in counts
    }
    assert table == {
        ("2026-11-23", "shop", "schema"): (1, 0),
        ("2026-11-30", "shop", "auth"): (1, 0),
        ("2026-11-30", "shop", "timeout"): (0, 1),
        ("2026-11-30", "shop", "schema"): (0, 1),
        ("2026-11-30", "billing", "schema"): (0, 1),
    }
    assert [c.week for c in counts] == sorted((c.week for c in counts), reverse=True)

    only_shop = await caught_by_week(
        store, is_production=is_production, since=MONDAY - timedelta(weeks=4), service="billing"
    )
    assert [(c.service, c.in_production) for c in only_shop] == [("billing", 1)]


def test_which_environments_are_production() -> None:
    default = production_test(settings())
    assert default("prod")
    assert not default("staging")
    assert default("unknown-env")  # not configured: not the pre-prod one, so production
    marked = production_test(settings(staging={}, prod={}, qa={"production": False}))
    assert not marked("qa")
    assert marked("prod")
