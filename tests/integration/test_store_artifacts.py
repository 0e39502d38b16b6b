"""Run artifacts in the store, against a real SQLite file and a private PostgreSQL server:
written with their run in one transaction, listed, read back byte for byte, deleted with
their run by retention; and a database of schema version 5 migrated with its runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from postgres import PostgresServer, postgres_server  # noqa: F401
from sqlalchemy.ext.asyncio import create_async_engine
from store_backends import new_url_fixture, store_fixture  # noqa: F401

from synth.codec import run_to_dict
from synth.model import Artifact, Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import ArtifactInfo, Store, StoreError
from synth.store.migrations import LATEST_VERSION, MIGRATIONS
from synth.store.rows import run_row
from synth.store.schema import runs, schema_version

NOW = datetime(2025, 3, 14, 12, 0, 0, tzinfo=UTC)
# Every byte value, NUL included: the bytes must come back exactly.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
TRACE = b"PK\x03\x04" + bytes(range(255, -1, -1)) * 16
CONSOLE = "error: checkout failed — ünïcode\n".encode()


def browser_files(step: str = "open the shop") -> tuple[Artifact, ...]:
    return (
        Artifact("screenshot.png", "image/png", PNG, step),
        Artifact("trace.zip", "application/zip", TRACE, step),
        Artifact("console.log", "text/plain; charset=utf-8", CONSOLE),
    )


def make_run(
    run_id: str,
    *,
    check: str = "shop-browser",
    started_at: datetime = NOW,
    artifacts: tuple[Artifact, ...] = (),
) -> RunResult:
    failure = Failure(FailureType.ASSERTION, "the cart shows 0 items, expected 1")
    return RunResult(
        run_id=run_id,
        check=check,
        service="shop",
        environment="prod",
        phase=Phase.SCHEDULED,
        location="eu-west",
        status=Status.FAILED,
        started_at=started_at,
        duration_s=2.5,
        steps=(StepResult("open the shop", Status.FAILED, 2.5, failure=failure),),
        failure=failure,
        failed_step="open the shop",
        artifacts=artifacts,
    )


def infos(run_id: str, files: tuple[Artifact, ...]) -> list[ArtifactInfo]:
    return sorted(
        (ArtifactInfo(run_id, f.name, f.content_type, f.size, f.step) for f in files),
        key=lambda info: info.name,
    )


async def test_artifacts_are_saved_with_their_run_listed_and_read(store: Store) -> None:
    files = browser_files()
    run = make_run("run-1", artifacts=files)
    await store.save_run(run)
    await store.save_run(make_run("run-2"))

    assert await store.list_artifacts("run-1") == infos("run-1", files)
    for artifact in files:
        assert await store.get_artifact("run-1", artifact.name) == (
            artifact.content_type,
            artifact.data,
        )
    # The run itself comes back without the bytes, which live beside it.
    assert await store.get_run("run-1") == replace(run, artifacts=())
    assert await store.list_artifacts("run-2") == []
    assert await store.get_artifact("run-1", "nope.png") is None
    assert await store.get_artifact("run-2", "screenshot.png") is None
    assert await store.get_artifact("no-such-run", "screenshot.png") is None
    assert await store.list_artifacts("no-such-run") == []


async def test_saving_a_run_again_keeps_its_artifacts(store: Store) -> None:
    files = browser_files()
    await store.save_run(make_run("run-1", artifacts=files))
    other = (Artifact("screenshot.png", "image/png", b"another picture"),)
    await store.save_runs([make_run("run-1", artifacts=other), make_run("run-3")])

    assert await store.list_artifacts("run-1") == infos("run-1", files)
    assert await store.get_artifact("run-1", "screenshot.png") == ("image/png", PNG)
    assert await store.get_run("run-3") is not None


async def test_a_batch_of_runs_and_artifacts_is_one_transaction(store: Store) -> None:
    broken = Artifact("console.log", None, b"x")  # type: ignore[arg-type]
    batch = [
        make_run("run-a", artifacts=browser_files()),
        make_run("run-b", artifacts=(broken,)),
    ]

    with pytest.raises(StoreError):
        await store.save_runs(batch)

    assert await store.get_run("run-a") is None
    assert await store.list_artifacts("run-a") == []
    assert await store.list_runs() == []


async def test_prune_by_age_deletes_the_artifacts_of_the_runs_it_deletes(
    new_url: Callable[[], str],
) -> None:
    store = await Store.open(new_url(), max_age_s=3600, prune_batch_size=2)
    try:
        for i in range(3):
            started = NOW - timedelta(hours=2, minutes=i)
            await store.save_run(
                make_run(f"old-{i}", started_at=started, artifacts=browser_files())
            )
        await store.save_run(make_run("new", artifacts=browser_files()))

        assert await store.prune(now=NOW) == 3

        for i in range(3):
            assert await store.list_artifacts(f"old-{i}") == []
            assert await store.get_artifact(f"old-{i}", "trace.zip") is None
        assert await store.list_artifacts("new") == infos("new", browser_files())
        assert await store.get_artifact("new", "trace.zip") == ("application/zip", TRACE)
    finally:
        await store.close()


async def test_prune_by_count_deletes_the_artifacts_of_the_runs_it_deletes(
    new_url: Callable[[], str],
) -> None:
    store = await Store.open(new_url(), max_runs_per_check=2)
    try:
        for i in range(4):
            started = NOW - timedelta(minutes=i)
            await store.save_run(
                make_run(f"run-{i}", started_at=started, artifacts=browser_files())
            )

        assert await store.prune(now=NOW) == 2

        assert [s.run_id for s in await store.list_runs()] == ["run-0", "run-1"]
        for kept in ("run-0", "run-1"):
            assert await store.list_artifacts(kept) == infos(kept, browser_files())
        for gone in ("run-2", "run-3"):
            assert await store.list_artifacts(gone) == []
            assert await store.get_artifact(gone, "screenshot.png") is None
    finally:
        await store.close()


async def test_a_version_5_database_migrates_and_keeps_its_runs(
    new_url: Callable[[], str],
) -> None:
    url = new_url()
    before = make_run("from-v5", started_at=NOW - timedelta(minutes=1))
    record = run_to_dict(before)
    del record["artifacts"]  # as synth of schema version 5 stored it
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(schema_version.create)
            for version, step in enumerate(MIGRATIONS[:5], start=1):
                await connection.run_sync(step)
                await connection.execute(
                    sa.insert(schema_version).values(version=version, applied_at=NOW)
                )
            await connection.execute(sa.insert(runs).values({**run_row(before), "result": record}))
    finally:
        await engine.dispose()

    store = await Store.open(url)
    try:
        assert LATEST_VERSION >= 6
        assert await store.get_run("from-v5") == before
        assert await store.list_artifacts("from-v5") == []
        await store.save_run(make_run("after", artifacts=browser_files()))
        assert [s.run_id for s in await store.list_runs()] == ["after", "from-v5"]
        assert await store.get_artifact("after", "screenshot.png") == ("image/png", PNG)
    finally:
        await store.close()

    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            applied = (await connection.execute(sa.select(schema_version.c.version))).scalars()
            assert sorted(applied) == list(range(1, LATEST_VERSION + 1))
    finally:
        await engine.dispose()
