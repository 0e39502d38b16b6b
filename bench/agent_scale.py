"""`synth agent` at scale: N scheduled one-step GET checks against a private nginx, with
prometheus-blackbox-exporter probing the same targets at the same rate as the peer.

For each N (default 1,000 and 5,000), in one run, one after the other on the same nginx:

1. synth: `synth agent` as a subprocess with N YAML checks (`GET /ok?c=<i>`, expect 200,
   every 10 s, the agent's default jitter of 1 s) plus a 20-check suite of another service.
   After one interval of warm-up (first runs are spread over an interval), for --seconds:
   - schedule lag (a run's actual start on its worker minus its due time, jitter
     included): every sample, read from the agent's bounded `/debug/scheduler-lag`
     recorder (exact; the `synth_scheduler_lag_seconds` histogram's bucket holding p99
     is printed beside it as a cross-check) — p50 / p99 / max;
   - CPU seconds per 1,000 runs: user+sys of the agent's PID (all threads) over the
     window, run processes included, per run (store writes and metrics included);
   - peak RSS: the kernel's high-water mark (VmHWM) of the agent's PID, plus its run
     processes' when it has them (`scheduler.processes`: by default one per CPU when the
     due rate passes ~250 runs/s, else none; `scheduler.concurrency`: by default the runs
     due per second, at least 100, as the README advises) — the sum overstates, shared
     pages counting once per process; the peak of the tree's PSS (every page counted once,
     sampled every 2 s over the window, after the scrape and after the deploys) beside it;
   - deploy event → verdict: `POST /v1/deploys` for the 20-check suite, long-poll
     `GET /v1/deploys/{id}?wait=`; wall time from sending the POST to the verdict,
     three deploys in a row while the N checks keep running.
2. blackbox_exporter (the Debian package `prometheus-blackbox-exporter`) with module
   `http_2xx`, driven like Prometheus would: this script asks `/probe?target=...` for each
   of the same N targets every 10 s, spread evenly over the interval (a bounded number of
   requests in flight, keep-alive to the exporter). Same warm-up and window; CPU of the
   exporter's PID per probe.

Prints a table and the targets: p99 lag < 100 ms at 1,000 and < 500 ms at 5,000 checks,
peak RSS < 250 MB at 5,000, CPU per probe within 3x blackbox_exporter's.

Everything listens on 127.0.0.1 only and is stopped by the PID this script started; every
loop is bounded in time. The machine's load matters: the ratio to blackbox is the steadier
figure; lag on a busy machine is the machine's as much as synth's.

    .venv/bin/python bench/agent_scale.py [--checks 1000,5000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2
import psutil
import yaml
from nginx import Nginx, running_nginx
from prometheus_client.parser import text_string_to_metric_families
from workload import percentile

SYNTH = str(Path(sys.executable).with_name("synth"))
BLACKBOX = shutil.which("prometheus-blackbox-exporter") or "/usr/bin/prometheus-blackbox-exporter"
TOKEN = "bench-token-0123456789abcdef"  # the agent refuses tokens under 16 bytes
ENV = "bench"
SUITE_SIZE = 20
DEPLOYS = 3
POLL_S = 2.0
START_TIMEOUT_S = 300.0
PROBES_IN_FLIGHT = 64
_API_LINE = re.compile(r"API on (?P<url>http://127\.0\.0\.1:\d+)")

TARGET_P99_S = {1000: 0.100, 5000: 0.500}
TARGET_RSS_MB = {5000: 250.0}
TARGET_CPU_RATIO = 3.0


# -- synth ------------------------------------------------------------------------------------


def write_agent_files(
    directory: Path,
    base_url: str,
    n: int,
    every_s: float,
    concurrency: int | None = None,
    processes: int = 0,
) -> Path:
    """N one-step checks of service `web`, the 20-check `suite`, and synth.yaml."""
    checks = [
        {
            "name": f"c{i:05d}",
            "service": "web",
            "every": f"{every_s:g}s",
            "timeout": "5s",
            "steps": [
                {"name": "get", "request": {"path": f"/ok?c={i}"}, "expect": {"status": 200}}
            ],
        }
        for i in range(n)
    ]
    checks += [
        {
            "name": f"suite{i:02d}",
            "service": "suite",
            "every": "1h",  # scheduled too, but (almost) never inside the window
            "timeout": "5s",
            "steps": [
                {"name": "get", "request": {"path": f"/ok?s={i}"}, "expect": {"status": 200}}
            ],
        }
        for i in range(SUITE_SIZE)
    ]
    (directory / "checks").mkdir()
    (directory / "checks" / "bench.yaml").write_text(yaml.safe_dump({"checks": checks}))
    config = {
        "checks": ["checks"],
        "environments": {
            ENV: {"services": {"web": {"base_url": base_url}, "suite": {"base_url": base_url}}}
        },
        "server": {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN]},
        "store": {"url": f"sqlite+aiosqlite:///{directory}/synth.db"},
        "deploys": {"settle": 0, "window": 0},
    }
    scheduler: dict[str, int] = {"processes": processes}
    if concurrency is not None:
        scheduler["concurrency"] = concurrency
    config["scheduler"] = scheduler
    path = directory / "synth.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def running_agent(config: Path) -> Iterator[tuple[psutil.Process, httpx2.Client]]:
    """`synth agent` on a free port; SIGTERM (then SIGKILL) to its PID on exit."""
    out = config.parent / "agent.stdout"
    err = config.parent / "agent.stderr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTH_")}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [SYNTH, "agent", "--config", str(config), "--log-format", "json"],
            cwd=config.parent,
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    try:
        url = _await_api(process, out, err)
        with httpx2.Client(base_url=url, timeout=60.0, trust_env=False) as client:
            _await_ready(process, client, err)
            yield psutil.Process(process.pid), client
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _await_api(process: subprocess.Popen[bytes], out: Path, err: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"synth agent exited {process.returncode}:\n{err.read_text()}")
        match = _API_LINE.search(out.read_text())
        if match:
            return match["url"]
        time.sleep(0.1)
    raise RuntimeError("synth agent printed no API address in time")


def _await_ready(process: subprocess.Popen[bytes], client: httpx2.Client, err: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"synth agent exited {process.returncode}:\n{err.read_text()}")
        with contextlib.suppress(httpx2.TransportError):
            if client.get("/readyz").status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("synth agent not ready in time")


def scrape(client: httpx2.Client) -> tuple[float, list[tuple[float, float]]]:
    """(runs counted, lag histogram buckets as (upper bound, cumulative count))."""
    return parse_metrics(client.get("/metrics").text)


def parse_metrics(text: str) -> tuple[float, list[tuple[float, float]]]:
    runs = 0.0
    buckets: list[tuple[float, float]] = []
    # Only the two families read here: the page at 5,000 checks is ~70 MB, and the
    # pure-Python parser took minutes over all of it.
    wanted = ("synth_check_runs_total", "synth_scheduler_lag_seconds_bucket")
    text = "".join(line + "\n" for line in text.splitlines() if line.startswith(wanted))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "synth_check_runs_total":
                runs += sample.value
            elif sample.name == "synth_scheduler_lag_seconds_bucket":
                buckets.append((float(sample.labels["le"]), sample.value))
    return runs, sorted(buckets)


def bucket_quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    """The upper bound of the histogram bucket holding quantile q of the window's samples."""
    counts = [(le, b - a) for (le, b), (_, a) in zip(after, before, strict=True)]
    total = counts[-1][1] if counts else 0
    for le, cumulative in counts:
        if total and cumulative >= q * total:
            return le
    return math.nan


def peak_rss_mb(process: psutil.Process) -> float:
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return process.memory_info().rss / 2**20


def pss_mb(process: psutil.Process) -> float:
    """Proportional set size: shared pages divided among the processes sharing them."""
    for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return math.nan


def process_tree(process: psutil.Process) -> list[psutil.Process]:
    """The agent and its run processes."""
    return [process, *process.children()]


def tree_cpu_s(processes: Sequence[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def default_processes(n: int, every_s: float) -> int:
    """What the README advises: past ~250 runs/s, a run process per CPU; else none."""
    return (os.cpu_count() or 1) if n / every_s > 250 else 0


def default_concurrency(n: int, every_s: float) -> int:
    """What the README advises: at least the runs due in one second (and synth's 100)."""
    return max(100, math.ceil(n / every_s))


@dataclass
class SynthFigures:
    runs: float
    lags: list[float]
    missed: int
    hist_p99: float
    cpu_s_per_1k: float
    rss_mb: float
    pss_mb: float
    processes: int
    deploy_s: list[float]


def measure_synth(nginx: Nginx, n: int, args: argparse.Namespace) -> SynthFigures:
    with tempfile.TemporaryDirectory(prefix="synth-bench-agent-") as tmp:
        processes = default_processes(n, args.every) if args.processes is None else args.processes
        concurrency = (
            default_concurrency(n, args.every) if args.concurrency is None else args.concurrency
        )
        config = write_agent_files(Path(tmp), nginx.base_url, n, args.every, concurrency, processes)
        started = time.monotonic()
        with running_agent(config) as (process, client):
            print(
                f"  synth: {n} checks loaded and ready in {time.monotonic() - started:.1f}s "
                f"({processes} run processes, concurrency {concurrency})"
            )
            # Warm-up: first runs are spread over one interval. One scrape now, so the
            # histogram's window can be told apart; its cost is paid before the window.
            time.sleep(args.every / 2)
            _, buckets0 = scrape(client)
            time.sleep(args.every / 2 + 1)
            seq = client.get("/debug/scheduler-lag", params={"after": 10**12}).json()["count"]
            seq0 = seq
            tree = process_tree(process)
            cpu0 = tree_cpu_s(tree)
            agent_cpu0 = tree_cpu_s(tree[:1])
            lags: list[float] = []
            missed = 0
            pss = 0.0  # the tree's memory, each page once: sampled, the peak kept
            end = time.monotonic() + args.seconds
            while (left := end - time.monotonic()) > 0:
                time.sleep(min(POLL_S, left))
                page = client.get("/debug/scheduler-lag", params={"after": seq}).json()
                seq, missed = page["count"], missed + page["missed"]
                lags.extend(page["lags_s"])
                pss = max(pss, sum(pss_mb(p) for p in tree))
            cpu1 = tree_cpu_s(tree)
            agent_cpu = tree_cpu_s(tree[:1]) - agent_cpu0
            if len(process_tree(process)) != len(tree):
                print("  synth: a run process was restarted in the window: CPU undercounted")
            # Runs started in the window (scheduled; at steady state the same as finished
            # runs, give or take the few in flight): /metrics is not scraped inside the
            # window, a scrape at thousands of checks being work of its own (shown below).
            runs = seq - seq0
            # The agent's time to serve the page, apart from this script's parsing of it.
            scraped = time.perf_counter()
            page = client.get("/metrics").content
            scrape_s = time.perf_counter() - scraped
            scrape_mb = len(page) / 1e6
            total_runs, buckets1 = parse_metrics(page.decode())
            del page
            pss = max(pss, sum(pss_mb(p) for p in tree))
            deploy_s = measure_deploys(client)
            pss = max(pss, sum(pss_mb(p) for p in tree))
            # A reload of the unchanged files, every check recompiled (run processes too).
            reload_cpu0 = [tree_cpu_s([p]) for p in tree]
            reloading = time.perf_counter()
            answer = client.post("/v1/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            reload_s = time.perf_counter() - reloading
            reload_cpu = [tree_cpu_s([p]) - c for p, c in zip(tree, reload_cpu0, strict=True)]
            if answer.status_code != 200:
                raise RuntimeError(f"reload refused: {answer.status_code} {answer.text[:500]}")
            pss = max(pss, sum(pss_mb(p) for p in tree))
            peaks = [peak_rss_mb(p) for p in tree]
            rss = sum(peaks)
            if len(peaks) > 1:
                print(
                    "  synth: peak RSS by process (agent first): "
                    + ", ".join(f"{m:.0f} MB" for m in peaks)
                )
    scraped_line = f"GET /metrics {scrape_mb:.1f} MB in {scrape_s:.2f}s"
    print(f"  synth: {scraped_line}; {total_runs:.0f} runs counted in all; reload {reload_s:.1f}s")
    # The reload's own CPU: the tree's CPU while it ran, less the window's steady rate
    # over the same time (the runs go on meanwhile).
    steady = (cpu1 - cpu0) / args.seconds * reload_s
    print(
        f"  synth: CPU during the reload {sum(reload_cpu):.1f}s (by process, agent first: "
        + ", ".join(f"{c:.1f}" for c in reload_cpu)
        + f"), {sum(reload_cpu) - steady:.1f}s over the window's steady rate"
    )
    if processes and runs:
        share = agent_cpu / (cpu1 - cpu0) if cpu1 > cpu0 else math.nan
        print(
            f"  synth: the agent process {agent_cpu / runs * 1000:.3f} s CPU per 1k runs "
            f"({share:.0%}), its {processes} run processes the rest"
        )
    return SynthFigures(
        runs=runs,
        lags=lags,
        missed=missed,
        hist_p99=bucket_quantile(buckets0, buckets1, 0.99),
        cpu_s_per_1k=(cpu1 - cpu0) / runs * 1000 if runs else math.nan,
        rss_mb=rss,
        pss_mb=pss,
        processes=processes,
        deploy_s=deploy_s,
    )


def measure_deploys(client: httpx2.Client) -> list[float]:
    """Wall seconds from POST /v1/deploys to the verdict, for the 20-check suite."""
    took = []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for i in range(DEPLOYS):
        sent = time.perf_counter()
        body = {"service": "suite", "environment": ENV, "version": f"bench-{i}"}
        accepted = client.post("/v1/deploys", json=body, headers=auth)
        accepted.raise_for_status()
        deploy_id = accepted.json()["id"]
        record = client.get(f"/v1/deploys/{deploy_id}", params={"wait": 60}).json()
        took.append(time.perf_counter() - sent)
        if record["status"] != "passed":
            raise RuntimeError(f"suite deploy did not pass: {record}")
    return took


# -- blackbox_exporter -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_blackbox(directory: Path) -> Iterator[tuple[psutil.Process, str]]:
    if not Path(BLACKBOX).is_file():
        raise RuntimeError(
            "prometheus-blackbox-exporter not found: `make bench` installs it "
            "(apt-get install prometheus-blackbox-exporter), or pass --no-blackbox"
        )
    config = directory / "blackbox.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "modules": {
                    "http_2xx": {
                        "prober": "http",
                        "timeout": "5s",
                        "http": {"preferred_ip_protocol": "ip4"},
                    }
                }
            }
        )
    )
    port = _free_port()
    with (directory / "blackbox.log").open("wb") as log:
        process = subprocess.Popen(
            [
                BLACKBOX,
                f"--config.file={config}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"blackbox_exporter exited:\n{(directory / 'blackbox.log').read_text()}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield psutil.Process(process.pid), f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@dataclass
class BlackboxFigures:
    probes: int
    failed: int
    cpu_s_per_1k: float
    late_s_p99: float


class _ProbeConnection:
    """One keep-alive HTTP/1.1 connection to the exporter. A bare client on purpose: at
    hundreds of probes a second a full HTTP client in this process would be the
    bottleneck, and the exporter's figures would then measure this script."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> bytes:
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        headers = head.lower()
        if b"transfer-encoding: chunked" in headers:
            body = b""
            while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
                body += await self._reader.readexactly(size + 2)
            await self._reader.readuntil(b"\r\n")
            return body
        length = int(headers.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        return await self._reader.readexactly(length)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def _drive(
    exporter: str,
    targets: Sequence[str],
    every_s: float,
    warmup_s: float,
    seconds: float,
    process: psutil.Process,
) -> BlackboxFigures:
    """Probe each target every `every_s`, spread evenly (as Prometheus spreads scrapes);
    measure the exporter over the window after warm-up."""
    n = len(targets)
    host, port = exporter.removeprefix("http://").split(":")
    queue: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
    counts = {"probes": 0, "failed": 0, "errors": 0}
    late: list[float] = []

    async def prober() -> None:
        connection = _ProbeConnection(host, int(port))
        try:
            while True:
                target, in_window = await queue.get()
                try:
                    body = await connection.get(
                        f"/probe?module=http_2xx&target={quote(target, safe='')}"
                    )
                except (OSError, ValueError, asyncio.IncompleteReadError):
                    counts["errors"] += 1
                    connection.close()
                    connection = _ProbeConnection(host, int(port))
                    continue
                if in_window:
                    counts["probes"] += 1
                    counts["failed"] += b"\nprobe_success 1" not in body
        finally:
            connection.close()

    probers = [asyncio.create_task(prober()) for _ in range(PROBES_IN_FLIGHT)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    start, end = t0 + warmup_s, t0 + warmup_s + seconds
    cpu0 = None
    for k in range(math.ceil((warmup_s + seconds) / every_s) + 1):
        for i, target in enumerate(targets):
            due = t0 + k * every_s + i * every_s / n
            if due >= end:
                break
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            in_window = due >= start
            if in_window and cpu0 is None:
                cpu0 = sum(process.cpu_times()[:2])
            if in_window:
                late.append(max(loop.time() - due, 0.0))
            queue.put_nowait((target, in_window))
    with contextlib.suppress(TimeoutError):  # the last probes of the window finish
        await asyncio.wait_for(_drained(queue), timeout=10)
    cpu1 = sum(process.cpu_times()[:2])
    for task in probers:
        task.cancel()
    await asyncio.gather(*probers, return_exceptions=True)
    probes = counts["probes"]
    return BlackboxFigures(
        probes=probes,
        failed=counts["failed"] + counts["errors"],
        cpu_s_per_1k=(cpu1 - (cpu0 or cpu1)) / probes * 1000 if probes else math.nan,
        late_s_p99=percentile(late, 99) if late else math.nan,
    )


async def _drained(queue: asyncio.Queue[Any]) -> None:
    while not queue.empty():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the probes taken last are answered


def measure_blackbox(nginx: Nginx, n: int, args: argparse.Namespace) -> BlackboxFigures:
    targets = [f"{nginx.base_url}/ok?c={i}" for i in range(n)]
    with (
        tempfile.TemporaryDirectory(prefix="synth-bench-blackbox-") as tmp,
        running_blackbox(Path(tmp)) as (process, url),
    ):
        return asyncio.run(_drive(url, targets, args.every, args.every + 1, args.seconds, process))


# -- report -----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.1f}"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(
    n: int, s: SynthFigures, b: BlackboxFigures | None, args: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """Print the details for `n` checks; return its table row and its target lines."""
    lags = s.lags
    p50 = statistics.median(lags) if lags else math.nan
    p99 = percentile(lags, 99) if lags else math.nan
    worst = max(lags) if lags else math.nan
    ratio = s.cpu_s_per_1k / b.cpu_s_per_1k if b and b.probes else math.nan
    deploy = statistics.median(s.deploy_s) if s.deploy_s else math.nan
    print(f"\n== {n} checks ==")
    rate = f"{s.runs / args.seconds:.0f}/s; due {n / args.every:.0f}/s"
    print(f"  synth runs in window     {s.runs:.0f} ({rate})")
    print(f"  lag samples              {len(lags)} ({s.missed} missed by the recorder)")
    print(f"  schedule lag ms          p50 {ms(p50)}  p99 {ms(p99)}  max {ms(worst)}")
    print(f"  histogram p99 bucket     <= {ms(s.hist_p99)} ms (from the warm-up on: coarse)")
    print(f"  synth CPU s / 1k runs    {s.cpu_s_per_1k:.3f}")
    print(
        f"  synth peak RSS           {s.rss_mb:.0f} MB over {1 + s.processes} processes "
        f"(each process's own peak, summed; the tree's PSS, sampled, peaked at {s.pss_mb:.0f} MB)"
    )
    print("  deploy -> verdict (20)   " + ", ".join(f"{t:.2f}s" for t in s.deploy_s))
    if b is not None:
        print(f"  blackbox probes          {b.probes} ({b.failed} failed or errors)")
        print(f"  probe driver lateness    p99 {ms(b.late_s_p99)} ms")
        print(f"  blackbox CPU s / 1k      {b.cpu_s_per_1k:.3f}")
        print(f"  synth / blackbox CPU     {ratio:.2f}x")
    row = [
        f"{n}",
        f"{s.runs:.0f}",
        ms(p50),
        ms(p99),
        ms(worst),
        f"{s.cpu_s_per_1k:.2f}",
        f"{b.cpu_s_per_1k:.2f}" if b else "-",
        f"{ratio:.2f}x" if b else "-",
        f"{s.rss_mb:.0f}",
        f"{deploy:.2f}",
    ]
    lines = []
    if n in TARGET_P99_S:
        target = TARGET_P99_S[n]
        lines.append(
            f"{n:>5}: p99 lag {ms(p99)} ms < {target * 1000:.0f} ms  {verdict(p99 < target)}"
        )
    if n in TARGET_RSS_MB:
        limit = TARGET_RSS_MB[n]
        lines.append(
            f"{n:>5}: peak RSS {s.rss_mb:.0f} MB < {limit:.0f} MB  {verdict(s.rss_mb < limit)}"
        )
    if b is not None:
        ok = ratio <= TARGET_CPU_RATIO
        lines.append(
            f"{n:>5}: CPU/probe {ratio:.2f}x blackbox <= {TARGET_CPU_RATIO:g}x  {verdict(ok)}"
        )
    return row, lines


HEADER = ["checks", "runs", "lag p50", "p99", "max", "CPU/1k", "bb CPU/1k", "ratio", "RSS MB"]
HEADER.append("deploy s")


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for r in [HEADER, *rows]:
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)))
    print("  (lag in ms; CPU in seconds per 1,000 runs or probes; deploy: median of 3)")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--checks", default="1000,5000", help="comma-separated check counts")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per side")
    parser.add_argument("--every", type=float, default=10.0, help="check interval, seconds")
    parser.add_argument("--no-blackbox", action="store_true", help="skip the peer")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="scheduler.concurrency (default: runs due per second, at least 100)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="scheduler.processes (default: one per CPU past 250 runs/s, else 0)",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.checks.split(",") if x.strip()]
    print(
        f"agent_scale: checks {sizes}, every {args.every:g}s, window {args.seconds:g}s per side, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    targets: list[str] = []
    rows: list[list[str]] = []
    with running_nginx() as nginx:
        for n in sizes:
            print(f"\n-- {n} checks: synth agent")
            s = measure_synth(nginx, n, args)
            b = None
            if not args.no_blackbox:
                print(f"-- {n} targets: blackbox_exporter")
                b = measure_blackbox(nginx, n, args)
            row, lines = report(n, s, b, args)
            rows.append(row)
            targets += lines
    print("\nSummary:")
    print_table(rows)
    print("\nTargets:")
    for line in targets:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
