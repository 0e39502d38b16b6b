"""What the pages read instead of counting raw runs, written with the runs in their
transaction: hourly run counts per check × environment × location (`run_hours`, for
uptime) and each pair's newest run and last failure (`run_latest`, for status). Scheduled
and deploy runs count, as in the uptime report (synth.uptime.REPORTED_PHASES)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.model import Phase, RunResult, Status
from synth.store.schema import as_utc, run_hours, run_latest

COUNTED_PHASES = frozenset({Phase.SCHEDULED, Phase.DEPLOY})
_KEY = ("check_name", "environment", "location", "hour")


def hour_of(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in."""
    return as_utc(moment).replace(minute=0, second=0, microsecond=0)


async def write(
    connection: AsyncConnection,
    insert: Callable[[sa.Table], Any],
    results: Sequence[RunResult],
    inserted: Collection[str],
) -> None:
    """Add the runs just inserted to the counts and the newest runs (`insert(table)`: the
    dialect's INSERT, which has ON CONFLICT)."""
    counts = hour_rows(results, inserted)
    if counts:
        await connection.execute(upsert_hours(insert(run_hours)), counts)
        await connection.execute(upsert_latest(insert(run_latest)), latest_rows(results, inserted))


def latest_rows(results: Sequence[RunResult], inserted: Collection[str]) -> list[dict[str, Any]]:
    """The newest run and the newest failure among the runs inserted, per pair."""
    newest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for result in results:
        if result.run_id not in inserted or result.phase not in COUNTED_PHASES:
            continue
        key = (result.check, result.environment, result.location)
        failed_at = result.started_at if result.status is not Status.PASSED else None
        row = newest.get(key)
        known = [t for t in (failed_at, row["last_failed_at"] if row else None) if t is not None]
        last_failed = max(known, default=None)
        if row is not None and result.started_at < row["started_at"]:
            row["last_failed_at"] = last_failed
            continue
        newest[key] = {
            "check_name": result.check,
            "environment": result.environment,
            "location": result.location,
            "run_id": result.run_id,
            "status": result.status.value,
            "failure_type": result.failure.type.value if result.failure else None,
            "started_at": result.started_at,
            "duration_s": result.duration_s,
            "last_failed_at": last_failed,
        }
    return list(newest.values())


def upsert_latest(insert: Any) -> Any:
    """Replace a pair's newest run by a newer one; keep the newest failure time."""
    new = insert.excluded
    newer = new.started_at >= run_latest.c.started_at
    failed_later = sa.or_(
        run_latest.c.last_failed_at.is_(None), new.last_failed_at > run_latest.c.last_failed_at
    )
    columns = ("run_id", "status", "failure_type", "started_at", "duration_s")
    replaced = {name: sa.case((newer, new[name]), else_=run_latest.c[name]) for name in columns}
    return insert.on_conflict_do_update(
        index_elements=["check_name", "environment", "location"],
        set_={
            **replaced,
            "last_failed_at": sa.case(
                (sa.and_(new.last_failed_at.is_not(None), failed_later), new.last_failed_at),
                else_=run_latest.c.last_failed_at,
            ),
        },
    )


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


def hour_rows(results: Sequence[RunResult], inserted: Collection[str]) -> list[dict[str, Any]]:
    """One row per check × environment × location × hour among the runs just inserted,
    their counts summed (a batch never names one key twice: PostgreSQL's upsert refuses)."""
    merged: dict[tuple[str, str, str, datetime], dict[str, Any]] = {}
    for result in results:
        if result.run_id not in inserted or result.phase not in COUNTED_PHASES:
            continue
        key = (result.check, result.environment, result.location, hour_of(result.started_at))
        row = merged.get(key)
        if row is None:
            row = merged[key] = dict(zip(_KEY, key, strict=True))
            row.update(passed=0, failed=0, duration_s=0.0, last_failed_at=None)
        row["duration_s"] += result.duration_s
        if result.status is Status.PASSED:
            row["passed"] += 1
        else:
            row["failed"] += 1
            if row["last_failed_at"] is None or result.started_at > row["last_failed_at"]:
                row["last_failed_at"] = result.started_at
    return list(merged.values())


def upsert_hours(insert: Any) -> Any:
    """The statement adding `rows(...)` to the counts already stored (`insert` is the
    dialect's INSERT of run_hours, which has ON CONFLICT)."""
    new = insert.excluded
    later = sa.or_(
        run_hours.c.last_failed_at.is_(None), new.last_failed_at > run_hours.c.last_failed_at
    )
    return insert.on_conflict_do_update(
        index_elements=list(_KEY),
        set_={
            "passed": run_hours.c.passed + new.passed,
            "failed": run_hours.c.failed + new.failed,
            "duration_s": run_hours.c.duration_s + new.duration_s,
            "last_failed_at": sa.case(
                (sa.and_(new.last_failed_at.is_not(None), later), new.last_failed_at),
                else_=run_hours.c.last_failed_at,
            ),
        },
    )


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
