"""CPU time per run of a one-step synth GET check, against bare httpx2 doing the same
requests, in the same process, against the same private nginx.

Variants, each measured with `time.process_time()` over N sequential runs (bounded in
count and wall time), repeated with the order rotated so no variant always goes first:

- synth          `Runner.run()` of `@synth.check` doing `flow.get("/ok").expect_status(200)`
- peer-fresh     `async with httpx2.AsyncClient(...)` per request: a new pool and connection
                 per request, as synth opens per run (the peer the target is set against)
- peer-keepalive one shared client, connection reused (context only: synth does not do this)
- synth-probe    synth's HTTP layer alone (`new_client` + `exchange` per request): splits
                 synth's cost between the probe and the runner/flow around it
- synth-isolated `Runner.run()` on a worker event-loop thread, as `synth agent` runs every
                 check (`RunWorkers`): the CPU cost of run isolation

Prints the median CPU µs per run and the ratio synth / peer-fresh (target <= 1.3x); over
target (or with --profile), profiles the synth loop and prints where the time goes.

    .venv/bin/python bench/runner_cpu.py [--runs 2000] [--repeats 5] [--budget 60]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import httpx2
from nginx import running_nginx
from workload import (
    peer_client,
    peer_fresh_get,
    peer_ssl_context,
    require_ok,
    require_passed,
    synth_request,
    synth_runner,
    traceparent,
)

from synth.agent.isolation import RunWorkers
from synth.config import TlsSettings
from synth.probes.http import exchange, new_client

TARGET_RATIO = 1.3
WARMUP_RUNS = 200

OneRun = Callable[[], Awaitable[object]]


async def measure(one_run: OneRun, runs: int, budget_s: float) -> tuple[float, int, float]:
    """Run `one_run` up to `runs` times or until `budget_s` of wall time has passed;
    return (CPU seconds per run, runs done, wall seconds per run)."""
    deadline = time.monotonic() + budget_s
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    done = 0
    while done < runs and time.monotonic() < deadline:
        await one_run()
        done += 1
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return cpu / done, done, wall / done


async def bench(base_url: str, runs: int, repeats: int, budget_s: float) -> dict[str, float]:
    runner = synth_runner(base_url)
    request = synth_request()
    context = peer_ssl_context()
    url = base_url + "/ok"

    async def synth_run() -> object:
        return require_passed(await runner.run(request))

    async def fresh_run() -> object:
        return await peer_fresh_get(context, url)

    synth_context = runner._ssl_contexts.get(TlsSettings())
    user_agent = runner.settings.runner.user_agent

    async def probe_run() -> object:
        async with new_client(synth_context, user_agent=user_agent) as client:
            result = await exchange(
                client,
                "GET",
                url,
                headers={"traceparent": traceparent()[0]},
                timeout_s=10.0,
                max_body_bytes=1024 * 1024,
            )
        if result.status_code != 200:
            raise RuntimeError(f"probe got HTTP {result.status_code}")
        return result

    workers = RunWorkers(1)

    async def isolated_run() -> object:
        return require_passed(await workers.run(runner.run(request), label="bench"))

    async with peer_client(context) as shared:

        async def keepalive_run() -> object:
            return require_ok(await shared.get(url))

        variants: dict[str, OneRun] = {
            "synth": synth_run,
            "peer-fresh": fresh_run,
            "peer-keepalive": keepalive_run,
            "synth-probe": probe_run,
            "synth-isolated": isolated_run,
        }
        for one_run in variants.values():  # warm imports, caches and the CA bundle
            await measure(one_run, WARMUP_RUNS, budget_s)

        cpu: dict[str, list[float]] = {name: [] for name in variants}
        wall: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        print(f"{'repeat':>6}  " + "  ".join(f"{n:>22}" for n in names) + "  synth/peer-fresh")
        for rep in range(repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            row: dict[str, str] = {}
            for name in order:
                per_run, done, wall_per_run = await measure(variants[name], runs, budget_s)
                cpu[name].append(per_run)
                wall[name].append(wall_per_run)
                row[name] = f"{per_run * 1e6:8.1f} µs ({done} runs)"
            pair = cpu["synth"][-1] / cpu["peer-fresh"][-1]
            print(f"{rep + 1:>6}  " + "  ".join(f"{row[n]:>22}" for n in names) + f"  {pair:.2f}x")
    await workers.close()

    medians = {name: statistics.median(values) for name, values in cpu.items()}
    medians["paired"] = statistics.median(
        a / b for a, b in zip(cpu["synth"], cpu["peer-fresh"], strict=True)
    )
    print()
    print(f"{'variant':<16}{'median CPU/run':>16}{'min CPU/run':>14}{'median wall/run':>17}")
    for name in names:
        wall_median = statistics.median(wall[name])
        print(
            f"{name:<16}{medians[name] * 1e6:>13.1f} µs{min(cpu[name]) * 1e6:>11.1f} µs"
            f"{wall_median * 1e6:>14.1f} µs"
        )
    return medians


async def profile_synth(base_url: str, runs: int, budget_s: float) -> str:
    runner = synth_runner(base_url)
    request = synth_request()

    async def synth_run() -> object:
        return require_passed(await runner.run(request))

    await measure(synth_run, WARMUP_RUNS, budget_s)
    profiler = cProfile.Profile()
    profiler.enable()
    _, done, _ = await measure(synth_run, runs, budget_s)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(
        f"cProfile of {done} synth runs (times are totals over all runs, with profiler "
        "overhead; a coroutine's ncalls counts each resumption)\n\n"
        "--- top 25 by cumulative time, synth/ and httpx2/httpcore2 only ---\n"
    )
    stats.sort_stats("cumulative").print_stats(r"(/synth/|/httpx2/|/httpcore2/)", 25)
    out.write("\n--- top 20 by own (tottime) time, anywhere ---\n")
    stats.sort_stats("tottime").print_stats(20)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--budget", type=float, default=60.0, help="max wall s per measurement")
    parser.add_argument(
        "--profile",
        choices=["auto", "always", "never"],
        default="auto",
        help="profile the synth loop (auto: only when over target)",
    )
    args = parser.parse_args()
    print(
        f"runner CPU: one-step GET check, {args.runs} sequential runs x {args.repeats} repeats "
        f"(each bounded by {args.budget:g} s), CPU = time.process_time() of this process"
    )
    print(
        f"python {sys.version.split()[0]}, httpx2 {httpx2.__version__}, tracer IdTracer "
        "(default), nginx: 1 worker on 127.0.0.1\n"
    )
    with running_nginx() as nginx:
        medians = asyncio.run(bench(nginx.base_url, args.runs, args.repeats, args.budget))
        ratio = medians["synth"] / medians["peer-fresh"]
        over = ratio > TARGET_RATIO
        print()
        print(
            f"ratio synth / peer-fresh     = {ratio:.2f}x  (target <= {TARGET_RATIO}x: "
            f"{'OVER' if over else 'met'})"
        )
        print(
            f"  median of per-repeat ratios = {medians['paired']:.2f}x  (robust to drift "
            "between repeats on a shared machine)"
        )
        keepalive = medians["synth"] / medians["peer-keepalive"]
        print(f"ratio synth / peer-keepalive = {keepalive:.2f}x  (context only)")
        probe = medians["synth-probe"] - medians["peer-fresh"]
        around = medians["synth"] - medians["synth-probe"]
        print(
            f"synth's extra CPU per run vs peer-fresh: probe layer (new_client + exchange) "
            f"{probe * 1e6:+.0f} µs, runner/flow around it {around * 1e6:+.0f} µs"
        )
        isolation = medians["synth-isolated"] - medians["synth"]
        print(
            f"run isolation (worker loop thread, as in the agent): {isolation * 1e6:+.0f} µs "
            f"per run ({isolation / medians['synth']:+.0%})"
        )
        if args.profile == "always" or (args.profile == "auto" and over):
            print()
            print(asyncio.run(profile_synth(nginx.base_url, min(args.runs, 1000), args.budget)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
