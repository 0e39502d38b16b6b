"""`synth demo`: the product in one command, with no external services.

Starts the demo shop on loopback, runs the example checks against it (they pass), switches
a fault on and runs them again, so a newcomer sees what a failure report looks like.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from synth.batch import run_checks
from synth.checks.loader import load_checks
from synth.config import Settings
from synth.demo.shop import run_in_thread
from synth.model import CheckSpec, Phase, RunResult
from synth.outputs.report import TerminalReporter
from synth.runner import Runner

DEMO_ENV = "demo"
DEMO_FAULT = {"status": 503, "path_prefix": "/api/checkout"}


def demo_settings(base_url: str) -> Settings:
    """An environment named `demo` pointing at the demo shop."""
    return Settings.model_validate(
        {
            "location": "demo",
            "environments": {
                DEMO_ENV: {
                    "services": {"shop": {"base_url": base_url}},
                    "secrets": {"shop_password": {"value": "demo-password"}},
                }
            },
            "runner": {"retry_delay": "200ms"},
        }
    )


def run_walkthrough(*, checks_dir: str | None, color: bool | None) -> int:
    """Run the walkthrough; returns 0 when it behaved as expected (pass, then fail)."""
    out = sys.stdout
    directory = Path(checks_dir or "checks")
    loaded = load_checks([directory])
    for problem in loaded.problems:
        print(f"error: {problem}", file=sys.stderr)
    if not loaded.checks:
        print(f"synth demo: no checks found in {directory}/", file=sys.stderr)
        return 2
    with run_in_thread() as shop:
        settings = demo_settings(shop.base_url)
        runner = Runner(settings)
        _banner(f"1/2  The demo shop is up at {shop.base_url} — running the example checks")
        healthy = _run(runner, settings, loaded.checks, color)
        _banner(
            "2/2  Breaking checkout: the shop now answers 503 on /api/checkout "
            f"(fault switch: {DEMO_FAULT})"
        )
        shop.set_faults(**DEMO_FAULT)
        broken = _run(runner, settings, loaded.checks, color)
    ok = all(r.passed for r in healthy) and not all(r.passed for r in broken)
    print(file=out)
    if ok:
        print(
            "The first round passed; the second caught the broken step and showed the\n"
            "request, expected vs actual, the response and the trace id. Next: edit\n"
            "checks/, run `.venv/bin/synth run --env local` against your own target.",
            file=out,
        )
    else:
        print("synth demo: the walkthrough did not behave as expected (see above)", file=out)
    return 0 if ok else 1


def _run(
    runner: Runner, settings: Settings, checks: Sequence[CheckSpec], color: bool | None
) -> list[RunResult]:
    reporter = TerminalReporter(sys.stdout, color=color)
    started = time.perf_counter()
    results = asyncio.run(
        run_checks(
            runner,
            checks,
            DEMO_ENV,
            phase=Phase.ADHOC,
            concurrency=settings.runner.concurrency,
            on_result=reporter.run_finished,
        )
    )
    reporter.summary(results, duration_s=time.perf_counter() - started)
    return results


def _banner(text: str) -> None:
    print(f"\n== {text}\n", file=sys.stdout)
