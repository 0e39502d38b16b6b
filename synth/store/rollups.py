"""What the pages read instead of counting raw runs: hourly run counts per check ×
environment × location (`run_hours`, for uptime) and each pair's newest run and last
failure (`run_latest`, for status). A trigger on `runs` keeps both in the statement that
inserts a run (schema version 9, synth.store.migrations): no round trip of their own, and
a run inserted twice is counted once. Scheduled and deploy runs count, as in the uptime
report (synth.uptime.REPORTED_PHASES)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.model import Phase, Status
from synth.store.schema import as_utc, run_hours, run_latest

COUNTED_PHASES = frozenset({Phase.SCHEDULED, Phase.DEPLOY})


def hour_of(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class Latest:
    """A pair's newest counted run and its last failure."""

    check: str
    environment: str
    location: str
    run_id: str
    status: Status
    failure_type: str | None
    started_at: datetime
    duration_s: float
    last_failed_at: datetime | None


async def latest(connection: AsyncConnection, *, checks: Collection[str] | None) -> list[Latest]:
    """The newest run of every pair (of `checks`, or of all)."""
    query = sa.select(run_latest)
    if checks is not None:
        query = query.where(run_latest.c.check_name.in_(sorted(checks)))
    return [
        Latest(
            check=row.check_name,
            environment=row.environment,
            location=row.location,
            run_id=row.run_id,
            status=Status(row.status),
            failure_type=row.failure_type,
            started_at=row.started_at,
            duration_s=row.duration_s,
            last_failed_at=row.last_failed_at,
        )
        for row in (await connection.execute(query)).all()
    ]


@dataclass(frozen=True, slots=True)
class Uptime:
    """Counts of one check × environment × location over the last day and week."""

    check: str
    environment: str
    location: str
    passed_24h: int
    failed_24h: int
    passed_7d: int
    failed_7d: int
    last_failed_at: datetime | None

    @staticmethod
    def ratio(passed: int, failed: int) -> float | None:
        total = passed + failed
        return passed / total if total else None

    @property
    def uptime_24h(self) -> float | None:
        return self.ratio(self.passed_24h, self.failed_24h)

    @property
    def uptime_7d(self) -> float | None:
        return self.ratio(self.passed_7d, self.failed_7d)


async def uptimes(
    connection: AsyncConnection, *, checks: Collection[str], now: datetime
) -> list[Uptime]:
    """Uptime of every environment and location of `checks` (the last failure from the
    whole retention)."""
    if not checks:
        return []
    day = hour_of(now - timedelta(hours=23))
    week = hour_of(now - timedelta(days=7) + timedelta(hours=1))

    def since(start: datetime, column: sa.Column[int]) -> Any:
        return sa.func.sum(sa.case((run_hours.c.hour >= start, column), else_=0))

    query = (
        sa.select(
            run_hours.c.check_name,
            run_hours.c.environment,
            run_hours.c.location,
            since(day, run_hours.c.passed).label("p1"),
            since(day, run_hours.c.failed).label("f1"),
            since(week, run_hours.c.passed).label("p7"),
            since(week, run_hours.c.failed).label("f7"),
            sa.func.max(run_hours.c.last_failed_at).label("last_failed_at"),
        )
        .where(run_hours.c.check_name.in_(sorted(checks)))
        .group_by(run_hours.c.check_name, run_hours.c.environment, run_hours.c.location)
    )
    found = []
    for row in (await connection.execute(query)).all():
        last = row.last_failed_at
        if isinstance(last, str):  # max() over SQLite text loses the column's type
            last = datetime.fromisoformat(last)
        found.append(
            Uptime(
                check=row.check_name,
                environment=row.environment,
                location=row.location,
                passed_24h=int(row.p1 or 0),
                failed_24h=int(row.f1 or 0),
                passed_7d=int(row.p7 or 0),
                failed_7d=int(row.f7 or 0),
                last_failed_at=as_utc(last) if last is not None else None,
            )
        )
    return found


async def statuses(
    connection: AsyncConnection, *, checks: Collection[str] | None = None
) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(location, status) of the newest run of every check × environment (of `checks`): the
    few text columns a filter and sort over every check need (full rows: `latest`)."""
    query = sa.select(
        run_latest.c.check_name,
        run_latest.c.environment,
        run_latest.c.location,
        run_latest.c.status,
    )
    if checks is not None:
        query = query.where(run_latest.c.check_name.in_(sorted(checks)))
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for check, env, location, status in (await connection.execute(query)).all():
        found.setdefault((check, env), []).append((location, status))
    return found
