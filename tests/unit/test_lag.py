"""LagRecorder: a poller sees every sample once, and is told how many it missed."""

from __future__ import annotations

from synth.agent.lag import LagRecorder


def test_since_returns_each_sample_once() -> None:
    lags = LagRecorder(size=10)
    assert lags.since(0) == (0, 0, [])
    for value in (0.1, 0.2, 0.3):
        lags.add(value)
    assert lags.since(0) == (3, 0, [0.1, 0.2, 0.3])
    assert lags.since(2) == (3, 0, [0.3])
    assert lags.since(3) == (3, 0, [])
    assert lags.since(99) == (3, 0, [])


def test_a_slow_reader_is_told_what_it_missed() -> None:
    lags = LagRecorder(size=4)
    for n in range(10):
        lags.add(float(n))
    count, missed, samples = lags.since(3)
    assert (count, missed, samples) == (10, 3, [6.0, 7.0, 8.0, 9.0])
