"""Recent production latency per check × environment × step: a bounded window of the
last N passed-step durations, so a p95 is judged on many runs, not one sample.

A new deploy of a check starts its window afresh (the old version's latency says nothing
about the new one), but the old window's figures are kept as `previous`, with a count of
the runs since: a regression found before the deploy stays found until enough runs of
newer versions show otherwise, however often the service deploys meanwhile.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass

from synth.model import RunResult, Status

MAX_SERIES = 10_000
RECENT_RUNS = 3
"""How many of the newest durations a small window is judged on (synth.baseline.compare)."""


@dataclass(frozen=True, slots=True)
class WindowStats:
    """A window's quantiles and size; `recent` holds its newest durations, oldest first."""

    p50_s: float
    p95_s: float
    samples: int
    recent: tuple[float, ...] = ()
    previous: WindowStats | None = None
    """The last full-sized window before a deploy restarted this one."""
    since_previous: int = 0
    """Runs recorded since `previous` ended, across later deploys."""


class _Series:
    __slots__ = ("previous", "since_previous", "values")

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.previous: WindowStats | None = None
        self.since_previous = 0


class RecentLatency:
    """The last `size` durations of each step; at most MAX_SERIES series (least recently
    updated dropped first)."""

    def __init__(self, size: int = 50) -> None:
        if size < 1:
            raise ValueError("window size must be at least 1")
        self.size = size
        self._series: OrderedDict[tuple[str, str, str], _Series] = OrderedDict()
        self._deploys: dict[tuple[str, str], str] = {}

    def add(self, result: RunResult) -> None:
        """Record a run's passed steps. The first run of a new deploy of the check starts
        the window afresh, keeping the old one's figures as `previous`."""
        if result.deploy is not None:
            key = (result.check, result.environment)
            if self._deploys.get(key) != result.deploy.deploy_id:
                self._deploys[key] = result.deploy.deploy_id
                self.restart(result.check, result.environment)
        for step in result.steps:
            if step.status is not Status.PASSED:
                continue
            series_key = (result.check, result.environment, step.name)
            series = self._series.get(series_key)
            if series is None:
                series = self._series[series_key] = _Series(self.size)
                while len(self._series) > MAX_SERIES:
                    self._series.popitem(last=False)
            else:
                self._series.move_to_end(series_key)
            series.values.append(step.duration_s)
            if series.previous is not None:
                series.since_previous += 1

    def restart(self, check: str, environment: str) -> None:
        """Start the check's windows afresh; the current figures become `previous`, unless
        the window is smaller than the `previous` it has (deploys in quick succession):
        then that one stays, and the runs since it keep counting."""
        for key, series in self._series.items():
            if key[0] != check or key[1] != environment:
                continue
            current = _stats(series.values, None, 0)
            if current is not None and (
                series.previous is None or current.samples >= series.previous.samples
            ):
                series.previous, series.since_previous = current, 0
            series.values.clear()

    def stats(self, check: str, environment: str, step: str) -> WindowStats | None:
        series = self._series.get((check, environment, step))
        if series is None:
            return None
        return _stats(series.values, series.previous, series.since_previous)


def _stats(
    values: deque[float], previous: WindowStats | None, since_previous: int
) -> WindowStats | None:
    if not values:
        return None
    ordered = sorted(values)
    recent = tuple(values)[-RECENT_RUNS:]
    return WindowStats(
        _rank(ordered, 0.5), _rank(ordered, 0.95), len(ordered), recent, previous, since_previous
    )


def _rank(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile (the same rank rule as the sketch)."""
    return ordered[min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)]
