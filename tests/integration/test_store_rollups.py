"""The pages' rollups in the store (synth.store.rollups), on a real SQLite file and a private
PostgreSQL server: hourly counts and each pair's newest run follow the runs saved (scheduled
and deploy runs only, a run saved twice counted once, out-of-order batches), retention
deletes old hours, and a schema-version-8 database is backfilled by the migration."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from postgres import PostgresServer, postgres_server  # noqa: F401
from sqlalchemy.ext.asyncio import create_async_engine
from store_backends import new_url_fixture, store_fixture  # noqa: F401

from synth.codec import run_to_dict
from synth.model import Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import Store
from synth.store import rollups as rollups_module
from synth.store.migrations import MIGRATIONS
from synth.store.rows import run_row
from synth.store.schema import run_hours, runs, schema_version

NOW = datetime(2026, 3, 14, 12, 30, 0, tzinfo=UTC)


def make_run(
    run_id: str,
    *,
    status: Status = Status.PASSED,
    started_at: datetime = NOW,
    phase: Phase = Phase.SCHEDULED,
    check: str = "checkout",
    location: str = "eu-west",
) -> RunResult:
    failure = (
        Failure(FailureType.HTTP_STATUS, "GET /cart answered 503, expected 200")
        if status is Status.FAILED
        else None
    )
    return RunResult(
        run_id=run_id,
        check=check,
        service="shop",
        environment="prod",
        phase=phase,
        location=location,
        status=status,
        started_at=started_at,
        duration_s=0.5,
        steps=(StepResult("get cart", status, 0.5, failure=failure),),
        failure=failure,
        failed_step="get cart" if failure else None,
    )


async def read(store: Store) -> tuple[list[rollups_module.Uptime], list[rollups_module.Latest]]:
    async with store.reading("test") as connection:
        uptimes = await rollups_module.uptimes(connection, checks=["checkout"], now=NOW)
        latest = await rollups_module.latest(connection, checks=None)
    return uptimes, latest


async def test_counts_and_newest_run_follow_the_runs_saved(store: Store) -> None:
    await store.save_runs(
        [
            make_run("a", started_at=NOW - timedelta(days=3), status=Status.FAILED),
            make_run("b", started_at=NOW - timedelta(hours=2)),
            make_run("c", started_at=NOW - timedelta(minutes=5), status=Status.FAILED),
            make_run("d", started_at=NOW - timedelta(minutes=1)),
            # Neither pre-prod nor ad-hoc runs count toward production uptime.
            make_run("pre", phase=Phase.PREPROD, status=Status.FAILED),
            make_run("adhoc", phase=Phase.ADHOC, status=Status.FAILED),
        ]
    )
    # Saved again (a replay after a crash): counted once.
    await store.save_runs([make_run("d", started_at=NOW - timedelta(minutes=1))])
    # An older run arriving after the newer one does not become the newest.
    await store.save_runs([make_run("late", started_at=NOW - timedelta(minutes=3))])

    (uptime,), (latest,) = await read(store)
    assert (uptime.passed_24h, uptime.failed_24h) == (3, 1)
    assert (uptime.passed_7d, uptime.failed_7d) == (3, 2)
    assert uptime.uptime_24h == 0.75
    assert uptime.last_failed_at == NOW - timedelta(minutes=5)
    assert latest.run_id == "d"
    assert latest.status is Status.PASSED
    assert latest.last_failed_at == NOW - timedelta(minutes=5)

    await store.save_runs([make_run("e", status=Status.FAILED)])
    _, (latest,) = await read(store)
    assert (latest.run_id, latest.status, latest.failure_type) == (
        "e",
        Status.FAILED,
        "http_status",
    )
    assert latest.last_failed_at == NOW


async def test_retention_deletes_the_hours_of_deleted_runs(store: Store) -> None:
    old = NOW - timedelta(days=40)
    await store.save_runs([make_run("old", started_at=old), make_run("new")])
    await store.prune(now=NOW)
    async with store.reading("test") as connection:
        hours = (await connection.execute(sa.text("SELECT hour FROM run_hours"))).all()
    assert len(hours) == 1


async def test_a_version_8_database_is_backfilled(new_url: Callable[[], str]) -> None:
    url = new_url()
    before = [
        make_run("v8-old", started_at=NOW - timedelta(hours=30), status=Status.FAILED),
        make_run("v8-mid", started_at=NOW - timedelta(hours=1, minutes=10)),
        make_run("v8-new", started_at=NOW - timedelta(minutes=10)),
        make_run("v8-other", started_at=NOW - timedelta(minutes=20), location="us-east"),
        make_run("v8-pre", phase=Phase.PREPROD, status=Status.FAILED),
    ]
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(schema_version.create)
            for version, step in enumerate(MIGRATIONS[:8], start=1):
                await connection.run_sync(step)
                await connection.execute(
                    sa.insert(schema_version).values(version=version, applied_at=NOW)
                )
            for run in before:
                await connection.execute(
                    sa.insert(runs).values({**run_row(run), "result": run_to_dict(run)})
                )
    finally:
        await engine.dispose()

    store = await Store.open(url)
    try:
        async with store.reading("test") as connection:
            uptimes = await rollups_module.uptimes(connection, checks=["checkout"], now=NOW)
            latest = await rollups_module.latest(connection, checks=["checkout"])
    finally:
        await store.close()
    by_location = {u.location: u for u in uptimes}
    assert (by_location["eu-west"].passed_24h, by_location["eu-west"].failed_24h) == (2, 0)
    assert (by_location["eu-west"].passed_7d, by_location["eu-west"].failed_7d) == (2, 1)
    assert by_location["eu-west"].last_failed_at == NOW - timedelta(hours=30)
    assert (by_location["us-east"].passed_24h, by_location["us-east"].failed_7d) == (1, 0)
    newest = {item.location: item for item in latest}
    assert newest["eu-west"].run_id == "v8-new"
    assert newest["eu-west"].last_failed_at == NOW - timedelta(hours=30)
    assert newest["us-east"].run_id == "v8-other"


async def test_hours_are_utc_hours_whatever_the_database_time_zone(
    new_url: Callable[[], str],
) -> None:
    url = new_url()
    if url.startswith("postgresql"):
        # India is 5:30 ahead: truncating in the session's zone would start hours at :30.
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                name = await connection.scalar(sa.text("SELECT current_database()"))
                await connection.execute(
                    sa.text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Kolkata'")
                )
        finally:
            await engine.dispose()
    store = await Store.open(url)
    try:
        await store.save_runs([make_run("tz", started_at=NOW)])  # 12:30 UTC
        async with store.reading("test") as connection:
            hours = (await connection.execute(sa.select(run_hours.c.hour))).scalars().all()
            if url.startswith("postgresql"):
                zone = await connection.scalar(sa.text("SHOW timezone"))
                assert zone == "Asia/Kolkata"
    finally:
        await store.close()
    assert hours == [NOW.replace(minute=0)]
