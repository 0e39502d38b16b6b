"""Silences made through the API (`silences`): kept in the store so that they survive a
restart and every agent sharing the store (a cluster) honours them. SQLite and PostgreSQL
alike. Ending a silence moves its end to now; ended silences stay (they are small) for
the record, until retention deletes them with the runs of their time."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.alerting.silences import Silence
from synth.store.schema import silences

Transaction = Callable[..., AbstractAsyncContextManager[AsyncConnection]]
MAX_LISTED = 1000


def _silence(row: Any) -> Silence:
    return Silence(
        id=row.id,
        start=row.starts_at,
        end=row.ends_at,
        matchers={str(k): str(v) for k, v in dict(row.matchers).items()},
        all=bool(row.all_checks),
        deploys=bool(row.deploys),
        reason=row.reason,
        author=row.author,
        created_at=row.created_at,
    )


class SilenceTable:
    """The stored silences, each operation in its own transaction."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction

    async def add(self, silence: Silence) -> None:
        async with self._transaction("store a silence", write=True) as connection:
            await connection.execute(
                sa.insert(silences).values(
                    id=silence.id,
                    matchers=dict(silence.matchers),
                    all_checks=silence.all,
                    deploys=silence.deploys,
                    starts_at=silence.start,
                    ends_at=silence.end,
                    reason=silence.reason,
                    author=silence.author,
                    created_at=silence.created_at or silence.start,
                )
            )

    async def current(self, now: datetime) -> list[Silence]:
        """Silences not over at `now` (active and upcoming), soonest start first."""
        async with self._transaction("read the silences", write=False) as connection:
            rows = await connection.execute(
                sa.select(silences)
                .where(silences.c.ends_at > now)
                .order_by(silences.c.starts_at, silences.c.id)
                .limit(MAX_LISTED)
            )
            return [_silence(row) for row in rows]

    async def end(self, silence_id: str, now: datetime) -> Silence | None:
        """End a silence now (an upcoming one never starts); None for an unknown id. A
        silence already over is returned unchanged."""
        async with self._transaction("end a silence", write=True) as connection:
            row = (
                await connection.execute(sa.select(silences).where(silences.c.id == silence_id))
            ).first()
            if row is None:
                return None
            found = _silence(row)
            if found.end <= now:
                return found
            start = min(found.start, now)
            await connection.execute(
                sa.update(silences)
                .where(silences.c.id == silence_id)
                .values(starts_at=start, ends_at=now)
            )
            return replace(found, start=start, end=now)
