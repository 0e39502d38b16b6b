"""`synth demo`: the product in one command, with no external services.

Starts the demo shop on loopback, runs the example checks against it (they pass), switches
a fault on and runs them again, so a newcomer sees what a failure report looks like; then
starts the agent, announces a good deploy and a broken one, and prints both verdicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from synth.agent.app import Agent, LoadedState
from synth.agent.auth import TOKEN_ENV
from synth.agent.server import ApiServer, bind
from synth.agent.trigger import TriggerArgs, trigger
from synth.batch import run_checks
from synth.checks.loader import load_checks
from synth.config import Settings
from synth.demo.shop import ShopThread, run_in_thread
from synth.model import CheckSpec, Phase, RunResult
from synth.outputs.artifact_links import file_link
from synth.outputs.metrics import Metrics
from synth.outputs.report import TerminalReporter
from synth.outputs.sinks import OutputPlan, RunLog, build_sinks
from synth.runner import Runner

DEMO_ENV = "demo"
DEMO_FAULT = {"status": 503, "path_prefix": "/api/checkout"}
DEMO_TOKEN = "demo-token-not-a-secret"


def demo_settings(base_url: str, state_dir: str) -> Settings:
    """An environment named `demo` pointing at the demo shop; the agent's state in
    `state_dir`."""
    return Settings.model_validate(
        {
            "location": "demo",
            "server": {"tokens": [{"value": DEMO_TOKEN}]},
            "store": {"url": f"sqlite+aiosqlite:///{state_dir}/synth.db"},
            "environments": {
                DEMO_ENV: {
                    "services": {"shop": {"base_url": base_url}},
                    "secrets": {"shop_password": {"value": "demo-password"}},
                }
            },
            "runner": {"retry_delay": "200ms"},
        }
    )


def run_walkthrough(
    *, checks_dir: str | None, color: bool | None, keep_running: bool = True
) -> int:
    """Run the walkthrough; returns 0 when everything behaved as expected."""
    directory = Path(checks_dir or "checks")
    loaded = load_checks([directory])
    for problem in loaded.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not loaded.checks:
        print(f"synth demo: no checks found in {directory}/", file=sys.stderr)
        return 2
    with run_in_thread() as shop, tempfile.TemporaryDirectory(prefix="synth-demo-") as state_dir:
        settings = demo_settings(shop.base_url, state_dir)
        runner = Runner(settings)
        _banner(f"1/4  The demo shop is up at {shop.base_url} — `synth run` of the example checks")
        healthy = _run(runner, settings, loaded.checks, color)
        _banner(
            "2/4  Breaking checkout: the shop now answers 503 on /api/checkout "
            f"(fault switch: {DEMO_FAULT})"
        )
        shop.set_faults(**DEMO_FAULT)
        broken = _run(runner, settings, loaded.checks, color)
        shop.clear_faults()
        ok = all(r.passed for r in healthy) and not all(r.passed for r in broken)
        state = LoadedState(settings, loaded.checks, (), datetime.now(UTC))
        ok = asyncio.run(_agent_rounds(state, directory, shop, keep_running)) and ok
    if not ok:
        print("synth demo: the walkthrough did not behave as expected (see above)")
    return 0 if ok else 1


async def _agent_rounds(
    state: LoadedState, directory: Path, shop: ShopThread, keep_running: bool
) -> bool:
    listen = bind("127.0.0.1", 0)
    api = f"http://127.0.0.1:{listen.getsockname()[1]}"
    # Verdicts then link the agent's pages of the deploy and its failing runs.
    server_settings = state.settings.server.model_copy(update={"public_url": api})
    settings = state.settings.model_copy(update={"server": server_settings})
    state = dataclasses.replace(state, settings=settings)
    agent = Agent(state, config_path=None, check_paths=[str(directory)])
    server = ApiServer(agent, listen)
    await agent.start()
    serving = asyncio.create_task(server.serve())
    try:
        _banner(f"3/4  `synth agent` is running: pages {api}/ui/  API {api}  metrics {api}/metrics")
        print("Checks run on their schedules. A CD pipeline announces a deploy:")
        print(f"  synth trigger --agent {api} --service shop --env demo --version 1.4.2 --wait\n")
        passed = await _deploy(api, "1.4.2")
        _banner(f"4/4  Version 1.4.3 breaks checkout ({DEMO_FAULT}); the pipeline asks again")
        shop.set_faults(**DEMO_FAULT)
        failed = await _deploy(api, "1.4.3")
        shop.clear_faults()
        ok = passed == 0 and failed == 1
        if keep_running and ok:
            print(f"\nThe agent keeps running: pages {api}/ui/ (checks, runs, deploys)")
            print(f"  API {api}  metrics {api}/metrics  (Ctrl-C to stop)")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return ok
    finally:
        await agent.stop()
        await server.shutdown()
        await asyncio.gather(serving, return_exceptions=True)


async def _deploy(api: str, version: str) -> int:
    args = TriggerArgs(
        service="shop", env=DEMO_ENV, version=version, agent=api, wait=True, timeout_s=60
    )
    # trigger() is a blocking CLI client: keep it off the agent's event loop.
    return await asyncio.to_thread(_trigger_with_token, args)


def _trigger_with_token(args: TriggerArgs) -> int:
    os.environ[TOKEN_ENV] = DEMO_TOKEN
    return trigger(args)


def _run(
    runner: Runner, settings: Settings, checks: Sequence[CheckSpec], color: bool | None
) -> list[RunResult]:
    runs = RunLog(order=[check.name for check in checks])
    sinks = build_sinks(
        OutputPlan(
            metrics=Metrics(settings=settings.metrics),
            runs=runs,
            terminal=TerminalReporter(
                sys.stdout,
                color=color,
                artifact_link=file_link(settings.browser.artifacts_dir),
            ),
            artifact_dir=settings.browser.artifacts_dir,
        )
    )

    async def run_all() -> None:
        await run_checks(
            runner,
            checks,
            DEMO_ENV,
            phase=Phase.ADHOC,
            concurrency=settings.runner.concurrency,
            sink=sinks,
        )
        await sinks.close()

    asyncio.run(run_all())
    return runs.results


def _banner(text: str) -> None:
    print(f"\n== {text}\n", file=sys.stdout)
