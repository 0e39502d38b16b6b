"""How an exchange's timestamps become phases: the send phase ends no later than the
response's arrival, so a client that lost the CPU right after its write (on loopback the
write wakes the server, which can take the core) does not count that as the target's."""

from __future__ import annotations

import time

import pytest

from synth.probes.http import _PhaseClock

HEADERS_DONE = "http11.receive_response_headers.complete"


def clock_at(base: float) -> _PhaseClock:
    clock = _PhaseClock(start=base)
    clock.connect_s = 0.0001
    return clock


async def test_a_response_that_arrived_before_the_send_returned_ends_the_send() -> None:
    base = time.perf_counter() - 1.0
    clock = clock_at(base)
    clock.on_send(base + 0.010, base + 0.013)  # the write returned, then 3 ms off the CPU
    clock.on_receive(base + 0.0101)  # the kernel had the response 100 µs after the write
    await clock.on_event(HEADERS_DONE, {})
    timings = clock.timings(end=base + 0.020)
    assert timings.send_s == pytest.approx(0.0001)
    assert timings.first_byte_s == 0.0
    assert timings.body_s == 0.0
    assert timings.total_s == pytest.approx(0.0002)  # connect + send: what the wire shows


async def test_a_response_after_the_send_keeps_both_phases() -> None:
    base = time.perf_counter() - 1.0
    clock = clock_at(base)
    clock.on_send(base + 0.010, base + 0.01005)
    clock.on_receive(base + 0.012)
    await clock.on_event(HEADERS_DONE, {})
    clock.on_receive(base + 0.015)  # the body's last data
    timings = clock.timings(end=base + 0.030)
    assert timings.send_s == pytest.approx(0.00005)
    assert timings.first_byte_s == pytest.approx(0.00195)
    assert timings.body_s == pytest.approx(0.003)
    assert timings.total_s == pytest.approx(0.0051)
