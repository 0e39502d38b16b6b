"""Retries asked of another location (`retry_requests`): a member whose run failed asks,
a live member of another location claims the request (`FOR UPDATE SKIP LOCKED`: one
claimer), runs the check once and answers with its run; the asker reads the answer and
withdraws the request. Times come from the database's clock.

PostgreSQL only, like every table agents share (synth.store.cluster).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.store.cluster import db_now
from synth.store.schema import cluster_members, retry_requests

Transaction = Callable[..., AbstractAsyncContextManager[AsyncConnection]]


@dataclass(frozen=True, slots=True)
class RetryAsked:
    """A claimed request: run `check` in `environment` once, within `seconds_left`."""

    id: str
    check: str
    environment: str
    phase: str
    from_location: str
    seconds_left: float


class RetryTable:
    """The retry requests, each operation in its own transaction."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction

    async def other_locations(self, location: str) -> list[str]:
        """Locations other than `location` with a live member, by name."""
        async with self._transaction("read the cluster", write=False) as connection:
            now = await db_now(connection)
            rows = await connection.execute(
                sa.select(cluster_members.c.location)
                .where(cluster_members.c.location != location)
                .where(cluster_members.c.lease_until > now)
                .distinct()
                .order_by(cluster_members.c.location)
            )
            return [str(row[0]) for row in rows]

    async def ask(
        self,
        request_id: str,
        *,
        check: str,
        environment: str,
        phase: str,
        location: str,
        within_s: float,
    ) -> None:
        async with self._transaction("ask for a retry", write=True) as connection:
            now = await db_now(connection)
            await connection.execute(
                sa.insert(retry_requests).values(
                    id=request_id,
                    check_name=check,
                    environment=environment,
                    phase=phase,
                    from_location=location,
                    requested_at=now,
                    deadline=now + timedelta(seconds=within_s),
                )
            )

    async def claim(self, *, location: str, member: str, limit: int) -> list[RetryAsked]:
        """Take up to `limit` open requests of other locations, oldest first."""
        async with self._transaction("claim retries", write=True) as connection:
            now = await db_now(connection)
            open_ids = (
                sa.select(retry_requests.c.id)
                .where(retry_requests.c.claimed_by.is_(None))
                .where(retry_requests.c.from_location != location)
                .where(retry_requests.c.deadline > now)
                .order_by(retry_requests.c.requested_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = await connection.execute(
                sa.update(retry_requests)
                .where(retry_requests.c.id.in_(open_ids))
                .values(claimed_by=member, claimed_location=location)
                .returning(
                    retry_requests.c.id,
                    retry_requests.c.check_name,
                    retry_requests.c.environment,
                    retry_requests.c.phase,
                    retry_requests.c.from_location,
                    retry_requests.c.deadline,
                )
            )
            return [
                RetryAsked(
                    id=row.id,
                    check=row.check_name,
                    environment=row.environment,
                    phase=row.phase,
                    from_location=row.from_location,
                    seconds_left=(row.deadline - now).total_seconds(),
                )
                for row in rows
            ]

    async def answer(self, request_id: str, *, member: str, result: Any) -> None:
        """The claimer's run (its JSON; None: it could not run the check)."""
        async with self._transaction("answer a retry", write=True) as connection:
            now = await db_now(connection)
            await connection.execute(
                sa.update(retry_requests)
                .where(retry_requests.c.id == request_id)
                .where(retry_requests.c.claimed_by == member)
                .values(result=result, done_at=now)
            )

    async def answered(self, request_id: str) -> tuple[bool, Any]:
        """(done, the run's JSON or None)."""
        async with self._transaction("read a retry", write=False) as connection:
            row = (
                await connection.execute(
                    sa.select(retry_requests.c.done_at, retry_requests.c.result).where(
                        retry_requests.c.id == request_id
                    )
                )
            ).first()
        if row is None or row.done_at is None:
            return False, None
        return True, row.result

    async def withdraw(self, request_id: str) -> None:
        async with self._transaction("withdraw a retry", write=True) as connection:
            await connection.execute(
                sa.delete(retry_requests).where(retry_requests.c.id == request_id)
            )
