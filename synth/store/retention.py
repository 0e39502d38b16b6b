"""Retention: deleting runs (with their artifacts), deploys and delivered outbox events past
their age or count, in bounded batches, each its own transaction, so writers are never held
up for long."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

import synth.store.artifacts as artifacts
from synth.store.records import OutboxStatus
from synth.store.schema import (
    as_utc,
    deploys,
    outbox,
    retry_requests,
    run_hours,
    runs,
    silences,
)

log = logging.getLogger("synth.store")
STALE_RETRIES = timedelta(hours=1)

# One prune call deletes at most this many batches; anything left goes at the next call.
MAX_PRUNE_BATCHES = 2000

Transaction = Callable[..., AbstractAsyncContextManager[AsyncConnection]]


class _Budget:
    """How many more delete batches this prune may run."""

    def __init__(self, batches: int) -> None:
        self.left = batches

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


class Pruner:
    """One prune of a store, through its `transaction(action, write=)`."""

    def __init__(
        self, transaction: Transaction, *, max_age: timedelta, max_runs: int, batch: int
    ) -> None:
        self._transaction = transaction
        self._max_age = max_age
        self._max_runs = max_runs
        self._batch = batch

    async def prune(self, *, now: datetime | None = None) -> int:
        """Apply retention and return the number of rows deleted: runs that started before
        `now - max_age_s`, runs beyond the newest `max_runs_per_check` of each
        check × environment, deploys created before the same age cutoff, delivered outbox
        events of that age, silences that ended before the cutoff and retry requests an hour
        past their deadline. A run's
        artifacts are deleted with it, in its batch's transaction (not counted). Deletes in
        bounded batches, each its own transaction, so writers are never held up for long."""
        cutoff = as_utc(now or datetime.now(UTC)) - self._max_age
        budget = _Budget(MAX_PRUNE_BATCHES)
        deleted = await self._delete_batches(
            runs, runs.c.run_id, runs.c.started_at < cutoff, runs.c.started_at, budget
        )
        deleted += await self._prune_by_count(budget)
        deleted += await self._delete_batches(
            deploys, deploys.c.id, deploys.c.created_at < cutoff, deploys.c.created_at, budget
        )
        delivered = sa.and_(
            outbox.c.status != OutboxStatus.PENDING.value, outbox.c.created_at < cutoff
        )
        deleted += await self._delete_batches(
            outbox, outbox.c.id, delivered, outbox.c.created_at, budget
        )
        # Retry requests are withdrawn by their asker; one whose asker died mid-wait is
        # useless once its deadline passed (an hour's margin for clock-free certainty).
        stale = retry_requests.c.deadline < as_utc(now or datetime.now(UTC)) - STALE_RETRIES
        deleted += await self._delete_batches(
            retry_requests, retry_requests.c.id, stale, retry_requests.c.deadline, budget
        )
        # Silences stay for the record as long as runs do after they end.
        over = silences.c.ends_at < cutoff
        deleted += await self._delete_batches(
            silences, silences.c.id, over, silences.c.ends_at, budget
        )
        # Hourly counts go with the runs of their hour (derived rows, not counted).
        await self._delete_counts(run_hours.c.hour < cutoff, budget)
        if budget.left <= 0:
            log.warning("store prune stopped after %d rows; the rest goes next time", deleted)
        elif deleted:
            log.info("store prune deleted %d rows", deleted)
        return deleted

    async def _prune_by_count(self, budget: _Budget) -> int:
        over_limit = (
            sa.select(runs.c.check_name, runs.c.environment)
            .group_by(runs.c.check_name, runs.c.environment)
            .having(sa.func.count() > self._max_runs)
        )
        async with self._transaction("prune runs", write=False) as connection:
            groups = (await connection.execute(over_limit)).all()
        deleted = 0
        for check, environment in groups:
            in_group = sa.and_(runs.c.check_name == check, runs.c.environment == environment)
            # The oldest run that is kept: everything older than it goes.
            oldest_kept = (
                sa.select(runs.c.started_at, runs.c.run_id)
                .where(in_group)
                .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
                .offset(self._max_runs - 1)
                .limit(1)
            )
            async with self._transaction("prune runs", write=False) as connection:
                edge = (await connection.execute(oldest_kept)).first()
            if edge is None:
                continue
            older = sa.or_(
                runs.c.started_at < edge.started_at,
                sa.and_(runs.c.started_at == edge.started_at, runs.c.run_id < edge.run_id),
            )
            deleted += await self._delete_batches(
                runs, runs.c.run_id, sa.and_(in_group, older), runs.c.started_at, budget
            )
        return deleted

    async def _delete_counts(self, condition: sa.ColumnElement[bool], budget: _Budget) -> None:
        """Delete hourly counts one hour per transaction, oldest first."""
        while budget.take():
            oldest = sa.select(sa.func.min(run_hours.c.hour)).where(condition)
            async with self._transaction("prune", write=True) as connection:
                hour = await connection.scalar(oldest)
                if hour is None:
                    break
                await connection.execute(sa.delete(run_hours).where(run_hours.c.hour == hour))

    async def _delete_batches(
        self,
        table: sa.Table,
        key: sa.Column[Any],
        condition: sa.ColumnElement[bool],
        oldest_first: sa.Column[Any],
        budget: _Budget,
    ) -> int:
        deleted = 0
        while budget.take():
            batch = sa.select(key).where(condition).order_by(oldest_first).limit(self._batch)
            async with self._transaction("prune", write=True) as connection:
                doomed: Any = batch
                if table is runs:
                    # The batch's ids first, so that its artifacts and its runs are the same
                    # runs whatever commits meanwhile.
                    doomed = list((await connection.execute(batch)).scalars().all())
                    await artifacts.delete_for(connection, doomed)
                result = await connection.execute(sa.delete(table).where(key.in_(doomed)))
            deleted += result.rowcount
            if result.rowcount < self._batch:
                break
        return deleted
