"""CPU per run with telemetry on (Prometheus metrics + OpenTelemetry spans exported over
OTLP/HTTP) against telemetry off, same run, same process, same private nginx.

The run is bench/workload.py's one-step GET check. Variants, each measured with
`time.process_time()` over N sequential runs (bounded in count and wall time), repeated
with the order rotated:

- off       the runner with the id-only tracer (what `synth run` does with no OTEL_*
            endpoint), no metrics
- metrics   + `Metrics.observe_run` of every result (what the agent always does)
- tracing   + OTel spans (run, step, HTTP client) batched and exported to a local OTLP
            receiver that accepts and discards; the export thread's CPU counts, each
            measurement ends with a flush
- both      metrics and tracing: the figure the target is set against

The receiver (bench/otlp_sink.py) is its own process, so its CPU is not counted.
Prints the median CPU µs per run and the ratio both / off (target <= 1.15).

    .venv/bin/python bench/telemetry_overhead.py [--runs 2000] [--repeats 5] [--budget 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from nginx import running_nginx
from workload import require_passed, synth_request, synth_runner

from synth.outputs.metrics import Metrics
from synth.outputs.tracing import Tracing, TracingConfig, start_tracing
from synth.runner import Runner

TARGET_RATIO = 1.15
WARMUP_RUNS = 200
SINK = Path(__file__).with_name("otlp_sink.py")

OneRun = Callable[[], Awaitable[object]]


@contextlib.contextmanager
def running_sink() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The discard-everything OTLP receiver, in its own process: (endpoint, process)."""
    process = subprocess.Popen(
        [sys.executable, str(SINK)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"otlp_sink did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}", process
    finally:
        if process.poll() is None:
            with contextlib.suppress(OSError):
                assert process.stdin is not None
                process.stdin.close()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def measure(
    one_run: OneRun, runs: int, budget_s: float, tracing: Tracing | None
) -> tuple[float, int]:
    """(CPU seconds per run, runs done) over up to `runs` runs or `budget_s` wall seconds;
    with tracing, the flush of what those runs queued is inside the measurement."""
    deadline = time.monotonic() + budget_s
    cpu0 = time.process_time()
    done = 0
    while done < runs and time.monotonic() < deadline:
        await one_run()
        done += 1
    if tracing is not None and not await asyncio.to_thread(tracing.flush, 30.0):
        raise RuntimeError("the OTLP sink did not take the spans within 30 s")
    return (time.process_time() - cpu0) / done, done


async def bench(
    base_url: str, endpoint: str, runs: int, repeats: int, budget_s: float
) -> dict[str, float]:
    settings = synth_runner(base_url).settings
    request = synth_request()
    config = TracingConfig.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    )
    counters = Metrics()
    tracing = start_tracing(config, location="bench", environment="bench", counters=counters)
    metrics = Metrics()
    plain = Runner(settings)
    traced = Runner(settings, tracer=tracing.tracer)

    async def off() -> object:
        return require_passed(await plain.run(request))

    async def with_metrics() -> object:
        result = require_passed(await plain.run(request))
        metrics.observe_run(result)
        return result

    async def with_tracing() -> object:
        return require_passed(await traced.run(request))

    async def both() -> object:
        result = require_passed(await traced.run(request))
        metrics.observe_run(result)
        return result

    variants: dict[str, tuple[OneRun, Tracing | None]] = {
        "off": (off, None),
        "metrics": (with_metrics, None),
        "tracing": (with_tracing, tracing),
        "both": (both, tracing),
    }
    try:
        for one_run, flushed in variants.values():
            await measure(one_run, WARMUP_RUNS, budget_s, flushed)
        cpu: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        print(f"{'repeat':>6}  " + "  ".join(f"{n:>22}" for n in names) + "  both/off")
        for rep in range(repeats):
            order = names[rep % len(names) :] + names[: rep % len(names)]
            row: dict[str, str] = {}
            for name in order:
                one_run, flushed = variants[name]
                per_run, done = await measure(one_run, runs, budget_s, flushed)
                cpu[name].append(per_run)
                row[name] = f"{per_run * 1e6:8.1f} µs ({done} runs)"
            pair = cpu["both"][-1] / cpu["off"][-1]
            print(f"{rep + 1:>6}  " + "  ".join(f"{row[n]:>22}" for n in names) + f"  {pair:.3f}x")
    finally:
        tracing.shutdown(5.0)
    errors = counters.telemetry_export_errors.labels("otlp_http")._value.get()
    dropped = counters.telemetry_spans_dropped.labels("otlp_http")._value.get()
    if errors or dropped:
        raise RuntimeError(f"export errors {errors:g}, spans dropped {dropped:g}: not measured")
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    medians["paired"] = statistics.median(
        a / b for a, b in zip(cpu["both"], cpu["off"], strict=True)
    )
    medians["min-ratio"] = min(cpu["both"]) / min(cpu["off"])
    print()
    print(f"{'variant':<10}{'median CPU/run':>16}{'min CPU/run':>14}{'vs off':>9}")
    for name in names:
        ratio = medians[name] / medians["off"]
        print(
            f"{name:<10}{medians[name] * 1e6:>13.1f} µs{min(cpu[name]) * 1e6:>11.1f} µs"
            f"{ratio:>8.3f}x"
        )
    return medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="runs per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--budget", type=float, default=60.0, help="max wall s per measurement")
    args = parser.parse_args()
    print(
        f"telemetry overhead: one-step GET check, {args.runs} sequential runs x "
        f"{args.repeats} repeats (each bounded by {args.budget:g} s), CPU = "
        "time.process_time() of this process (export thread included, receiver excluded)"
    )
    print(f"python {sys.version.split()[0]}, nginx: 1 worker on 127.0.0.1, OTLP/HTTP protobuf\n")
    with running_nginx() as nginx, running_sink() as (endpoint, sink):
        medians = asyncio.run(bench(nginx.base_url, endpoint, args.runs, args.repeats, args.budget))
    assert sink.stdout is not None
    print(f"\nOTLP sink: {sink.stdout.read().strip()}")
    ratio = medians["both"] / medians["off"]
    verdict = "OVER" if ratio > TARGET_RATIO else "met"
    print(f"ratio both / off = {ratio:.3f}x  (target <= {TARGET_RATIO}x: {verdict})")
    added = (medians["both"] - medians["off"]) * 1e6
    print(f"  telemetry adds {added:+.0f} µs CPU per run (medians)")
    print(f"  median of per-repeat ratios = {medians['paired']:.3f}x")
    print(
        f"  ratio of the best repeats    = {medians['min-ratio']:.3f}x  (least disturbed by "
        "other work on a shared machine)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
