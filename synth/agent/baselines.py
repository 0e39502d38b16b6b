"""The agent's side of baselines: compare each scheduled or deploy run in production with
the pre-prod baseline of its check, keeping a window of recent production latency.

Baselines are read from the store and cached for CACHE_TTL_S (a `POST /v1/baselines`
clears the cache of the checks it touched). Without a store, or with `baseline.from_env`
unset, runs pass through unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from synth.baseline.compare import compare, with_findings
from synth.baseline.record import StepBaseline, effective
from synth.baseline.window import RecentLatency
from synth.config import BaselineSettings
from synth.model import Phase, RunResult
from synth.outputs.metrics import Metrics
from synth.store import Store, StoreError

log = logging.getLogger("synth.baseline")

CACHE_TTL_S = 30.0
COMPARED_PHASES = frozenset({Phase.SCHEDULED, Phase.DEPLOY})


class BaselineComparator:
    """Turns runner results into results with baseline findings."""

    def __init__(
        self,
        settings: BaselineSettings,
        metrics: Metrics,
        store: Callable[[], Store | None],
    ) -> None:
        self.settings = settings
        self._metrics = metrics
        self._store = store
        self.recent = RecentLatency(settings.window)
        self._cache: dict[tuple[str, str], tuple[float, dict[str, StepBaseline]]] = {}

    def reconfigure(self, settings: BaselineSettings) -> None:
        """New settings on reload; the window survives unless its size changed."""
        if settings.window != self.settings.window:
            self.recent = RecentLatency(settings.window)
        self.settings = settings
        self._cache.clear()

    def invalidate(self, checks: set[str] | None = None) -> None:
        """Forget cached baselines (of `checks`, or all)."""
        for key in list(self._cache):
            if checks is None or key[0] in checks:
                del self._cache[key]

    async def apply(self, result: RunResult) -> RunResult:
        """`result`, or a new result carrying the findings of its comparison."""
        source = self.settings.from_env
        if source is None or result.phase not in COMPARED_PHASES or result.environment == source:
            return result
        settings = self.settings.for_check(result.check)
        if not settings.enabled:
            return result
        self.recent.add(result)
        baselines = await self._baselines(result.check, source, settings.min_samples)
        comparison = compare(
            result,
            baselines,
            lambda step: self.recent.stats(result.check, result.environment, step),
            settings,
        )
        for step, samples in comparison.samples.items():
            labels = (
                result.check,
                result.environment,
                result.location,
                self._metrics.step_label(result.check, step),
            )
            self._metrics.baseline_compared(labels, samples, comparison.ratios.get(step))
        return with_findings(result, comparison.findings)

    async def _baselines(self, check: str, env: str, min_samples: int) -> dict[str, StepBaseline]:
        key = (check, env)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached[1]
        store = self._store()
        if store is None:
            return cached[1] if cached else {}
        try:
            rows = await store.list_baselines(check=check, env=env)
        except StoreError as exc:
            self._metrics.store_error("list_baselines")
            log.warning("cannot read baselines: %s", exc)
            return cached[1] if cached else {}
        chosen = effective(rows, min_samples)
        self._cache[key] = (now, chosen)
        return chosen
