"""The overview's rows: every check × environment (× location) with its status, last run,
last failure, uptime and a duration sparkline — filtered and sorted from the rollups of
every pair (one small row each), then the page's rows completed with indexed queries."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from synth.alerting.silences import Silence, Target
from synth.model import CheckSpec, Status
from synth.store import Store
from synth.store.rollups import COUNTED_PHASES, Latest, Uptime, latest, statuses, uptimes
from synth.store.schema import runs

SPARK_RUNS = 24
STATUSES = ("failing", "passing", "silenced", "no runs")


@dataclass(frozen=True, slots=True)
class Filters:
    service: str | None = None
    env: str | None = None
    tag: str | None = None
    status: str | None = None
    query: str | None = None

    def keeps(self, check: CheckSpec, env: str) -> bool:
        return (
            (self.service is None or check.service == self.service)
            and (self.env is None or env == self.env)
            and (self.tag is None or self.tag in check.tags)
            and (self.query is None or self.query.lower() in check.name.lower())
        )


@dataclass(frozen=True, slots=True)
class Spark:
    """Durations of a pair's newest runs, oldest first, and which of them failed."""

    durations: tuple[float, ...] = ()
    failed: tuple[bool, ...] = ()


@dataclass(frozen=True, slots=True)
class Row:
    check: CheckSpec
    environment: str
    location: str
    status: str  # one of STATUSES
    silence: Silence | None = None
    latest: Latest | None = None
    uptime: Uptime | None = None
    spark: Spark = field(default_factory=Spark)


_PASSED = Status.PASSED.value


def row_status(last_status: str | None, silence: Silence | None) -> str:
    """The overview's word for a pair: silenced, no runs, passing or failing (its newest run)."""
    if silence is not None:
        return "silenced"
    if last_status is None:
        return "no runs"
    return "passing" if last_status == _PASSED else "failing"


@dataclass(frozen=True, slots=True)
class Page:
    rows: tuple[Row, ...]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


STATUS_TTL_S = 2.0
"""How long one read of every pair's newest status serves the overview (paging through
thousands of checks then reads only each page's rows)."""


class Overview:
    """The overview's pages for one agent. Every pair's status is read from the store at
    most every STATUS_TTL_S, and the sorted rows of a filter are kept while that read is
    current: a page is at most STATUS_TTL_S behind the store (and the silences behind
    the silence book's refresh)."""

    def __init__(self) -> None:
        self._read_at = -STATUS_TTL_S
        self._statuses: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._rows: dict[tuple[Any, ...], tuple[list[Row], dict[str, int]]] = {}

    async def page(
        self,
        store: Store,
        checks: Sequence[CheckSpec],
        environments: Sequence[str],
        covering: Any,
        *,
        filters: Filters,
        page: int,
        per_page: int,
        now: datetime,
        location: str,
    ) -> Page:
        """One page of rows; `covering(target, now)` is the silence book's lookup (None:
        no silence is in force)."""
        if time.monotonic() - self._read_at >= STATUS_TTL_S:
            async with store.reading("read the overview") as connection:
                self._statuses = await statuses(connection)
            self._read_at = time.monotonic()
            self._rows.clear()
        key = (filters, id(checks), len(checks), tuple(environments), location)
        if key not in self._rows:
            self._rows[key] = _sorted_rows(
                self._statuses, checks, environments, covering, filters, now, location
            )
        rows, counts = self._rows[key]
        pages = max(1, -(-len(rows) // per_page))
        page = min(max(page, 1), pages)
        shown = await _complete(store, rows[(page - 1) * per_page : page * per_page], now)
        return Page(tuple(shown), len(rows), page, pages, counts)


async def check_rows(
    store: Store,
    check: CheckSpec,
    environments: Sequence[str],
    covering: Any,
    *,
    env: str | None,
    now: datetime,
    location: str,
) -> list[Row]:
    """The rows of one check (its environments × locations), complete."""
    async with store.reading("read a check's status") as connection:
        found = await statuses(connection, checks=[check.name])
    rows, _ = _sorted_rows(found, [check], environments, covering, Filters(env=env), now, location)
    return await _complete(store, rows, now)


def _sorted_rows(
    by_pair: dict[tuple[str, str], list[tuple[str, str]]],
    checks: Sequence[CheckSpec],
    environments: Sequence[str],
    covering: Any,
    filters: Filters,
    now: datetime,
    location: str,
) -> tuple[list[Row], dict[str, int]]:
    """Every pair the filters keep, failing first, and the count of each status."""
    rows: list[Row] = []
    for check in checks:
        for env in check.environments or environments:
            if env not in environments or not filters.keeps(check, env):
                continue
            silence = (
                covering(Target(check.name, env, check.service, check.tags), now)
                if covering is not None
                else None
            )
            found = by_pair.get((check.name, env)) or []
            if not found:
                rows.append(Row(check, env, location, row_status(None, silence), silence))
            for where, last in sorted(found):
                rows.append(Row(check, env, where, row_status(last, silence), silence))
    counts = dict.fromkeys(STATUSES, 0)
    for row in rows:
        counts[row.status] += 1
    if filters.status is not None:
        rows = [row for row in rows if row.status == filters.status]
    order = {status: index for index, status in enumerate(STATUSES)}
    rows.sort(key=lambda r: (order[r.status], r.check.service, r.check.name, r.environment))
    return rows, counts


async def _complete(store: Store, rows: list[Row], now: datetime) -> list[Row]:
    """The page's rows with their newest run, uptime and sparkline (queries bounded by the
    page: the sparklines of its pairs in one statement, each pair's newest runs by index)."""
    if not rows:
        return rows
    names = {row.check.name for row in rows}
    pairs = sorted({(row.check.name, row.environment) for row in rows})
    newest_runs = [
        sa.select(runs.c.check_name, runs.c.environment, runs.c.location)
        .add_columns(runs.c.duration_s, runs.c.status)
        .where(runs.c.check_name == name, runs.c.environment == env)
        .where(runs.c.phase.in_(sorted(COUNTED_PHASES)))
        .order_by(runs.c.started_at.desc())
        .limit(SPARK_RUNS * 2)
        .subquery()
        for name, env in pairs
    ]
    spark_query = sa.union_all(*(sa.select(*sub.c) for sub in newest_runs))
    async with store.reading("read the overview") as connection:
        ups = await uptimes(connection, checks=names, now=now)
        newest = await latest(connection, checks=names)
        spark_rows = (await connection.execute(spark_query)).all()
    sparks: dict[tuple[str, str, str], tuple[list[float], list[bool]]] = {}
    for name, env, location, duration, status in spark_rows:
        durations, failed = sparks.setdefault((name, env, location), ([], []))
        if len(durations) < SPARK_RUNS:
            durations.append(float(duration))
            failed.append(status != _PASSED)
    by_key = {(u.check, u.environment, u.location): u for u in ups}
    latest_by_key = {(n.check, n.environment, n.location): n for n in newest}
    completed = []
    for row in rows:
        key = (row.check.name, row.environment, row.location)
        durations, failed = sparks.get(key, ([], []))
        spark = Spark(tuple(reversed(durations)), tuple(reversed(failed)))
        completed.append(
            replace(row, uptime=by_key.get(key), latest=latest_by_key.get(key), spark=spark)
        )
    return completed
