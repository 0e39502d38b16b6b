"""Run many checks at once with bounded concurrency, reporting each result as it lands."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from synth.browser.engine import close_running_loop_engine
from synth.model import CheckSpec, DeployContext, Phase, RunRequest, RunResult
from synth.outputs.sinks import ResultSink
from synth.runner import Runner


async def run_checks(
    runner: Runner,
    checks: Sequence[CheckSpec],
    environment: str,
    *,
    phase: Phase,
    concurrency: int,
    deploy: DeployContext | None = None,
    sink: ResultSink | None = None,
) -> list[RunResult]:
    """Run every check once against `environment` (the runner warmed up first), each
    result published to `sink` as it lands; results come back in check order."""
    await runner.warm_up()
    gate = asyncio.Semaphore(concurrency)
    location = runner.settings.location

    async def one(check: CheckSpec) -> RunResult:
        async with gate:
            result = await runner.run(
                RunRequest(
                    check=check,
                    environment=environment,
                    phase=phase,
                    location=location,
                    deploy=deploy,
                )
            )
        if sink is not None:
            await sink.publish(result)
        return result

    try:
        return list(await asyncio.gather(*(one(check) for check in checks)))
    finally:
        await close_running_loop_engine()  # the browser of this loop, if a check used one
