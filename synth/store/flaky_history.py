"""The last 24 h of transient failures per check × environment, read back from the stored
runs, so flakiness survives an agent's restart and follows a check to the cluster member
that runs it now (synth.alerting.flaky).

Counted in the database, not by reading every run: per hourly bucket the runs, the runs
that passed on a retry, and the single failures between two passes (window functions
LAG/LEAD over each pair's runs, on SQLite and PostgreSQL alike; a run's predecessors
are looked for up to a day before the window). Only the runs that
passed on a retry are read whole, for the failure their retry hid — they are the few.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.model import FailureType, Phase, Status
from synth.store.schema import runs

BUCKETS = 24
BUCKET = timedelta(hours=1)
LOOKBACK = timedelta(hours=24)
"""How far before the window a run's predecessors are looked for."""

Pair = tuple[str, str]
Cause = tuple[str | None, FailureType]


@dataclass(slots=True)
class HourCounts:
    """One hour of a pair's runs: how many, how many were transient, and why."""

    start: datetime
    runs: int = 0
    transient: int = 0
    causes: dict[Cause, int] = field(default_factory=dict)


@dataclass(slots=True)
class PairHistory:
    hours: dict[datetime, HourCounts] = field(default_factory=dict)
    last_failed: bool = False
    """The pair's last run failed ..."""
    pending: Cause | None = None
    """... after a pass: transient if the next run passes."""
    streak: int = 0

    def hour(self, start: datetime) -> HourCounts:
        return self.hours.setdefault(start, HourCounts(start))


async def read(
    connection: AsyncConnection, *, location: str, now: datetime, pairs: Collection[Pair]
) -> dict[Pair, PairHistory]:
    """The history of each of `pairs` run at `location` over the 24 h before `now`."""
    if not pairs:
        return {}
    first = _hour_start(now) - (BUCKETS - 1) * BUCKET
    edges = [first + i * BUCKET for i in range(1, BUCKETS)]
    checks = sorted({check for check, _ in pairs})
    partition = (runs.c.check_name, runs.c.environment)
    order = (runs.c.started_at, runs.c.run_id)

    def earlier(column: Any, offset: int = 1) -> Any:
        return sa.func.lag(column, offset).over(partition_by=partition, order_by=order)

    # A run's neighbours may be older than the window (a failure just before it, followed
    # by a pass inside it, is transient in the pass's hour, as the tracker counts it).
    ordered = (
        sa.select(
            runs.c.check_name,
            runs.c.environment,
            runs.c.status,
            runs.c.attempts,
            runs.c.failed_step,
            runs.c.failure_type,
            runs.c.run_id,
            runs.c.started_at,
            sum(
                (sa.case((runs.c.started_at >= edge, 1), else_=0) for edge in edges),
                sa.literal(0),
            ).label("bucket"),
            earlier(runs.c.status).label("before"),
            earlier(runs.c.status, 2).label("before_that"),
            earlier(runs.c.failed_step).label("before_step"),
            earlier(runs.c.failure_type).label("before_type"),
            sa.func.lead(runs.c.status).over(partition_by=partition, order_by=order).label("after"),
        )
        .where(runs.c.location == location)
        .where(runs.c.phase != Phase.PREPROD.value)
        .where(runs.c.started_at >= first - LOOKBACK)
        .where(runs.c.check_name.in_(checks))
        .subquery()
    )
    passed, failed = Status.PASSED.value, Status.FAILED.value
    in_window = ordered.c.started_at >= first
    retried = sa.and_(in_window, ordered.c.status == passed, ordered.c.attempts > 1)
    # A pass right after a single failure (one preceded by a pass, or by nothing).
    after_single = sa.and_(
        ordered.c.status == passed,
        ordered.c.before == failed,
        sa.or_(ordered.c.before_that.is_(None), ordered.c.before_that == passed),
    )
    counts = (
        sa.select(
            ordered.c.check_name,
            ordered.c.environment,
            ordered.c.bucket,
            ordered.c.before_step,
            ordered.c.before_type,
            sa.func.count().label("runs"),
            sa.func.sum(sa.case((after_single, 1), else_=0)).label("single"),
        )
        .where(in_window)
        .group_by(
            ordered.c.check_name,
            ordered.c.environment,
            ordered.c.bucket,
            ordered.c.before_step,
            ordered.c.before_type,
        )
    )
    last = sa.select(
        ordered.c.check_name,
        ordered.c.environment,
        ordered.c.status,
        ordered.c.before,
        ordered.c.failed_step,
        ordered.c.failure_type,
    ).where(ordered.c.after.is_(None))
    retries = (
        sa.select(ordered.c.check_name, ordered.c.environment, ordered.c.bucket, runs.c.result)
        .join(runs, runs.c.run_id == ordered.c.run_id)
        .where(retried)
    )

    wanted = set(pairs)
    history: dict[Pair, PairHistory] = {}
    for row in (await connection.execute(counts)).all():
        pair = (row.check_name, row.environment)
        if pair not in wanted:
            continue
        hour = history.setdefault(pair, PairHistory()).hour(first + int(row.bucket) * BUCKET)
        hour.runs += int(row.runs)
        if row.single:
            cause = (row.before_step, _failure_type(row.before_type))
            hour.transient += int(row.single)
            hour.causes[cause] = hour.causes.get(cause, 0) + int(row.single)
    for row in (await connection.execute(retries)).all():
        pair = (row.check_name, row.environment)
        if pair not in wanted:
            continue
        hour = history.setdefault(pair, PairHistory()).hour(first + int(row.bucket) * BUCKET)
        cause = _retried_cause(row.result)
        hour.transient += 1
        hour.causes[cause] = hour.causes.get(cause, 0) + 1
    for row in (await connection.execute(last)).all():
        pair = (row.check_name, row.environment)
        if pair not in wanted or row.status != failed:
            continue
        entry = history.setdefault(pair, PairHistory())
        entry.last_failed = True
        entry.streak = 1 if row.before in (None, passed) else 2
        if entry.streak == 1:
            entry.pending = (row.failed_step, _failure_type(row.failure_type))
    return history


def _hour_start(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _failure_type(value: Any) -> FailureType:
    try:
        return FailureType(value)
    except ValueError:
        return FailureType.SCRIPT_ERROR


def _retried_cause(result: Any) -> Cause:
    """The first failed attempt's step and failure type, from the stored run's JSON."""
    data = json.loads(result) if isinstance(result, str) else result
    attempts = data.get("failed_attempts") if isinstance(data, dict) else None
    if isinstance(attempts, list) and attempts and isinstance(attempts[0], dict):
        failure = attempts[0].get("failure")
        step = attempts[0].get("failed_step")
        kind = failure.get("type") if isinstance(failure, dict) else None
        return (step if isinstance(step, str) else None, _failure_type(kind))
    return (None, FailureType.SCRIPT_ERROR)
