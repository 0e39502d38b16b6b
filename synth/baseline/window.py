"""Recent production latency per check × environment × step: a bounded window of the
last N passed-step durations, so a p95 is judged on many runs, not one sample."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from synth.model import RunResult, Status

MAX_SERIES = 10_000


@dataclass(frozen=True, slots=True)
class WindowStats:
    p50_s: float
    p95_s: float
    samples: int


class RecentLatency:
    """The last `size` durations of each step; at most MAX_SERIES series (least recently
    updated dropped first)."""

    def __init__(self, size: int = 50) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._series: OrderedDict[tuple[str, str, str], deque[float]] = OrderedDict()
        self._deploys: dict[tuple[str, str], str] = {}

    def add(self, result: RunResult) -> None:
        """Record a run's passed steps. The first run of a new deploy of the check starts
        the window afresh: the old version's latency says nothing about the new one."""
        if result.deploy is not None:
            key = (result.check, result.environment)
            if self._deploys.get(key) != result.deploy.deploy_id:
                self._deploys[key] = result.deploy.deploy_id
                self.reset(result.check, result.environment)
        for step in result.steps:
            if step.status is not Status.PASSED:
                continue
            series_key = (result.check, result.environment, step.name)
            series = self._series.get(series_key)
            if series is None:
                series = self._series[series_key] = deque(maxlen=self.size)
                while len(self._series) > MAX_SERIES:
                    self._series.popitem(last=False)
            else:
                self._series.move_to_end(series_key)
            series.append(step.duration_s)

    def reset(self, check: str, environment: str) -> None:
        for key in [k for k in self._series if k[0] == check and k[1] == environment]:
            del self._series[key]

    def stats(self, check: str, environment: str, step: str) -> WindowStats | None:
        series = self._series.get((check, environment, step))
        if not series:
            return None
        ordered = sorted(series)
        return WindowStats(_rank(ordered, 0.5), _rank(ordered, 0.95), len(ordered))


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile (the same rank rule as the sketch)."""
    return ordered[min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)]
