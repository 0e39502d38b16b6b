"""A member's lease in its cluster, and who owns what.

Agents sharing one PostgreSQL store and one `location` form a cluster. Each keeps a lease
row (synth.store.cluster), renewed every lease/3 with the database's clock. The live members
are the rows whose lease has not run out; each (check × environment) belongs to one of them
by rendezvous hashing (synth.cluster.rendezvous), so a join or a leave moves ~1/N of them.

Why no check runs twice:
- **Fencing.** A member runs nothing once `lease - margin` has passed (monotonic clock)
  since it *sent* its last successful renewal. The database set that lease's end later
  than that (it read its clock after the request arrived), so the member has stopped
  before anyone else may consider it gone. A renewal that finds its epoch replaced or its
  lease expired (a partition, a long GC pause, SIGSTOP) means a new epoch: join again.
- **Joining.** A joiner's row says it runs from `runs_from` = join + one renewal period +
  margin (database clock). The others read it within one renewal period and keep running
  its share until just before `runs_from`; the joiner starts at it. Hand-over, no overlap.
- **Leaving.** A member that dies is taken out when its lease runs out, after which it
  has been fenced for `margin` already; one that stops gracefully deletes its row and the
  others take its share at their next renewal.
- **Due times** come from the check (synth.agent.scheduler), not from the member, so
  a moved check keeps its grid and no due time runs on two members.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from synth.cluster.rendezvous import owner
from synth.store import StoreError
from synth.store.cluster import ClusterTable, ClusterView, owner_token

log = logging.getLogger("synth.cluster")


@dataclass(frozen=True, slots=True)
class Member:
    """A live member as this one sees it: it runs checks from `runs_from` (monotonic)."""

    member_id: str
    runs_from: float


@dataclass(frozen=True, slots=True)
class Timing:
    """The lease and the times derived from it (seconds)."""

    lease: float

    @property
    def renew(self) -> float:
        return self.lease / 3

    @property
    def margin(self) -> float:
        """Kept between a member's fencing and its lease's end, and around hand-overs."""
        return min(max(self.lease * 0.1, 0.25), 2.0)

    @property
    def settle(self) -> float:
        """How long a joiner waits before it runs: every member has read it by then."""
        return self.renew + 2 * self.margin


class Membership:
    """This agent's membership: `run()` joins and renews until `leave()`; `members(now)`
    is the cluster as last read; `may_run()` is false while fenced."""

    def __init__(
        self,
        table: Callable[[], ClusterTable | None],
        *,
        location: str,
        member_id: str,
        version: str,
        lease_s: float,
        on_view: Callable[[], None],
        on_lease_lost: Callable[[], None],
        owned_count: Callable[[], int],
    ) -> None:
        self._table = table
        self.location = location
        self.member_id = member_id
        self.instance = secrets.token_hex(8)
        self._version = version
        self.timing = Timing(lease_s)
        self._on_view = on_view
        self._on_lease_lost = on_lease_lost
        self._owned_count = owned_count
        self._epoch: int | None = None
        self._fenced_at = 0.0  # monotonic: may run checks until then
        self._members: tuple[Member, ...] = ()
        self._stopping = asyncio.Event()
        self._warned_held = False

    def owner_token(self) -> str:
        """This member instance as deploy records name their verifier."""
        return owner_token(self.member_id, self.instance)

    @property
    def epoch(self) -> int | None:
        return self._epoch

    @property
    def joined(self) -> bool:
        """Holding a lease (a deploy accepted now names a live verifier)."""
        return self._epoch is not None

    def may_run(self) -> bool:
        """Whether this member holds a lease it can vouch for right now."""
        return self._epoch is not None and time.monotonic() < self._fenced_at

    def members(self) -> tuple[Member, ...]:
        """Live members as last read (this one included once joined)."""
        return self._members

    def active(self, now: float) -> list[str]:
        """Ids of the members that run checks at monotonic time `now`."""
        return [m.member_id for m in self._members if m.runs_from <= now]

    def next_change(self, now: float) -> float | None:
        """The next monotonic time a member starts running (a pending hand-over)."""
        pending = [m.runs_from for m in self._members if m.runs_from > now]
        return min(pending) if pending else None

    async def run(self) -> None:
        """Join, then renew every lease/3 until `leave()`; store failures are retried."""
        while not self._stopping.is_set():
            try:
                if self._table() is None:
                    pass  # the store is not open yet: nothing runs until it is
                elif self._epoch is None:
                    await self._join()
                else:
                    await self._renew()
            except StoreError as exc:
                log.warning("cluster lease not renewed: %s", exc)
            self._check_fence()
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.timing.renew)
            except TimeoutError:
                continue

    async def leave(self) -> None:
        """Stop renewing and give the lease up, so the others take the checks now."""
        self._stopping.set()
        epoch, self._epoch = self._epoch, None
        self._fenced_at = 0.0
        table = self._table()
        if epoch is None or table is None:
            return
        try:
            await table.leave(
                location=self.location,
                member_id=self.member_id,
                instance=self.instance,
                epoch=epoch,
            )
        except StoreError as exc:
            log.warning("could not leave the cluster (the lease will run out): %s", exc)

    async def _join(self) -> None:
        table = self._table()
        assert table is not None
        sent = time.monotonic()
        lease = await table.join(
            location=self.location,
            member_id=self.member_id,
            instance=self.instance,
            version=self._version,
            lease_s=self.timing.lease,
            settle_s=self.timing.settle,
        )
        if lease is None:
            if not self._warned_held:
                self._warned_held = True
                log.warning(
                    "cluster member id %r is held by another live agent; waiting for its "
                    "lease to run out (a restart does this once; if it lasts, give each "
                    "agent its own cluster.member_id)",
                    self.member_id,
                )
            return
        self._warned_held = False
        self._epoch = lease.epoch
        self._fenced_at = sent + self.timing.lease - self.timing.margin
        log.info(
            "joined the cluster",
            extra={"member": self.member_id, "epoch": lease.epoch, "location": self.location},
        )
        self._read(lease.view, sent)

    async def _renew(self) -> None:
        table = self._table()
        assert self._epoch is not None
        assert table is not None
        sent = time.monotonic()
        view = await table.renew(
            location=self.location,
            member_id=self.member_id,
            instance=self.instance,
            epoch=self._epoch,
            lease_s=self.timing.lease,
            owned_checks=self._owned_count(),
        )
        if view is None:
            self._lose("the lease had run out or was taken over")
            return
        self._fenced_at = sent + self.timing.lease - self.timing.margin
        self._read(view, sent)

    def _check_fence(self) -> None:
        if self._epoch is not None and time.monotonic() >= self._fenced_at:
            self._lose("no renewal within the lease")

    def _lose(self, why: str) -> None:
        log.error(
            "cluster lease lost (%s): running no checks until joined again",
            why,
            extra={"member": self.member_id, "epoch": self._epoch},
        )
        self._epoch = None
        self._fenced_at = 0.0
        self._members = ()
        self._on_lease_lost()
        self._on_view()

    def _read(self, view: ClusterView, sent: float) -> None:
        """Take the members of `view`, their start times moved onto this process's
        monotonic clock. The database read its clock somewhere between `sent` and now: a
        joiner starts at the latest moment that can be, the others hand its share over
        `margin` before the earliest (a short gap rather than an overlap)."""
        received = time.monotonic()
        members = []
        for row in view.live():
            delay = (row.runs_from - view.now).total_seconds()
            if delay <= 0:
                start = 0.0
            elif row.member_id == self.member_id:
                start = received + delay
            else:
                start = sent + delay - self.timing.margin
            members.append(Member(row.member_id, start))
        self._members = tuple(members)
        self._on_view()


def owned(keys: Sequence[str], member_id: str, members: Sequence[str]) -> set[str]:
    """The keys `member_id` runs among `members` (none when it is not one of them)."""
    if member_id not in members:
        return set()
    return {key for key in keys if owner(key, members) == member_id}
