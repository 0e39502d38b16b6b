"""The overview's rows: every check × environment (× location) with its status, last run,
last failure, uptime and a duration sparkline — filtered and sorted from the rollups of
every pair (one small row each), then the page's rows completed with indexed queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from synth.alerting.silences import Silence, Target
from synth.model import CheckSpec, Status
from synth.store import Store
from synth.store.rollups import COUNTED_PHASES, Latest, Uptime, latest, uptimes
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
    latest: Latest | None = None
    silence: Silence | None = None
    uptime: Uptime | None = None
    spark: Spark = field(default_factory=Spark)

    @property
    def status(self) -> str:
        if self.silence is not None:
            return "silenced"
        if self.latest is None:
            return "no runs"
        return "passing" if self.latest.status is Status.PASSED else "failing"


@dataclass(frozen=True, slots=True)
class Page:
    rows: tuple[Row, ...]
    total: int
    page: int
    pages: int
    counts: dict[str, int]


async def overview(
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
    """One page of rows; `covering(target, now)` is the silence book's lookup."""
    async with store.reading("read the overview") as connection:
        newest = await latest(connection, checks=None)
    by_pair: dict[tuple[str, str], list[Latest]] = {}
    for item in newest:
        by_pair.setdefault((item.check, item.environment), []).append(item)
    rows: list[Row] = []
    for check in checks:
        for env in check.environments or environments:
            if env not in environments or not filters.keeps(check, env):
                continue
            silence = covering(Target(check.name, env, check.service, check.tags), now)
            found = by_pair.get((check.name, env)) or []
            if not found:
                rows.append(Row(check, env, location, silence=silence))
            for item in sorted(found, key=lambda i: i.location):
                rows.append(Row(check, env, item.location, latest=item, silence=silence))
    counts = {status: 0 for status in STATUSES}
    for row in rows:
        counts[row.status] += 1
    if filters.status is not None:
        rows = [row for row in rows if row.status == filters.status]
    order = {status: index for index, status in enumerate(STATUSES)}
    rows.sort(key=lambda r: (order[r.status], r.check.service, r.check.name, r.environment))
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * per_page : page * per_page]
    shown = await _complete(store, shown, now)
    return Page(tuple(shown), len(rows), page, pages, counts)


async def _complete(store: Store, rows: list[Row], now: datetime) -> list[Row]:
    """The page's rows with their uptime and sparkline (queries bounded by the page)."""
    names = {row.check.name for row in rows}
    async with store.reading("read the overview") as connection:
        ups = await uptimes(connection, checks=names, now=now)
        sparks: dict[tuple[str, str, str], tuple[list[float], list[bool]]] = {}
        for name, env in {(row.check.name, row.environment) for row in rows}:
            query = (
                sa.select(runs.c.location, runs.c.duration_s, runs.c.status)
                .where(runs.c.check_name == name, runs.c.environment == env)
                .where(runs.c.phase.in_(sorted(COUNTED_PHASES)))
                .order_by(runs.c.started_at.desc())
                .limit(SPARK_RUNS * 2)
            )
            for location, duration, status in (await connection.execute(query)).all():
                durations, failed = sparks.setdefault((name, env, location), ([], []))
                if len(durations) < SPARK_RUNS:
                    durations.append(float(duration))
                    failed.append(status != Status.PASSED.value)
    by_key = {(u.check, u.environment, u.location): u for u in ups}
    completed = []
    for row in rows:
        key = (row.check.name, row.environment, row.location)
        durations, failed = sparks.get(key, ([], []))
        spark = Spark(tuple(reversed(durations)), tuple(reversed(failed)))
        completed.append(replace(row, uptime=by_key.get(key), spark=spark))
    return completed
