"""The store against real databases: a SQLite file and a private PostgreSQL server, with the
same test bodies for both."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from postgres import PostgresServer, free_port, postgres_server  # noqa: F401
from sqlalchemy.ext.asyncio import create_async_engine

from synth.model import (
    DeployContext,
    Failure,
    FailureType,
    HttpTimings,
    Phase,
    RequestRecord,
    RunResult,
    Status,
    StepResult,
)
from synth.store import (
    DeployRecord,
    DeployStatus,
    IdempotencyKeyConflict,
    RunSummary,
    Store,
    StoreError,
    StoreRefused,
)
from synth.store.migrations import LATEST_VERSION
from synth.store.schema import metadata

NOW = datetime(2025, 3, 14, 12, 0, 0, 123456, tzinfo=UTC)
# Generous next to the ~5 s connect timeout, tight next to a hang.
FAST_S = 8.0


@dataclass
class Backend:
    name: str
    new_url: Callable[[], str]
    unreachable_url: str


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        names = itertools.count(1)
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        return Backend(
            "sqlite",
            lambda: f"sqlite+aiosqlite:///{tmp_path}/store-{next(names)}.db",
            f"sqlite+aiosqlite:///{blocker}/store.db",
        )
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend(
        "postgresql",
        server.create_database,
        f"postgresql+asyncpg://synth:s3cret-pw@127.0.0.1:{free_port()}/synth",
    )


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await Store.open(backend.new_url())
    yield opened
    await opened.close()


def make_run(
    run_id: str,
    *,
    check: str = "checkout",
    env: str = "prod",
    phase: Phase = Phase.SCHEDULED,
    started_at: datetime = NOW,
    deploy_id: str | None = None,
    failed: bool = False,
) -> RunResult:
    login = StepResult(
        name="login",
        status=Status.PASSED,
        duration_s=0.125,
        started_offset_s=0.0,
        requests=(
            RequestRecord(
                method="POST",
                url="https://shop.example/api/login",
                status_code=200,
                timings=HttpTimings(
                    dns_s=0.001, connect_s=0.002, tls_s=0.01, first_byte_s=0.05, total_s=0.1
                ),
                bytes_received=321,
                trace_id="0af7651916cd43dd8448eb211c80319c",
                span_id="b7ad6b7169203331",
            ),
        ),
        details={"user": "demo", "items": [1, 2.5, "x"], "nested": {"ok": True}},
    )
    failure = Failure(
        type=FailureType.HTTP_STATUS,
        message="POST /api/cart returned 503, expected 200",
        expected="200",
        actual="503",
        method="POST",
        url="https://shop.example/api/cart",
        response_excerpt='{"error": "unavailable"}',
    )
    cart = StepResult(
        name="add to cart",
        status=Status.FAILED if failed else Status.PASSED,
        duration_s=0.5,
        started_offset_s=0.125,
        requests=(
            RequestRecord(
                method="POST",
                url="https://shop.example/api/cart",
                status_code=503 if failed else 200,
                timings=HttpTimings(send_s=0.001, first_byte_s=0.4, body_s=0.01, total_s=0.45),
                body_truncated=True,
            ),
            RequestRecord(
                method="GET",
                url="https://shop.example/api/cart",
                status_code=None,
                timings=HttpTimings(total_s=0.0),
            ),
        ),
        failure=failure if failed else None,
    )
    deploy = (
        DeployContext(deploy_id, "shop", env, "1.2.3", commit="abc123")
        if deploy_id is not None
        else None
    )
    return RunResult(
        run_id=run_id,
        check=check,
        service="shop",
        environment=env,
        phase=phase,
        location="eu-west",
        status=Status.FAILED if failed else Status.PASSED,
        started_at=started_at,
        duration_s=0.625,
        steps=(login, cart),
        attempts=2 if failed else 1,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        failure=failure if failed else None,
        failed_step="add to cart" if failed else None,
        deploy=deploy,
        tags=("critical", "checkout"),
    )


def make_deploy(deploy_id: str, **changes: object) -> DeployRecord:
    record = DeployRecord(
        id=deploy_id,
        service="shop",
        environment="prod",
        version="1.2.3",
        created_at=NOW,
        updated_at=NOW,
        idempotency_key=f"key-{deploy_id}",
        commit="abc123",
        url="https://ci.example/deploys/42",
        labels={"team": "payments", "region": "eu"},
        tags=("canary",),
    )
    return replace(record, **changes)  # type: ignore[arg-type]


async def ids(store: Store, **filters: object) -> list[str]:
    return [s.run_id for s in await store.list_runs(**filters)]  # type: ignore[arg-type]


# -- runs ------------------------------------------------------------------------------------


async def test_run_round_trip(store: Store) -> None:
    passed = make_run("run-1", deploy_id="dep-1")
    failed = make_run("run-2", failed=True)
    await store.save_run(passed)
    await store.save_run(failed)

    assert await store.get_run("run-1") == passed
    assert await store.get_run("run-2") == failed
    assert await store.get_run("no-such-run") is None


async def test_summary_carries_the_indexed_columns(store: Store) -> None:
    await store.save_run(make_run("run-1", failed=True, deploy_id="dep-9", phase=Phase.DEPLOY))

    [summary] = await store.list_runs()

    assert summary == RunSummary(
        run_id="run-1",
        check="checkout",
        service="shop",
        environment="prod",
        phase=Phase.DEPLOY,
        location="eu-west",
        status=Status.FAILED,
        failure_type=FailureType.HTTP_STATUS,
        failed_step="add to cart",
        started_at=NOW,
        duration_s=0.625,
        attempts=2,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        deploy_id="dep-9",
    )


async def test_datetimes_come_back_as_aware_utc(store: Store) -> None:
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    await store.save_run(make_run("run-1", started_at=plus_two))

    got = await store.get_run("run-1")
    [summary] = await store.list_runs()

    assert got is not None
    assert got.started_at == NOW
    assert summary.started_at == NOW
    assert summary.started_at.utcoffset() == timedelta(0)


async def test_list_filters_and_newest_first(store: Store) -> None:
    runs = [
        make_run("a", check="checkout", env="prod", started_at=NOW - timedelta(minutes=5)),
        make_run("b", check="checkout", env="prod", started_at=NOW - timedelta(minutes=1)),
        make_run("c", check="checkout", env="staging", started_at=NOW - timedelta(minutes=3)),
        make_run("d", check="login", env="prod", started_at=NOW - timedelta(minutes=2)),
        make_run(
            "e", env="prod", phase=Phase.DEPLOY, deploy_id="dep-1", started_at=NOW - timedelta(4)
        ),
        make_run("f", env="prod", phase=Phase.DEPLOY, deploy_id="dep-2", started_at=NOW),
    ]
    for run in runs:
        await store.save_run(run)

    assert await ids(store) == ["f", "b", "d", "c", "a", "e"]
    assert await ids(store, check="checkout", env="prod") == ["f", "b", "a", "e"]
    assert await ids(store, env="staging") == ["c"]
    assert await ids(store, check="login") == ["d"]
    assert await ids(store, phase=Phase.DEPLOY) == ["f", "e"]
    assert await ids(store, deploy_id="dep-1") == ["e"]
    assert await ids(store, check="nothing") == []
    assert await ids(store, limit=2) == ["f", "b"]
    assert await ids(store, before=NOW - timedelta(minutes=1), limit=2) == ["d", "c"]


async def test_list_rejects_a_limit_out_of_range(store: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        await store.list_runs(limit=0)
    with pytest.raises(ValueError, match="limit"):
        await store.list_runs(limit=100_000)


async def test_save_run_is_idempotent(store: Store) -> None:
    run = make_run("run-1", failed=True)

    await store.save_run(run)
    await store.save_run(run)

    assert await ids(store) == ["run-1"]
    assert await store.get_run("run-1") == run


async def test_concurrent_saves_all_land(store: Store) -> None:
    runs = [make_run(f"run-{i:02d}", started_at=NOW + timedelta(seconds=i)) for i in range(50)]

    await asyncio.wait_for(asyncio.gather(*(store.save_run(r) for r in runs)), timeout=60)

    assert await ids(store, limit=100) == [r.run_id for r in reversed(runs)]


# -- deploys ---------------------------------------------------------------------------------


async def test_deploy_insert_update_and_find(store: Store) -> None:
    deploy = make_deploy("dep-1")

    assert await store.save_deploy(deploy) == deploy
    assert await store.get_deploy("dep-1") == deploy

    later = NOW + timedelta(minutes=2)
    verdict = {"verdict": "failed", "reasons": ["checkout failed"], "score": 0.5, "none": None}
    finished = replace(
        deploy,
        status=DeployStatus.FAILED,
        verdict=verdict,
        updated_at=later,
        finished_at=later,
        run_ids=("run-1", "run-2"),
        labels={"team": "payments"},
    )
    assert await store.save_deploy(finished) == finished
    assert await store.get_deploy("dep-1") == finished
    assert await store.find_deploy_by_idempotency_key("key-dep-1") == finished
    assert await store.find_deploy_by_idempotency_key("key-unknown") is None
    assert await store.get_deploy("dep-unknown") is None


async def test_idempotency_key_is_unique(store: Store) -> None:
    await store.save_deploy(make_deploy("dep-1", idempotency_key="same"))

    with pytest.raises(IdempotencyKeyConflict, match="dep-2") as caught:
        await store.save_deploy(make_deploy("dep-2", idempotency_key="same"))
    assert isinstance(caught.value, StoreError)

    # Deploys without a key never conflict, and the store goes on working after a conflict.
    await store.save_deploy(make_deploy("dep-3", idempotency_key=None))
    await store.save_deploy(make_deploy("dep-4", idempotency_key=None))
    assert await store.get_deploy("dep-2") is None
    found = await store.find_deploy_by_idempotency_key("same")
    assert found is not None
    assert found.id == "dep-1"


@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "nul \x00 inside"])
async def test_text_a_database_cannot_keep_is_refused_as_such(
    store: Store, backend: Backend, text: str
) -> None:
    """A lone surrogate (either database) or NUL (PostgreSQL) is StoreRefused, a StoreError
    saying the data was refused, never a raw driver error; the store goes on working."""
    deploy = make_deploy("dep-1", idempotency_key="key-1")
    deploy = replace(deploy, version=text)
    if backend.name == "sqlite" and "\x00" in text:
        await store.save_deploy(deploy)  # SQLite keeps NUL in text
        stored = await store.get_deploy("dep-1")
        assert stored is not None
        assert stored.version == text
        return
    with pytest.raises(StoreRefused, match="refused the data") as caught:
        await store.save_deploy(deploy)
    assert isinstance(caught.value, StoreError)
    assert await store.get_deploy("dep-1") is None
    clean = replace(deploy, version="clean")
    assert await store.save_deploy(clean) == clean


async def test_touch_refreshes_only_unfinished_deploys(store: Store) -> None:
    await store.save_deploy(make_deploy("running", status=DeployStatus.RUNNING))
    done = make_deploy("done", status=DeployStatus.PASSED, finished_at=NOW)
    await store.save_deploy(done)
    later = NOW + timedelta(seconds=30)

    await store.touch_deploys(["running", "done", "unknown"], later)
    await store.touch_deploys([], later)

    touched = await store.get_deploy("running")
    assert touched is not None
    assert (touched.updated_at, touched.status) == (later, DeployStatus.RUNNING)
    assert await store.get_deploy("done") == done


async def test_deploy_datetimes_are_normalised_to_utc(store: Store) -> None:
    naive = NOW.replace(tzinfo=None)
    stored = await store.save_deploy(make_deploy("dep-1", created_at=naive, updated_at=naive))

    assert stored.created_at == NOW
    assert stored.created_at.tzinfo is not None


# -- retention -------------------------------------------------------------------------------


async def test_prune_by_age(backend: Backend) -> None:
    store = await Store.open(backend.new_url(), max_age_s=3600)
    try:
        await store.save_run(make_run("old", started_at=NOW - timedelta(hours=2)))
        await store.save_run(make_run("edge", started_at=NOW - timedelta(minutes=59)))
        await store.save_run(make_run("new", started_at=NOW))
        await store.save_deploy(make_deploy("dep-old", created_at=NOW - timedelta(days=2)))
        await store.save_deploy(make_deploy("dep-new"))

        assert await store.prune(now=NOW) == 2

        assert await ids(store) == ["new", "edge"]
        assert await store.get_deploy("dep-old") is None
        assert await store.get_deploy("dep-new") is not None
        assert await store.prune(now=NOW) == 0
    finally:
        await store.close()


async def test_prune_keeps_the_newest_runs_per_check_and_environment(backend: Backend) -> None:
    store = await Store.open(backend.new_url(), max_runs_per_check=3)
    try:
        for i in range(5):
            at = NOW - timedelta(minutes=i)
            await store.save_run(make_run(f"prod-{i}", env="prod", started_at=at))
            await store.save_run(make_run(f"stg-{i}", env="staging", started_at=at))
        await store.save_run(make_run("login-0", check="login"))
        # Two runs at the same moment straddle the limit: the run_id breaks the tie.
        tied = NOW - timedelta(hours=1)
        for run_id in ("tie-a", "tie-b", "tie-c", "tie-d"):
            await store.save_run(make_run(run_id, check="tied", started_at=tied))

        assert await store.prune(now=NOW) == 2 + 2 + 1

        assert await ids(store, env="prod", check="checkout") == ["prod-0", "prod-1", "prod-2"]
        assert await ids(store, env="staging") == ["stg-0", "stg-1", "stg-2"]
        assert await ids(store, check="login") == ["login-0"]
        assert await ids(store, check="tied") == ["tie-d", "tie-c", "tie-b"]
    finally:
        await store.close()


async def test_prune_deletes_in_batches(backend: Backend) -> None:
    store = await Store.open(backend.new_url(), max_age_s=60, prune_batch_size=7)
    try:
        for i in range(30):
            await store.save_run(
                make_run(f"old-{i}", started_at=NOW - timedelta(hours=1, seconds=i))
            )
        await store.save_run(make_run("new", started_at=NOW))

        assert await store.prune(now=NOW) == 30
        assert await ids(store, limit=100) == ["new"]
    finally:
        await store.close()


# -- schema and migrations ----------------------------------------------------------------------


async def versions(url: str) -> list[int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.text("SELECT version FROM schema_version"))
            return sorted(row[0] for row in result)
    finally:
        await engine.dispose()


async def test_reopening_keeps_data_and_migrates_once(backend: Backend) -> None:
    url = backend.new_url()
    first = await Store.open(url)
    await first.save_run(make_run("run-1"))
    await first.close()

    second = await Store.open(url)
    try:
        assert await ids(second) == ["run-1"]
    finally:
        await second.close()
    assert await versions(url) == list(range(1, LATEST_VERSION + 1))


async def test_migrated_schema_matches_the_table_definitions(backend: Backend) -> None:
    url = backend.new_url()
    await (await Store.open(url)).close()

    def shape(conn: sa.Connection) -> dict[str, tuple[set[str], set[str]]]:
        inspector = sa.inspect(conn)
        return {
            table: (
                {c["name"] for c in inspector.get_columns(table)},
                {str(i["name"]) for i in inspector.get_indexes(table)},
            )
            for table in inspector.get_table_names()
        }

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            migrated = await conn.run_sync(shape)
    finally:
        await engine.dispose()

    expected = {
        name: ({c.name for c in table.columns}, {str(i.name) for i in table.indexes})
        for name, table in metadata.tables.items()
    }
    assert migrated == expected


async def test_a_database_from_a_newer_synth_is_refused(backend: Backend) -> None:
    url = backend.new_url()
    await (await Store.open(url)).close()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text("INSERT INTO schema_version (version, applied_at) VALUES (:v, :at)"),
                {"v": LATEST_VERSION + 1, "at": NOW.replace(tzinfo=None)},
            )
    finally:
        await engine.dispose()

    with pytest.raises(StoreError, match=r"newer than this synth knows .*upgrade synth"):
        await Store.open(url)


# -- failures --------------------------------------------------------------------------------


async def test_an_unreachable_database_fails_fast(backend: Backend) -> None:
    start = time.monotonic()

    with pytest.raises(StoreError) as caught:
        await Store.open(backend.unreachable_url)

    assert time.monotonic() - start < FAST_S
    assert "s3cret-pw" not in str(caught.value)


async def test_a_closed_store_raises_store_error(store: Store) -> None:
    await store.close()
    await store.close()

    assert await store.ping() is False
    with pytest.raises(StoreError, match="closed"):
        await store.save_run(make_run("run-1"))
    with pytest.raises(StoreError, match="closed"):
        await store.list_runs()


async def test_ping_answers_true_when_healthy(store: Store) -> None:
    assert await store.ping() is True


async def test_bad_urls_are_refused_without_echoing_them() -> None:
    with pytest.raises(StoreError, match="not a database URL") as not_url:
        await Store.open("no url here, password hunter2")
    with pytest.raises(StoreError, match="unsupported store driver 'mysql'") as mysql:
        await Store.open("mysql://admin:hunter2@127.0.0.1/synth")

    assert "hunter2" not in str(not_url.value)
    assert "hunter2" not in str(mysql.value)


async def test_postgres_going_away_fails_fast_then_recovers() -> None:
    server = PostgresServer.create()
    try:
        server.start()
        store = await Store.open(server.create_database())
        try:
            await store.save_run(make_run("before"))
            await asyncio.to_thread(server.stop)

            start = time.monotonic()
            with pytest.raises(StoreError) as caught:
                await store.save_run(make_run("during"))
            assert await store.ping() is False
            assert time.monotonic() - start < FAST_S
            assert server.password not in str(caught.value)

            await asyncio.to_thread(server.start)
            assert await store.ping() is True
            await store.save_run(make_run("after", started_at=NOW + timedelta(seconds=1)))
            assert await ids(store) == ["after", "before"]
        finally:
            await store.close()
    finally:
        server.destroy()


async def test_postgres_password_never_shows(
    postgres_server: PostgresServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = postgres_server.create_database()

    store = await Store.open(url)
    await store.close()
    with pytest.raises(StoreError, match="authentication") as caught:
        await Store.open(url.replace(postgres_server.password, "wrong-pw-zz9"))

    assert postgres_server.password not in store.url
    assert "***" in store.url
    assert postgres_server.password not in caplog.text
    assert "wrong-pw-zz9" not in str(caught.value)
