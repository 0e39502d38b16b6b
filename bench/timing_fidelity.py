"""How far the durations synth reports sit above the true latency of the same request,
with 1, 10 and 50 checks running at once.

For each level K, K concurrent loops run the one-step synth GET check back to back for a
bounded time and count. Every request carries a `traceparent` whose span id is the
`RequestRecord.span_id`; that joins each request with two references:

- **the wire** (the reference the target is judged on): tcpdump captures loopback traffic
  to nginx's port while the level runs, with nanosecond timestamps (bench/capture.py), and
  bench/wire.py reads each request's packets from the pcap: SYN, SYN-ACK, the request's
  first payload segment, the response's last. The wire latency is (SYN → SYN-ACK) +
  (request's first byte → response's last byte): the same span as synth's
  `timings.total_s`, which is the sum of its phases (connect as the kernel's handshake RTT,
  send around the socket writes, first byte and body to the kernel's receive time) without
  the gaps between phases where the request waited on the client's own CPU. It is what the
  client really waited for on the network, to the µs, including nginx's wake-up and
  scheduling delay on this busy machine.
- **nginx's `$request_time`** (access log): kept for comparison, but it has 1 ms
  resolution and starts when nginx first reads the request, so it omits the server's
  wake-up delay that every client on the wire waits for; on a loaded 2-core machine that
  delay, not the client, is most of the "inflation" it shows.

Inflation = reported − reference. For synth: the request's `timings.total_s` and the
step's `duration_s`, plus, against the wire, per phase (connect vs SYN → SYN-ACK; send +
first byte + body vs request → response) and the worst requests' phases, so a gap can be
traced to where it arises. The peer at the same K is bare httpx2 timing its own
`client.get()` (a new client per request, as synth opens a pool per run) with its own
`traceparent`: its inflation is what any asyncio client on this loop and machine reports.

Before the levels, a self-check runs both clients against a server that answers 20 ms after
reading each request: the wire must show ≥ 20 ms and about 20 ms, and every request must
be joined, or the script stops. It also stops if fewer than 95% of a level's requests are
joined with the capture. tcpdump shares the cores: its CPU is printed per level, and
`--no-wire` measures without it.

    .venv/bin/python bench/timing_fidelity.py [--levels 1,10,50] [--seconds 10] [--no-wire]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]
from capture import Captured, capturing
from nginx import AccessEntry, Nginx, running_nginx
from slow_target import slow_target
from wire import PcapStats, WireRequest, http_requests, read_segments
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

from synth.model import HttpTimings, RunRequest
from synth.runner import Runner

TARGET_LEVEL = 10
TARGET_P99_MS = 2.0
MIN_JOINED = 0.95
LOG_SETTLE_S = 0.5  # nginx writes its log line after sending the response
SELF_CHECK_DELAY_S = 0.020
SELF_CHECK_RUNS = 15
SELF_CHECK_SLACK_MS = 10.0  # the server's sleep overshoots on a busy machine, not by this
WORST_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as the client saw it."""

    span_id: str
    total_s: float
    step_s: float | None = None
    timings: HttpTimings | None = None  # synth's phases


@dataclass(frozen=True, slots=True)
class Level:
    """One side's measurements at one concurrency level."""

    samples: list[Sample]
    wall_s: float
    cpu_s: float
    server_cpu_s: float


Sampler = Callable[[], Awaitable[Sample]]


def synth_sampler(runner: Runner, request: RunRequest) -> Sampler:
    async def one() -> Sample:
        result = require_passed(await runner.run(request))
        step = result.steps[0]
        record = step.requests[0]
        return Sample(record.span_id, record.timings.total_s, step.duration_s, record.timings)

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
    server_cpu: Callable[[], float],
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

    server0, cpu0, wall0 = server_cpu(), time.process_time(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(loop())
    return Level(
        samples=samples,
        wall_s=time.perf_counter() - wall0,
        cpu_s=time.process_time() - cpu0,
        server_cpu_s=server_cpu() - server0,
    )


@dataclass(frozen=True, slots=True)
class Wire:
    """A level's capture, read: its requests by span id, and what tcpdump reported."""

    by_span: dict[str, WireRequest]
    captured: Captured
    records: int
    unparsed: int  # requests on the wire without a traceparent or a response


def read_wire(captured: Captured, port: int) -> Wire:
    stats = PcapStats()
    requests = http_requests(read_segments(captured.path, stats), port)
    by_span: dict[str, WireRequest] = {}
    unparsed = 0
    for request in requests:
        span_id = request.span_id
        if span_id is None or request.network_s is None:
            unparsed += 1
        else:
            by_span[span_id] = request
    captured.path.unlink()  # a saturated level writes tens of MB
    return Wire(by_span, captured, stats.records, unparsed)


@contextmanager
def wire_capture(port: int, directory: Path | None, name: str) -> Iterator[Captured | None]:
    """Capture `port` into `directory`/`name`.pcap, or nothing when `directory` is None."""
    if directory is None:
        yield None
        return
    with capturing(port, directory / f"{name}.pcap") as captured:
        yield captured


@dataclass(slots=True)
class Joined:
    """Inflation (reported − reference), in ms, over the requests found in a reference."""

    samples: int
    # against nginx's $request_time
    log_joined: int = 0
    total_vs_log: list[float] = field(default_factory=list)
    step_vs_log: list[float] = field(default_factory=list)
    request_time_ms: list[float] = field(default_factory=list)
    # against the wire
    wire_joined: int = 0
    total_vs_wire: list[float] = field(default_factory=list)
    step_vs_wire: list[float] = field(default_factory=list)
    connect_vs_wire: list[float] = field(default_factory=list)
    exchange_vs_wire: list[float] = field(default_factory=list)
    wire_ms: list[float] = field(default_factory=list)
    wire_span_ms: list[float] = field(default_factory=list)
    worst: list[tuple[float, Sample, WireRequest]] = field(default_factory=list)


def join(samples: Sequence[Sample], log: Sequence[AccessEntry] | None, wire: Wire | None) -> Joined:
    joined = Joined(samples=len(samples))
    by_span = {entry.span_id: entry for entry in log or ()}
    for sample in samples:
        entry = by_span.get(sample.span_id)
        if entry is not None and entry.status == 200:
            joined.log_joined += 1
            reference = entry.request_time_s
            joined.request_time_ms.append(reference * 1000)
            joined.total_vs_log.append((sample.total_s - reference) * 1000)
            if sample.step_s is not None:
                joined.step_vs_log.append((sample.step_s - reference) * 1000)
        request = wire.by_span.get(sample.span_id) if wire else None
        if request is None or request.network_s is None or request.span_s is None:
            continue
        joined.wire_joined += 1
        network = request.network_s
        joined.wire_ms.append(network * 1000)
        joined.wire_span_ms.append(request.span_s * 1000)
        inflation = (sample.total_s - network) * 1000
        joined.total_vs_wire.append(inflation)
        if sample.step_s is not None:
            joined.step_vs_wire.append((sample.step_s - network) * 1000)
        if sample.timings is not None:
            _phases_vs_wire(joined, sample.timings, request)
            joined.worst.append((inflation, sample, request))
    joined.worst = sorted(joined.worst, key=lambda item: item[0], reverse=True)[:WORST_SHOWN]
    return joined


def _phases_vs_wire(joined: Joined, timings: HttpTimings, request: WireRequest) -> None:
    if timings.connect_s is not None and request.handshake_s is not None:
        joined.connect_vs_wire.append((timings.connect_s - request.handshake_s) * 1000)
    exchange = _exchange_s(timings)
    if exchange is not None and request.exchange_s is not None:
        joined.exchange_vs_wire.append((exchange - request.exchange_s) * 1000)


def _exchange_s(timings: HttpTimings) -> float | None:
    """send + first byte + body: synth's counterpart of the wire's request → response."""
    parts = (timings.send_s, timings.first_byte_s, timings.body_s)
    if timings.first_byte_s is None:
        return None
    return sum(part for part in parts if part is not None)


def require_joined(side: str, concurrency: int, joined: Joined, wire: Wire | None) -> None:
    """Too few requests found in a reference means the figures describe the wrong set."""
    checks = [("nginx's access log", joined.log_joined)]
    if wire is not None:
        checks.append(("the capture", joined.wire_joined))
    for where, found in checks:
        if joined.samples and found < MIN_JOINED * joined.samples:
            detail = ""
            if wire is not None:
                captured = wire.captured
                detail = (
                    f"; tcpdump captured {captured.captured} packets, the file held "
                    f"{wire.records}, the kernel dropped {captured.dropped}; "
                    f"{wire.unparsed} requests on the wire had no traceparent or no response"
                )
            raise SystemExit(
                f"{side} at K={concurrency}: only {found} of {joined.samples} requests "
                f"found in {where} (need {MIN_JOINED:.0%}){detail}"
            )


def stats(values: Sequence[float]) -> str:
    if not values:
        return f"{'-':>8}{'-':>8}{'-':>8}"
    return f"{percentile(values, 50):>8.3f}{percentile(values, 99):>8.3f}{max(values):>8.3f}"


async def measure(
    side: str,
    sampler: Sampler,
    concurrency: int,
    seconds: float,
    cap: int,
    pause_s: float,
    nginx: Nginx,
    pcap_dir: Path | None,
) -> tuple[Level, Joined, Wire | None]:
    offset = nginx.log_offset()
    with wire_capture(nginx.port, pcap_dir, f"{side}-{concurrency}") as captured:
        level = await run_level(
            sampler, concurrency, seconds, cap, lambda: nginx_cpu_s(nginx), pause_s
        )
        await asyncio.sleep(LOG_SETTLE_S)
    wire = read_wire(captured, nginx.port) if captured is not None else None
    joined = join(level.samples, nginx.read_log(offset), wire)
    require_joined(side, concurrency, joined, wire)
    return level, joined, wire


def print_side(side: str, level: Level, joined: Joined, wire: Wire | None) -> None:
    wall = level.wall_s
    tcpdump = f"{100 * wire.captured.cpu_s / wall:>9.0f}" if wire else f"{'-':>9}"
    print(
        f"{side:<34}{len(level.samples):>7}{len(level.samples) / wall:>8.0f}"
        f"{100 * level.cpu_s / wall:>6.0f}{100 * level.server_cpu_s / wall:>7.0f}{tcpdump}"
    )
    reported = "total_s" if side == "synth" else "own wall time"
    rows: list[tuple[str, list[float]]] = []
    if wire is not None:
        rows.append((f"{reported} − wire", joined.total_vs_wire))
        if side == "synth":
            rows += [
                ("step duration_s − wire", joined.step_vs_wire),
                ("  connect − SYN→SYN-ACK", joined.connect_vs_wire),
                ("  send..body − request→response", joined.exchange_vs_wire),
            ]
    rows.append((f"{reported} − $request_time", joined.total_vs_log))
    if side == "synth":
        rows.append(("step duration_s − $request_time", joined.step_vs_log))
    if wire is not None:
        rows += [
            ("(wire latency, ms)", joined.wire_ms),
            ("(wire SYN → last byte, ms)", joined.wire_span_ms),
        ]
    rows.append(("(nginx $request_time, ms)", joined.request_time_ms))
    for label, values in rows:
        print(f"  {label:<32}{'':>37}{stats(values)}")
    if wire is not None:
        captured = wire.captured
        print(
            f"  joined: wire {joined.wire_joined}/{joined.samples}, log "
            f"{joined.log_joined}/{joined.samples}; tcpdump captured {captured.captured} "
            f"packets, dropped {captured.dropped}, CPU {captured.cpu_s:.2f} s"
        )
    else:
        print(f"  joined: log {joined.log_joined}/{joined.samples} (no capture: --no-wire)")
    for inflation, sample, request in joined.worst if side == "synth" else ():
        print(f"  worst: {_phases_line(inflation, sample, request)}")


def _phases_line(inflation_ms: float, sample: Sample, request: WireRequest) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.3f}"

    timings = sample.timings or HttpTimings()
    return (
        f"+{inflation_ms:.3f} ms: synth connect {ms(timings.connect_s)} send "
        f"{ms(timings.send_s)} first_byte {ms(timings.first_byte_s)} body "
        f"{ms(timings.body_s)}; wire SYN→SYN-ACK {ms(request.handshake_s)} "
        f"request→response {ms(request.exchange_s)}"
    )


async def bench(
    nginx: Nginx,
    levels: Sequence[int],
    seconds: float,
    cap: int,
    pause_s: float,
    pcap_dir: Path | None,
) -> dict[str, tuple[Joined, Joined]]:
    """Runs every level; returns the target level's (synth, peer) joins, if measured."""
    runner = synth_runner(nginx.base_url)
    context = peer_ssl_context()
    synth_one = synth_sampler(runner, synth_request())
    peer_one = peer_sampler(context, nginx.base_url + "/ok")
    for one in (synth_one, peer_one):  # warm imports, caches, the CA bundle
        await run_level(one, 1, 1.0, 200, lambda: 0.0)

    target: dict[str, tuple[Joined, Joined]] = {}
    for concurrency in levels:
        print(f"\n== {concurrency} concurrent check loop(s), {seconds:g} s per side ==")
        print(
            f"{'ms above the reference':<34}{'n':>7}{'runs/s':>8}{'CPU%':>6}{'nginx%':>7}"
            f"{'tcpdump%':>9}{'p50':>8}{'p99':>8}{'max':>8}"
        )
        results: dict[str, Joined] = {}
        for side, one in (("synth", synth_one), ("peer", peer_one)):
            level, joined, wire = await measure(
                side, one, concurrency, seconds, cap, pause_s, nginx, pcap_dir
            )
            results[side] = joined
            print_side(side, level, joined, wire)
        synth, peer = results["synth"], results["peer"]
        for name, synth_ms, peer_ms in (
            ("wire", synth.total_vs_wire, peer.total_vs_wire),
            ("$request_time", synth.total_vs_log, peer.total_vs_log),
        ):
            if synth_ms and peer_ms:
                p50 = percentile(synth_ms, 50) - percentile(peer_ms, 50)
                p99 = percentile(synth_ms, 99) - percentile(peer_ms, 99)
                print(f"synth − peer, vs {name}: p50 {p50:+.3f} ms, p99 {p99:+.3f} ms")
        if concurrency == TARGET_LEVEL:
            target["level"] = (synth, peer)
    return target


async def self_check(pcap_dir: Path) -> None:
    """Both clients against a server that answers 20 ms after reading each request: the
    capture must find every request and show ≥ 20 ms, about 20 ms, or nothing measured
    with it can be trusted."""
    delay_ms = SELF_CHECK_DELAY_S * 1000
    with slow_target(SELF_CHECK_DELAY_S) as port:
        base_url = f"http://127.0.0.1:{port}"
        sides = (
            ("synth", synth_sampler(synth_runner(base_url), synth_request())),
            ("peer", peer_sampler(peer_ssl_context(), base_url + "/ok")),
        )
        print(
            f"self-check: {SELF_CHECK_RUNS} requests per client, "
            f"the server answers {delay_ms:g} ms after reading each"
        )
        for side, one in sides:
            with capturing(port, pcap_dir / f"self-check-{side}.pcap") as captured:
                level = await run_level(one, 1, 30.0, SELF_CHECK_RUNS, lambda: 0.0)
            wire = read_wire(captured, port)
            joined = join(level.samples, None, wire)
            exchange = [r.exchange_s * 1000 for r in wire.by_span.values() if r.exchange_s]
            problems = []
            if joined.wire_joined != joined.samples:
                problems.append(f"joined {joined.wire_joined} of {joined.samples}")
            if not exchange or min(exchange) < delay_ms:
                problems.append(f"a request→response under {delay_ms:g} ms")
            elif percentile(exchange, 50) > delay_ms + SELF_CHECK_SLACK_MS:
                problems.append(
                    f"median request→response over {delay_ms + SELF_CHECK_SLACK_MS:g} ms"
                )
            print(
                f"  {side:<6} wire request→response p50 {percentile(exchange, 50):.3f} max "
                f"{max(exchange):.3f} ms; "
                f"reported − wire p50/p99/max{stats(joined.total_vs_wire)} ms"
            )
            if problems:
                raise SystemExit(f"self-check failed ({side}): {'; '.join(problems)}")


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
    parser.add_argument(
        "--no-wire",
        action="store_true",
        help="no packet capture: only $request_time (shows what tcpdump's CPU changes)",
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
        "timing fidelity: one-step GET check, reported duration minus the same request's "
        "latency on the wire (tcpdump on lo, ns timestamps: SYN→SYN-ACK + request's first "
        "byte→response's last byte) and minus nginx's $request_time (joined by traceparent "
        "span id)"
    )
    print(
        f"caveats: $request_time has 1 ms resolution and starts at nginx's first read, so "
        f"nginx's wake-up delay counts as inflation against it; the wire includes it. "
        f"synth, the peer, nginx (1 worker) and tcpdump share {cores} cores; loops run "
        f"{pacing}, so time queued behind the other loops' CPU work counts too; "
        f"CPU% = this process, nginx% = nginx, tcpdump% = tcpdump's process (the kernel's "
        f"copy of each packet into its ring is charged to the sender), each as % of one core"
    )
    print(f"python {sys.version.split()[0]}, tracer IdTracer (default)")
    with tempfile.TemporaryDirectory(prefix="synth-bench-pcap-") as tmp:
        pcap_dir = None if args.no_wire else Path(tmp)
        if pcap_dir is not None:
            asyncio.run(self_check(pcap_dir))
        with running_nginx() as nginx:
            target = asyncio.run(
                bench(nginx, levels, args.seconds, args.cap, args.pause_ms / 1000, pcap_dir)
            )
    if "level" in target:
        print_target(*target["level"])
    return 0


def print_target(synth: Joined, peer: Joined) -> None:
    head = f"synth request total_s p99 inflation at {TARGET_LEVEL} concurrent checks"
    if synth.total_vs_wire and peer.total_vs_wire:
        synth_p99 = percentile(synth.total_vs_wire, 99)
        peer_p99 = percentile(peer.total_vs_wire, 99)
        verdict = "met" if synth_p99 < TARGET_P99_MS else "OVER"
        print(
            f"\ntarget: {head} < {TARGET_P99_MS:g} ms, against the wire: {synth_p99:.3f} ms "
            f"({verdict}); the peer's: {peer_p99:.3f} ms"
        )
    else:
        print(f"\ntarget: {head}: no wire reference (--no-wire); see $request_time below")
    if synth.total_vs_log and peer.total_vs_log:
        synth_p99 = percentile(synth.total_vs_log, 99)
        peer_p99 = percentile(peer.total_vs_log, 99)
        print(
            f"        against nginx's $request_time (omits nginx's wake-up): "
            f"{synth_p99:.3f} ms; the peer's: {peer_p99:.3f} ms"
        )


if __name__ == "__main__":
    raise SystemExit(main())
