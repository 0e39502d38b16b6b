"""Which scheduled (check × environment) pairs this agent runs: all of them when it is
alone; in a cluster (synth.cluster.membership), its rendezvous share of them while its
lease holds. The scheduler and the per-check metrics follow the share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from synth.agent.scheduler import JobKey
from synth.cluster.membership import Membership, owned
from synth.model import CheckSpec

log = logging.getLogger("synth.cluster")

Pair = tuple[CheckSpec, str]


class CheckSharing:
    """The share of the scheduled pairs this agent runs; `apply(pairs)` is called with it
    whenever it changes (and once per `set_pairs`)."""

    def __init__(
        self,
        membership: Membership | None,
        apply: Callable[[Sequence[Pair]], None],
        on_rebalance: Callable[[], None],
    ) -> None:
        self.membership = membership
        self._apply = apply
        self._on_rebalance = on_rebalance
        self._pairs: dict[str, Pair] = {}
        self._owned: frozenset[str] = frozenset()
        self._basis: tuple[tuple[str, ...], frozenset[str]] | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def owned_count(self) -> int:
        return len(self._owned)

    @property
    def scheduled_count(self) -> int:
        return len(self._pairs)

    def members(self) -> int:
        """Live members as last seen (1: alone)."""
        return len(self.membership.members()) if self.membership is not None else 1

    def set_pairs(self, pairs: Sequence[Pair]) -> None:
        """The pairs the agent schedules (start, reload)."""
        self._pairs = {JobKey(check.name, env).job_id: (check, env) for check, env in pairs}
        self._basis = None
        self.refresh(force=True)

    def may_run(self, check: str, env: str) -> bool:
        """Whether a due run of `check` in `env` is this agent's to run now."""
        if self.membership is None:
            return True
        return self.membership.may_run() and JobKey(check, env).job_id in self._owned

    def refresh(self, *, force: bool = False) -> None:
        """Recompute the share from the membership's view (called on every view and at
        each pending hand-over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        keys = frozenset(self._pairs)
        if self.membership is None:
            share = keys
        else:
            now = time.monotonic()
            active = tuple(sorted(self.membership.active(now)))
            if self._basis == (active, keys) and not force:
                share = self._owned
            else:
                share = frozenset(owned(sorted(keys), self.membership.member_id, active))
                self._basis = (active, keys)
            self._arm(self.membership.next_change(now), now)
        if share == self._owned and not force:
            return
        if share != self._owned and self.membership is not None:
            self._on_rebalance()
            log.info(
                "cluster share changed",
                extra={"owned": len(share), "of": len(keys), "members": self.members()},
            )
        self._owned = share
        self._apply([self._pairs[key] for key in sorted(share)])

    def _arm(self, at: float | None, now: float) -> None:
        if at is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._timer = loop.call_later(max(at - now, 0.0), self.refresh)
