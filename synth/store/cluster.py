"""The store's cluster tables: one lease row per member, and claims on deploys whose
verifying member is gone. Every time comes from the database's clock (`clock_timestamp()`),
read once per transaction, so clock skew between members does not matter.

PostgreSQL only: SQLite is a single-agent store (synth.store.single_agent).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.store.records import DeployRecord, DeployStatus
from synth.store.rows import get_deploy
from synth.store.schema import as_utc, cluster_members, deploys

Transaction = Callable[..., AbstractAsyncContextManager[AsyncConnection]]
UNFINISHED = (DeployStatus.PENDING.value, DeployStatus.RUNNING.value)


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member's lease as stored."""

    member_id: str
    instance: str
    epoch: int
    version: str
    joined_at: datetime
    runs_from: datetime
    renewed_at: datetime
    lease_until: datetime
    owned_checks: int


@dataclass(frozen=True, slots=True)
class ClusterView:
    """The members of one location, read at `now` (the database's clock)."""

    now: datetime
    members: tuple[MemberRow, ...]

    def live(self) -> tuple[MemberRow, ...]:
        return tuple(m for m in self.members if m.lease_until > self.now)


@dataclass(frozen=True, slots=True)
class Lease:
    """A member's hold: renewed by `renew` while `epoch` is still its own."""

    epoch: int
    view: ClusterView


class ClusterTable:
    """Membership queries, each in its own transaction."""

    def __init__(self, transaction: Transaction) -> None:
        self._transaction = transaction

    async def join(
        self,
        *,
        location: str,
        member_id: str,
        instance: str,
        version: str,
        lease_s: float,
        settle_s: float,
    ) -> Lease | None:
        """Take `member_id`'s row with a new epoch, running from `settle_s` from now; None
        while another live instance holds it (a duplicate id, or this member's previous
        life whose lease has not run out yet)."""
        key = (cluster_members.c.location == location) & (cluster_members.c.member_id == member_id)
        async with self._transaction("join the cluster", write=True) as connection:
            now = await db_now(connection)
            row = (
                await connection.execute(sa.select(cluster_members).where(key).with_for_update())
            ).first()
            values = {
                "instance": instance,
                "version": version,
                "joined_at": now,
                "runs_from": now + timedelta(seconds=settle_s),
                "renewed_at": now,
                "lease_until": now + timedelta(seconds=lease_s),
                "owned_checks": 0,
            }
            if row is None:
                epoch = 1
                try:
                    async with connection.begin_nested():
                        await connection.execute(
                            sa.insert(cluster_members).values(
                                location=location, member_id=member_id, epoch=epoch, **values
                            )
                        )
                except IntegrityError:
                    return None  # another instance inserted it a moment ago
            else:
                held = _member(row._mapping)
                if held.instance != instance and held.lease_until > now:
                    return None
                epoch = held.epoch + 1
                await connection.execute(
                    sa.update(cluster_members).where(key).values(epoch=epoch, **values)
                )
            view = await _view(connection, location, now)
        return Lease(epoch, view)

    async def renew(
        self,
        *,
        location: str,
        member_id: str,
        instance: str,
        epoch: int,
        lease_s: float,
        owned_checks: int,
    ) -> ClusterView | None:
        """Extend the lease of `epoch` and read the members; None when the lease had run
        out or was taken (the member must stop running checks and join again)."""
        async with self._transaction("renew the cluster lease", write=True) as connection:
            now = await db_now(connection)
            renewed = await connection.execute(
                sa.update(cluster_members)
                .where(
                    cluster_members.c.location == location,
                    cluster_members.c.member_id == member_id,
                    cluster_members.c.instance == instance,
                    cluster_members.c.epoch == epoch,
                    cluster_members.c.lease_until > now,
                )
                .values(
                    renewed_at=now,
                    lease_until=now + timedelta(seconds=lease_s),
                    owned_checks=owned_checks,
                )
            )
            if renewed.rowcount != 1:
                return None
            return await _view(connection, location, now)

    async def leave(self, *, location: str, member_id: str, instance: str, epoch: int) -> None:
        """Give the lease up (a graceful stop): the others take the checks at once."""
        async with self._transaction("leave the cluster", write=True) as connection:
            await connection.execute(
                sa.delete(cluster_members).where(
                    cluster_members.c.location == location,
                    cluster_members.c.member_id == member_id,
                    cluster_members.c.instance == instance,
                    cluster_members.c.epoch == epoch,
                )
            )

    async def members(self, location: str) -> ClusterView:
        """Every member row of `location`, live or expired (for GET /v1/cluster)."""
        async with self._transaction("read the cluster", write=False) as connection:
            return await _view(connection, location, await db_now(connection), live_only=False)

    async def orphaned_deploys(self, limit: int = 20) -> list[tuple[str, str]]:
        """(id, owner) of unfinished deploys whose verifying member holds no live lease,
        oldest first. An owner is `member_id/instance` (see `owner_token`): a restarted
        member is a new instance, so what its previous life verified is orphaned too.
        Any location's live member may take them: a verdict from another location is
        better than none."""
        async with self._transaction("find orphaned deploys", write=False) as connection:
            now = await db_now(connection)
            live = sa.select(
                sa.func.concat(cluster_members.c.member_id, "/", cluster_members.c.instance)
            ).where(cluster_members.c.lease_until > now)
            rows = await connection.execute(
                sa.select(deploys.c.id, deploys.c.owner)
                .where(
                    deploys.c.status.in_(UNFINISHED),
                    deploys.c.owner.is_not(None),
                    deploys.c.owner.not_in(live),
                )
                .order_by(deploys.c.created_at)
                .limit(limit)
            )
            return [(str(row[0]), str(row[1])) for row in rows]

    async def claim_deploy(
        self, deploy_id: str, *, owner: str, previous: str | None
    ) -> DeployRecord | None:
        """Make `owner` the verifier of an unfinished deploy still held by `previous`;
        the record as claimed, or None when someone else claimed or finished it first."""
        async with self._transaction("claim a deploy", write=True) as connection:
            now = await db_now(connection)
            claimed = await connection.execute(
                sa.update(deploys)
                .where(
                    deploys.c.id == deploy_id,
                    deploys.c.status.in_(UNFINISHED),
                    deploys.c.owner == previous,
                )
                .values(owner=owner, updated_at=now)
            )
            if claimed.rowcount != 1:
                return None
            return await get_deploy(connection, deploys.c.id == deploy_id)


async def db_now(connection: AsyncConnection) -> datetime:
    value = await connection.scalar(sa.select(sa.func.clock_timestamp()))
    if not isinstance(value, datetime):  # pragma: no cover - PostgreSQL returns timestamptz
        raise TypeError(f"clock_timestamp() returned {value!r}")
    return as_utc(value)


async def _view(
    connection: AsyncConnection, location: str, now: datetime, *, live_only: bool = True
) -> ClusterView:
    query = sa.select(cluster_members).where(cluster_members.c.location == location)
    if live_only:
        query = query.where(cluster_members.c.lease_until > now)
    rows = (await connection.execute(query.order_by(cluster_members.c.member_id))).all()
    return ClusterView(now, tuple(_member(row._mapping) for row in rows))


def owner_token(member_id: str, instance: str) -> str:
    """How a deploy row names the member instance verifying it."""
    return f"{member_id}/{instance}"


def _member(m: sa.RowMapping) -> MemberRow:
    return MemberRow(
        member_id=m["member_id"],
        instance=m["instance"],
        epoch=m["epoch"],
        version=m["version"],
        joined_at=m["joined_at"],
        runs_from=m["runs_from"],
        renewed_at=m["renewed_at"],
        lease_until=m["lease_until"],
        owned_checks=m["owned_checks"],
    )
