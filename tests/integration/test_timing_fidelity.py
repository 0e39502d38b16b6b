"""Reported latency is the target's, not the monitor's: a response that waits in the
kernel while synth's event loop is busy is timed by when it arrived, not when synth got
round to it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import synth
from synth.model import RunResult, Status

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, StartServer, StartTlsServer

SERVER_DELAY_S = 0.05
LOOP_BLOCKED_S = 0.4


def slow_ok(ex: Exchange) -> None:
    if ex.pause(SERVER_DELAY_S):
        ex.respond(200, {"ok": True})


def blocked_loop_check() -> Any:
    @synth.check(service="web", timeout="5s")
    async def busy_neighbour(flow: synth.Flow) -> None:
        async def hog() -> None:
            await asyncio.sleep(0.01)  # let the request go out first
            time.sleep(LOOP_BLOCKED_S)  # a neighbour blocking the loop meanwhile

        neighbour = asyncio.create_task(hog())
        async with flow.step("page"):
            (await flow.get("/slow")).expect_status(200)
        await neighbour

    return busy_neighbour


async def _assert_not_inflated(result: RunResult) -> None:
    assert result.status is Status.PASSED, result.failure
    step = result.steps[0]
    timings = step.requests[0].timings
    # The response arrived after ~SERVER_DELAY_S; synth noticed it only after the
    # neighbour released the loop, LOOP_BLOCKED_S later.
    assert timings.first_byte_s is not None
    assert SERVER_DELAY_S * 0.8 <= timings.first_byte_s <= LOOP_BLOCKED_S / 2, timings
    assert timings.total_s < LOOP_BLOCKED_S / 2, timings
    assert step.duration_s < LOOP_BLOCKED_S / 2, step
    assert result.duration_s >= LOOP_BLOCKED_S  # the run itself did take that long


async def test_plain_http_latency_excludes_a_blocked_loop(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = http_server({"/slow": slow_ok})
    await _assert_not_inflated(await run_check(settings_for(server.base_url), blocked_loop_check()))


async def test_tls_latency_excludes_a_blocked_loop(
    tls_server: StartTlsServer, ca_file: Path, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = tls_server({"/slow": slow_ok})
    settings = settings_for(server.base_url, tls={"ca_file": str(ca_file)})
    await _assert_not_inflated(await run_check(settings, blocked_loop_check()))
