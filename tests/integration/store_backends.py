"""A store on each backend, for tests that must hold on both: `new_url()` gives a fresh
database's URL — a SQLite file in the test's folder, or a database on the module's private
PostgreSQL server — and `store` one opened store (closed after the test)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from postgres import PostgresServer

from synth.store import Store


@pytest.fixture(name="new_url", params=["sqlite", "postgresql"])
def new_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    if request.param == "sqlite":
        names = itertools.count(1)
        return lambda: f"sqlite+aiosqlite:///{tmp_path}/store-{next(names)}.db"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database


@pytest.fixture(name="store")
async def store_fixture(new_url: Callable[[], str]) -> AsyncIterator[Store]:
    opened = await Store.open(new_url())
    yield opened
    await opened.close()
