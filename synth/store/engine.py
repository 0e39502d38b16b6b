"""Connecting to the store's database: URL checks, per-backend settings, transactions and
turning driver errors into `StoreError`s that never show the password."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from synth.store.records import StoreError

CONNECT_TIMEOUT_S = 5.0
SQLITE_BUSY_TIMEOUT_MS = 5000
_URL_HELP = "expected sqlite+aiosqlite:///path.db or postgresql+asyncpg://user:pass@host:port/db"
_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}
# Connection execution option asking the SQLite "begin" hook for BEGIN IMMEDIATE.
_IMMEDIATE = "synth_begin_immediate"


def parse_url(raw: str) -> URL:
    """The store URL with its async driver filled in (`sqlite://` and `postgresql://` are
    accepted too). Raises StoreError without echoing the URL, which may hold a password."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(f"the store URL is not a database URL ({_URL_HELP})") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise StoreError(f"unsupported store driver {url.drivername!r} ({_URL_HELP})")
    return url.set(drivername=driver)


def display_url(url: URL) -> str:
    """The URL as it may appear in logs and error messages."""
    return url.render_as_string(hide_password=True)


def create_engine(url: URL) -> AsyncEngine:
    """An async engine for `url` with the settings its backend needs."""
    if url.get_backend_name() == "sqlite":
        _make_parent_dir(url)
        # No pre-ping: a SQLite file connection cannot go stale, and the ping is one more
        # round trip to the driver's thread per transaction (measured in bench/agent_scale).
        engine = create_async_engine(url)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,  # a connection from before a server restart is replaced
        pool_timeout=CONNECT_TIMEOUT_S,
        connect_args={
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": 60.0,
            "server_settings": {"application_name": "synth"},
        },
    )


def _make_parent_dir(url: URL) -> None:
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    try:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create the directory for {database}: {error}") from None


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN/COMMIT away from the driver (it defers BEGIN and commits before DDL),
        # so that migrations are transactional and writers can ask for BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads first
        # and writes later fails with SQLITE_BUSY instead of waiting for the lock.
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, write: bool) -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction, committed when the block ends without error."""
    async with engine.connect() as connection:
        if write and engine.dialect.name == "sqlite":
            await connection.execution_options(**{_IMMEDIATE: True})
        async with connection.begin():
            yield connection


def describe_error(error: BaseException, password: str | None) -> str:
    """One line about a driver error: the driver's own message, not the SQL or parameters
    SQLAlchemy would add, with the password masked should a driver ever echo it."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    if password:
        text = text.replace(password, "***")
    return text[:500]


def refuses_the_data(error: BaseException) -> bool:
    """Whether the database (or its driver) refused the values themselves: text it cannot
    encode (ValueError), or SQLSTATE class 22 "data exception" (PostgreSQL and NUL)."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, DataError | ValueError):
            return True
        if str(getattr(seen, "sqlstate", "") or "").startswith("22"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
