"""Jitter spreads runs without stretching the interval: `every: 10s` with 1 s of jitter
runs every 10 s on average (APScheduler's own trigger drifts to 10.5 s)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from synth.agent.scheduler import GridIntervalTrigger

START = datetime(2026, 1, 1, tzinfo=UTC)


def fire_times(trigger: GridIntervalTrigger, count: int) -> list[float]:
    times: list[float] = []
    previous = None
    now = START - timedelta(seconds=1)
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        assert fire is not None
        times.append(fire.timestamp())
        previous, now = fire, fire
    return times


def test_jittered_runs_stay_on_the_interval_grid() -> None:
    random.seed(7)
    trigger = GridIntervalTrigger(seconds=10, start_date=START, jitter=1.0, timezone=UTC)
    times = fire_times(trigger, 1000)
    start = START.timestamp()
    offsets = [t - (start + k * 10) for k, t in enumerate(times)]
    assert all(0 <= o < 1.0 for o in offsets)  # each run: its grid point plus its jitter
    assert 0.3 < sum(offsets) / len(offsets) < 0.7  # jitter really spreads them
    mean_gap = (times[-1] - times[0]) / (len(times) - 1)
    assert abs(mean_gap - 10.0) < 0.01  # no drift: 1,000 runs in 10,000 s, not 10,500


def test_without_jitter_it_is_a_plain_interval() -> None:
    trigger = GridIntervalTrigger(seconds=10, start_date=START, timezone=UTC)
    times = fire_times(trigger, 5)
    assert [t - times[0] for t in times] == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_a_late_wakeup_skips_to_the_next_grid_point() -> None:
    random.seed(3)
    trigger = GridIntervalTrigger(seconds=10, start_date=START, jitter=1.0, timezone=UTC)
    previous = START + timedelta(seconds=0.4)
    later = START + timedelta(seconds=35)
    fire = trigger.get_next_fire_time(previous, later)
    assert fire is not None
    # APScheduler asks again (coalescing) until the time is past `now`: grid 10, 20, 30, 40.
    grid = [(fire.timestamp() - START.timestamp()) // 10]
    while fire is not None and fire <= later:
        fire = trigger.get_next_fire_time(fire, later)
        assert fire is not None
        grid.append((fire.timestamp() - START.timestamp()) // 10)
    assert grid == [1.0, 2.0, 3.0, 4.0]
