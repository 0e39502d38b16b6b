"""A job submitted just before the scheduler shuts down still runs (and sees the agent
stopping) instead of being cancelled before its first step, which APScheduler logged as
`Error running job ... CancelledError` (seen in CI at an agent's SIGTERM)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from synth.agent.scheduler import RunsToCompletion


async def test_a_submitted_job_survives_shutdown(caplog: pytest.LogCaptureFixture) -> None:
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    executor = RunsToCompletion()
    scheduler = AsyncIOScheduler(timezone=UTC, executors={"default": executor})
    scheduler.start(paused=True)
    scheduled = scheduler.add_job(job, "interval", seconds=3600)
    with caplog.at_level(logging.ERROR, logger="apscheduler"):
        executor.submit_job(scheduled, [datetime.now(UTC)])
        scheduler.shutdown(wait=False)  # in the same loop step: the job has not started
        await asyncio.wait_for(ran.wait(), timeout=5)
        await asyncio.sleep(0)  # the executor's done-callback runs on the next step
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
