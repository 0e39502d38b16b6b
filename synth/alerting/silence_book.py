"""The silences one agent honours: the config's maintenance windows, and the store's
silences as last read (every `REFRESH_S` at most; at once after this agent's own API
changes them). With the store away, the last list read stays in force."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from synth.alerting.silences import MaintenanceWindow, Silence, Target
from synth.store import Store, StoreError

log = logging.getLogger("synth.alerting")

REFRESH_S = 5.0
"""How stale another agent's new silence may be here (a cluster member's POST)."""


class SilenceBook:
    def __init__(
        self,
        windows: Callable[[], Sequence[MaintenanceWindow]],
        store: Callable[[], Store | None],
    ) -> None:
        self._windows = windows
        self._store = store
        self._stored: list[Silence] = []
        self._read_at: float | None = None

    async def refresh(self, now: datetime, *, force: bool = False) -> None:
        """Read the store's current silences when the last read is older than REFRESH_S
        (or `force`); a store failure keeps the last list."""
        if not force and self._read_at is not None and time.monotonic() - self._read_at < REFRESH_S:
            return
        store = self._store()
        if store is None:
            return
        try:
            self._stored = await store.silences.current(now)
        except StoreError as exc:
            log.warning("silences not read from the store (keeping the last read): %s", exc)
            return
        self._read_at = time.monotonic()

    def added(self, silence: Silence) -> None:
        """This agent stored `silence`: honour it now, before the next read."""
        self._stored = [s for s in self._stored if s.id != silence.id] + [silence]

    def ended(self, silence: Silence) -> None:
        self._stored = [
            replace(s, end=silence.end) if s.id == silence.id else s for s in self._stored
        ]

    def covering(self, target: Target, at: datetime) -> Silence | None:
        """The silence or maintenance window covering `target` at `at`, if any."""
        for silence in self._stored:
            if silence.active_at(at) and silence.matches(target):
                return silence
        for index, window in enumerate(self._windows()):
            occurrence = window.at(index, at)
            if occurrence is not None and occurrence.matches(target):
                return occurrence
        return None

    def listing(self, at: datetime) -> list[Silence]:
        """Active and upcoming: the store's silences not over, and each maintenance
        window's current or next occurrence; by start."""
        listed = [s for s in self._stored if s.end > at]
        for index, window in enumerate(self._windows()):
            occurrence = window.current_or_next(index, at)
            if occurrence is not None:
                listed.append(occurrence)
        return sorted(listed, key=lambda s: (s.start, s.id))
