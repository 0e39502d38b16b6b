"""Caught before production: for each distinct failure — a check's step failing with one
failure type — where it was first seen: before production (a pre-prod run, or an
environment that is not production) or in production; counted per week of first sighting,
service and failure type. Reads failed runs only (an index holds them by time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from synth.config import Settings
from synth.model import Phase, Status
from synth.store import Store
from synth.store.schema import runs


@dataclass(frozen=True, slots=True)
class WeekCount:
    week: str  # the Monday starting it, YYYY-MM-DD
    service: str
    failure_type: str
    before_production: int
    in_production: int

    @property
    def ratio(self) -> float | None:
        total = self.before_production + self.in_production
        return self.before_production / total if total else None


def production_test(settings: Settings) -> Callable[[str], bool]:
    """Whether an environment is production: its `production` setting, else every
    environment but the baseline's pre-prod one."""

    def is_production(env: str) -> bool:
        configured = settings.environments.get(env)
        if configured is not None and configured.production is not None:
            return configured.production
        return env != settings.baseline.from_env

    return is_production


async def caught_by_week(
    store: Store,
    *,
    is_production: Callable[[str], bool],
    since: datetime,
    service: str | None = None,
) -> list[WeekCount]:
    """Counts for the failures first seen since `since`, newest week first (looking back
    over every failed run kept, so that a failure seen before `since` is not new)."""
    first = sa.func.min(runs.c.started_at).label("first")
    query = (
        sa.select(
            runs.c.service,
            runs.c.check_name,
            runs.c.failed_step,
            runs.c.failure_type,
            runs.c.environment,
            runs.c.phase,
            first,
        )
        .where(runs.c.status == Status.FAILED.value)
        .group_by(
            runs.c.service,
            runs.c.check_name,
            runs.c.failed_step,
            runs.c.failure_type,
            runs.c.environment,
            runs.c.phase,
        )
    )
    if service is not None:
        query = query.where(runs.c.service == service)
    async with store.reading("read failures by first sighting") as connection:
        rows = (await connection.execute(query)).all()
    earliest: dict[tuple[str, str, str, str], tuple[datetime, bool]] = {}
    for row in rows:
        key = (row.service, row.check_name, row.failed_step or "", row.failure_type or "unknown")
        before = row.phase == Phase.PREPROD.value or not is_production(row.environment)
        seen = earliest.get(key)
        if seen is None or row.first < seen[0]:
            earliest[key] = (row.first, before)
    weeks: dict[tuple[str, str, str], list[int]] = {}
    for (svc, _, _, failure_type), (at, before) in earliest.items():
        if at < since:
            continue
        monday = (at - timedelta(days=at.weekday())).date().isoformat()
        counts = weeks.setdefault((monday, svc, failure_type), [0, 0])
        counts[0 if before else 1] += 1
    return [
        WeekCount(week, svc, failure_type, counts[0], counts[1])
        for (week, svc, failure_type), counts in sorted(
            weeks.items(), key=lambda item: (item[0][0], item[0][1], item[0][2]), reverse=True
        )
    ]
