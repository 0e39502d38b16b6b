"""The agent's background loops that only wait and retry: alerting catching up with the
store, retention, and the retries other locations ask of this one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from synth.store import Store, StoreError

if TYPE_CHECKING:
    from synth.alerting.engine import AlertEngine

RETENTION_EVERY_S = 3600.0


async def alerts_catch_up(alerts: AlertEngine, every_s: float) -> None:
    """Read back flakiness and apply the run results alerting could not store (the store
    was away), every `every_s`; read the silences again (synth_check_silenced)."""
    while True:
        await asyncio.sleep(every_s)
        await alerts.refresh_silences()
        await alerts.seed_flakiness()
        await alerts.flush()


async def retention(store: Callable[[], Store | None]) -> None:
    """Prune old runs hourly while the store is usable."""
    while True:
        await asyncio.sleep(RETENTION_EVERY_S)
        current = store()
        if current is not None:
            with contextlib.suppress(StoreError):
                await current.prune()
