"""The worker pool's gate: with every worker busy, urgent runs (API, deploys) go first."""

from __future__ import annotations

import asyncio

from synth.agent.isolation import _PriorityGate


async def test_urgent_waiters_go_first_each_in_order() -> None:
    gate = _PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot(False):
            await release.wait()

    async def waiter(name: str, urgent: bool) -> None:
        async with gate.slot(urgent):
            order.append(name)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [
        asyncio.create_task(waiter(name, urgent))
        for name, urgent in [("a", False), ("b", False), ("u1", True), ("u2", True)]
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["u1", "u2", "a", "b"]


async def test_a_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    gate = _PriorityGate(1)
    release = asyncio.Event()

    async def holder() -> None:
        async with gate.slot(False):
            await release.wait()

    async def waiter() -> None:
        async with gate.slot(True):
            pass

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    await held
    await asyncio.gather(cancelled, return_exceptions=True)
    # One slot, free again: two sequential users both get it at once.
    for _ in range(2):
        async with asyncio.timeout(1), gate.slot(False):
            pass
    assert gate._free == 1
