"""Run isolation: check code that blocks or spins cannot stall the agent's loop or other
checks, and the watchdog names the check and the line it is stuck on."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator

import pytest

from synth.agent.isolation import RunWorkers

HERE = frozenset({__file__})
BLOCK_S = 0.4


@pytest.fixture
async def workers() -> AsyncIterator[tuple[RunWorkers, list[tuple[str, float]]]]:
    blocked: list[tuple[str, float]] = []
    pool = RunWorkers(4, on_blocked=lambda check, seconds: blocked.append((check, seconds)))
    yield pool, blocked
    await pool.close()


async def sleeps_synchronously() -> str:
    time.sleep(BLOCK_S)  # the mistake the watchdog is for
    return "done"


async def spins() -> int:
    deadline = time.perf_counter() + BLOCK_S
    count = 0
    while time.perf_counter() < deadline:
        count += 1
    return count


async def awaits_politely() -> str:
    await asyncio.sleep(BLOCK_S)
    return "done"


async def test_blocking_check_is_named_with_its_line_and_counted(
    workers: tuple[RunWorkers, list[tuple[str, float]]], caplog: pytest.LogCaptureFixture
) -> None:
    pool, blocked = workers
    with caplog.at_level(logging.WARNING, logger="synth.isolation"):
        assert await pool.run(sleeps_synchronously(), label="slow-check", source_files=HERE) == (
            "done"
        )
        for _ in range(40):  # the watchdog reports the episode when the loop answers again
            if blocked:
                break
            await asyncio.sleep(0.05)
    assert [check for check, _ in blocked] == ["slow-check"]
    assert blocked[0][1] >= BLOCK_S * 0.5
    messages = [r.getMessage() for r in caplog.records]
    assert any(
        "slow-check" in m and f"{__file__}:" in m and "time.sleep(BLOCK_S)" in m for m in messages
    ), messages


async def test_blocking_check_does_not_delay_other_checks_or_the_agent_loop(
    workers: tuple[RunWorkers, list[tuple[str, float]]],
) -> None:
    pool, _ = workers
    blocker = asyncio.create_task(pool.run(sleeps_synchronously(), label="slow-check"))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await pool.run(asyncio.sleep(0.05), label="neighbour")
    neighbour_s = time.perf_counter() - started
    lag = await _max_loop_lag(until=blocker)
    assert neighbour_s < BLOCK_S / 2, neighbour_s
    assert lag < BLOCK_S / 2, lag


async def test_cpu_bound_check_leaves_the_agent_loop_responsive(
    workers: tuple[RunWorkers, list[tuple[str, float]]],
) -> None:
    pool, blocked = workers
    spinner = asyncio.create_task(pool.run(spins(), label="spinner", source_files=HERE))
    lag = await _max_loop_lag(until=spinner)
    assert await spinner > 0
    # Without isolation the loop would stall for the whole spin (BLOCK_S); with it the
    # loop gets the GIL back at each switch interval.
    assert lag < BLOCK_S / 2, lag
    for _ in range(40):
        if blocked:
            break
        await asyncio.sleep(0.05)
    assert [check for check, _ in blocked] == ["spinner"]


async def test_a_check_awaiting_io_is_not_reported(
    workers: tuple[RunWorkers, list[tuple[str, float]]], caplog: pytest.LogCaptureFixture
) -> None:
    pool, blocked = workers
    with caplog.at_level(logging.WARNING, logger="synth.isolation"):
        await pool.run(awaits_politely(), label="polite", source_files=HERE)
        await asyncio.sleep(0.2)
    assert blocked == []
    assert not [r for r in caplog.records if "polite" in r.getMessage()]


async def _max_loop_lag(*, until: asyncio.Task[object], tick_s: float = 0.01) -> float:
    """The longest this loop overslept a short sleep while `until` ran."""
    worst = 0.0
    for _ in range(1000):
        if until.done():
            break
        before = time.perf_counter()
        await asyncio.sleep(tick_s)
        worst = max(worst, time.perf_counter() - before - tick_s)
    await until
    return worst


async def test_inline_runs_stay_on_the_callers_loop_within_the_concurrency_bound() -> None:
    pool = RunWorkers(1)
    try:

        async def where() -> int:
            await asyncio.sleep(0.05)
            return threading.get_ident()

        first = asyncio.create_task(pool.run(where(), label="a", inline=True))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(pool.run(where(), label="b", inline=True))
        started = time.perf_counter()
        assert await first == threading.get_ident()
        assert await second == threading.get_ident()
        # One slot: the second waited for the first, then took its own 50 ms.
        assert time.perf_counter() - started >= 0.08
        assert pool.size == 0  # no worker thread was started for them
        assert await pool.run(where(), label="c") != threading.get_ident()
        assert pool.size == 1
    finally:
        await pool.close()
