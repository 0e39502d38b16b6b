"""How far the durations synth reports sit above the server's own timing of the same
request, with 1, 10 and 50 checks running at once.

For each level K, K concurrent loops run the one-step synth GET check back to back for a
bounded time and count. Every request carries a `traceparent` whose span id is the
`RequestRecord.span_id`, so each one is joined with its line in the private nginx's access
log. Inflation = what synth reported - nginx's `$request_time` for that request, for the
request's `timings.total_s` and for the step's `duration_s`.

The peer, at the same K, is bare httpx2 timing its own `client.get()` (a new client per
request, as synth opens a pool per run) with its own `traceparent`: its inflation is what
any asyncio client on this loop and machine would see. At K=1 the loop is otherwise idle,
so the peer's figure there is the floor.

Caveats printed with the figures: `$request_time` has millisecond resolution (and nginx
caches its clock per event-loop turn), and it starts at the first byte nginx reads, so TCP
connect and loopback transit count as inflation for the peer too. The load generator and
nginx share this machine's cores.

    .venv/bin/python bench/timing_fidelity.py [--levels 1,10,50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]
from nginx import Nginx, running_nginx
from workload import (
    peer_client,
    peer_ssl_context,
    percentile,
    require_ok,
    require_passed,
    synth_request,
    synth_runner,
    traceparent,
)

from synth.model import RunRequest
from synth.runner import Runner

TARGET_LEVEL = 10
TARGET_P99_MS = 2.0
LOG_SETTLE_S = 0.5  # nginx writes its log line after sending the response


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the client saw it."""

    span_id: str
    total_s: float
    step_s: float | None = None


@dataclass(frozen=True, slots=True)
class Level:
    """One side's measurements at one concurrency level."""

    samples: list[Sample]
    wall_s: float
    cpu_s: float
    nginx_cpu_s: float


Sampler = Callable[[], Awaitable[Sample]]


def synth_sampler(runner: Runner, request: RunRequest) -> Sampler:
    async def one() -> Sample:
        result = require_passed(await runner.run(request))
        step = result.steps[0]
        record = step.requests[0]
        return Sample(record.span_id, record.timings.total_s, step.duration_s)

    return one


def peer_sampler(context: ssl.SSLContext, url: str) -> Sampler:
    async def one() -> Sample:
        header, span_id = traceparent()
        async with peer_client(context) as client:
            started = time.perf_counter()
            response = await client.get(url, headers={"traceparent": header})
            elapsed = time.perf_counter() - started
        require_ok(response)
        return Sample(span_id, elapsed)

    return one


def nginx_cpu_s(nginx: Nginx) -> float:
    master = psutil.Process(nginx.process.pid)
    total = 0.0
    for proc in [master, *master.children()]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


async def run_level(
    sampler: Sampler,
    concurrency: int,
    seconds: float,
    cap: int,
    nginx: Nginx,
    pause_s: float = 0.0,
) -> Level:
    """`concurrency` loops calling `sampler` until `seconds` pass or `cap` samples are
    taken in all; back to back, or with a random pause averaging `pause_s` between runs."""
    samples: list[Sample] = []
    deadline = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < deadline and len(samples) < cap:
            samples.append(await sampler())
            if pause_s:
                await asyncio.sleep(random.uniform(0, 2 * pause_s))

    nginx0, cpu0, wall0 = nginx_cpu_s(nginx), time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(loop())
    return Level(
        samples=samples,
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        nginx_cpu_s=nginx_cpu_s(nginx) - nginx0,
    )


@dataclass(frozen=True, slots=True)
class Inflation:
    """Client-reported minus nginx's `$request_time`, in ms, for the joined requests."""

    total_ms: list[float]
    step_ms: list[float]
    nginx_ms: list[float]
    unmatched: int


def join(level: Level, nginx: Nginx, offset: int) -> Inflation:
    by_span = {entry.span_id: entry for entry in nginx.read_log(offset)}
    total: list[float] = []
    step: list[float] = []
    server: list[float] = []
    unmatched = 0
    for sample in level.samples:
        entry = by_span.get(sample.span_id)
        if entry is None or entry.status != 200:
            unmatched += 1
            continue
        server.append(entry.request_time_s * 1000)
        total.append((sample.total_s - entry.request_time_s) * 1000)
        if sample.step_s is not None:
            step.append((sample.step_s - entry.request_time_s) * 1000)
    return Inflation(total, step, server, unmatched)


def stats(values: Sequence[float]) -> str:
    if not values:
        return f"{'-':>8}{'-':>8}{'-':>8}"
    return f"{percentile(values, 50):>8.3f}{percentile(values, 99):>8.3f}{max(values):>8.3f}"


async def measure(
    nginx: Nginx, sampler: Sampler, concurrency: int, seconds: float, cap: int, pause_s: float
) -> tuple[Level, Inflation]:
    offset = nginx.log_offset()
    level = await run_level(sampler, concurrency, seconds, cap, nginx, pause_s)
    await asyncio.sleep(LOG_SETTLE_S)
    return level, join(level, nginx, offset)


async def bench(
    nginx: Nginx, levels: Sequence[int], seconds: float, cap: int, pause_s: float
) -> tuple[float, float] | None:
    runner = synth_runner(nginx.base_url)
    context = peer_ssl_context()
    synth_one = synth_sampler(runner, synth_request())
    peer_one = peer_sampler(context, nginx.base_url + "/ok")
    for one in (synth_one, peer_one):  # warm imports, caches, the CA bundle
        await run_level(one, 1, 1.0, 200, nginx)

    target_p99: tuple[float, float] | None = None
    for concurrency in levels:
        print(f"\n== {concurrency} concurrent check loop(s), {seconds:g} s per side ==")
        print(
            f"{'':<22}{'n':>7}{'runs/s':>8}{'CPU%':>6}{'nginx%':>7}"
            f"{'p50':>8}{'p99':>8}{'max':>8}  ms above nginx $request_time"
        )
        results = {}
        for side, one in (("synth", synth_one), ("peer", peer_one)):
            level, inflation = await measure(nginx, one, concurrency, seconds, cap, pause_s)
            results[side] = inflation
            head = (
                f"{len(inflation.total_ms):>7}{len(level.samples) / level.wall_s:>8.0f}"
                f"{100 * level.cpu_s / level.wall_s:>6.0f}"
                f"{100 * level.nginx_cpu_s / level.wall_s:>7.0f}"
            )
            label = "request total_s" if side == "synth" else "own wall time"
            print(f"{side + ' ' + label:<22}{head}{stats(inflation.total_ms)}")
            if side == "synth":
                print(f"{'synth step duration_s':<22}{'':>28}{stats(inflation.step_ms)}")
            print(f"{'  nginx $request_time':<22}{'':>28}{stats(inflation.nginx_ms)}  (ms)")
            if inflation.unmatched:
                print(f"  ({inflation.unmatched} requests not found in nginx's log)")
        synth_ms, peer_ms = results["synth"].total_ms, results["peer"].total_ms
        if synth_ms and peer_ms:
            p50 = percentile(synth_ms, 50) - percentile(peer_ms, 50)
            p99 = percentile(synth_ms, 99) - percentile(peer_ms, 99)
            print(f"synth - peer: p50 {p50:+.3f} ms, p99 {p99:+.3f} ms")
            if concurrency == TARGET_LEVEL:
                target_p99 = (percentile(synth_ms, 99), percentile(peer_ms, 99))
    return target_p99


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--levels", default="1,10,50", help="concurrent check loops per level")
    parser.add_argument("--seconds", type=float, default=10.0, help="wall time per level/side")
    parser.add_argument("--cap", type=int, default=50_000, help="max runs per level/side")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=0.0,
        help="mean random pause between a loop's runs (default 0: back to back, saturating)",
    )
    args = parser.parse_args()
    levels = [int(part) for part in args.levels.split(",") if part.strip()]
    cores = psutil.cpu_count() or 0
    pacing = (
        f"with a random pause averaging {args.pause_ms:g} ms between runs"
        if args.pause_ms
        else "back to back (no pause: the loop saturates a core)"
    )
    print(
        "timing fidelity: one-step GET check, reported duration minus nginx's own "
        "$request_time for the same request (joined by traceparent span id)"
    )
    print(
        f"caveats: $request_time has 1 ms resolution and starts at nginx's first read, so "
        f"TCP connect and loopback transit count as inflation for synth and peer alike; "
        f"synth, the peer and nginx (1 worker) share {cores} cores; loops run "
        f"{pacing}, so time queued behind the other loops' CPU work counts too; "
        f"CPU% = this process, nginx% = nginx, each as % of one core"
    )
    print(f"python {sys.version.split()[0]}, tracer IdTracer (default)")
    with running_nginx() as nginx:
        target_p99 = asyncio.run(bench(nginx, levels, args.seconds, args.cap, args.pause_ms / 1000))
    if target_p99 is not None:
        synth_p99, peer_p99 = target_p99
        verdict = "met" if synth_p99 < TARGET_P99_MS else "OVER"
        print(
            f"\ntarget: synth request total_s p99 inflation at {TARGET_LEVEL} concurrent "
            f"checks < {TARGET_P99_MS:g} ms: {synth_p99:.3f} ms ({verdict}); the peer's at the "
            f"same load: {peer_p99:.3f} ms, so synth adds {synth_p99 - peer_p99:+.3f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
