"""Baselines in the store, on SQLite and PostgreSQL: fragments merge exactly (also when
written concurrently), versions are kept apart and bounded."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from postgres import PostgresServer, postgres_server  # noqa: F401

from synth.baseline.contract import Contract
from synth.baseline.record import StepBaseline
from synth.baseline.shape import json_shape
from synth.baseline.sketch import Sketch
from synth.store import Store
from synth.store.store import MAX_BASELINE_VERSIONS


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.create_database()
    opened = await Store.open(url)
    yield opened
    await opened.close()


def fragment(version: str, latencies: list[float], total: object = 1.0) -> StepBaseline:
    contract = Contract()
    for _ in latencies:
        contract.add(json_shape({"order": {"total": total}}))
    return StepBaseline(
        "checkout",
        "staging",
        "check out",
        version,
        latency=Sketch.of(latencies),
        runs=len(latencies),
        passed=len(latencies),
        contract=contract,
    )


async def test_fragments_merge_into_one_row_per_version(store: Store) -> None:
    await store.merge_baselines([fragment("v1", [0.1, 0.2])])
    await store.merge_baselines([fragment("v1", [0.3]), fragment("v1", [0.4], total="x")])
    await store.merge_baselines([fragment("v2", [1.0])])
    rows = await store.list_baselines(check="checkout", env="staging")
    assert [r.version for r in rows] == ["v2", "v1"]  # most recently updated first
    v1 = rows[1]
    assert (v1.runs, v1.passed, v1.latency.count) == (4, 4, 4)
    assert v1.latency.to_dict() == Sketch.of([0.1, 0.2, 0.3, 0.4]).to_dict()
    assert v1.contract.fields["order.total"].types == {"number": 3, "string": 1}
    assert v1.updated_at is not None
    assert await store.list_baselines(check="checkout", env="production") == []


async def test_concurrent_merges_lose_nothing(store: Store) -> None:
    writers = [store.merge_baselines([fragment("v1", [0.01 * (i + 1)])]) for i in range(10)]
    await asyncio.gather(*writers)
    (row,) = await store.list_baselines(check="checkout")
    assert row.runs == 10
    assert row.latency.count == 10


async def test_old_versions_are_dropped(store: Store) -> None:
    for n in itertools.islice(itertools.count(1), MAX_BASELINE_VERSIONS + 3):
        await store.merge_baselines([fragment(f"v{n}", [0.1])])
    rows = await store.list_baselines(check="checkout", env="staging")
    assert len(rows) == MAX_BASELINE_VERSIONS
    assert rows[0].version == f"v{MAX_BASELINE_VERSIONS + 3}"
    assert "v1" not in {r.version for r in rows}
