"""The web pages at scale: server time of `/ui/` pages for N checks with a week of runs.

1. Seeds a SQLite store through `Store.save_runs` (the agent's own write path, rollups
   included) with --runs runs per check spread over the last 7 days, ~2 % failed, in
   batches of 2,000; prints the write rate (runs/s), the rollups included.
2. Starts `synth agent` (its own process, 127.0.0.1, a free port) over that store with the
   N checks loaded (a yearly cron: nothing runs meanwhile), and asks each page --repeat
   times in a row: the overview (pages 1..--repeat, then a status filter and a service
   filter), a check's page, a run's page, caught before production, the deploys timeline.
   Prints the server time (`Server-Timing`) and the wall time per page: p50 / p95 / max,
   and the agent's very first overview page apart (cold: every pair's status read and
   sorted, templates compiled), against the issue's target (< 300 ms server time per
   overview page at 5,000 checks). Overview statuses are re-read every 2 s, so a pass of
   pages mixes cached and fresh reads as a person clicking through would.
   The peer, in the same run against the same agent: `GET /v1/runs?limit=50`, the API's
   plain list of runs (one indexed query, JSON).

Stops the agent by the PID it started. Every loop is bounded.

    .venv/bin/python bench/ui_pages.py [--checks 5000] [--runs 100] [--repeat 20] [--settle 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_scale import running_agent

from synth.model import Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import Store

ENV = "prod"
TARGET_MS = 300.0
BATCH = 2000


def write_files(directory: Path, checks: int) -> Path:
    folder = directory / "checks"
    folder.mkdir()
    for i in range(checks):
        (folder / f"c{i:05d}.yaml").write_text(
            f"name: c{i:05d}\nservice: svc{i % 50}\ncron: '0 0 1 1 *'\ntags: [t{i % 5}]\n"
            "steps:\n  - name: get\n    request: {path: /ok}\n"
        )
    config = {
        "checks": ["checks"],
        "environments": {
            ENV: {"services": {f"svc{i}": {"base_url": "http://127.0.0.1:9"} for i in range(50)}},
            "staging": {
                "services": {f"svc{i}": {"base_url": "http://127.0.0.1:9"} for i in range(50)}
            },
        },
        "baseline": {"from_env": "staging"},
        "server": {"host": "127.0.0.1", "port": 0},
        "store": {"url": f"sqlite+aiosqlite:///{directory}/synth.db"},
        "scheduler": {"jitter": 0},
    }
    path = directory / "synth.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run(i: int, k: int, at: datetime, rng: random.Random) -> RunResult:
    failed = rng.random() < 0.02
    status = Status.FAILED if failed else Status.PASSED
    kind = rng.choice((FailureType.TIMEOUT, FailureType.HTTP_STATUS, FailureType.SCHEMA))
    failure = Failure(kind, "seeded failure") if failed else None
    return RunResult(
        run_id=f"r{i}-{k}",
        check=f"c{i:05d}",
        service=f"svc{i % 50}",
        environment=ENV if rng.random() < 0.9 else "staging",
        phase=Phase.SCHEDULED,
        location="local",
        status=status,
        started_at=at,
        duration_s=0.01 + rng.random() / 20,
        steps=(StepResult("get", status, 0.01, failure=failure),),
        failure=failure,
        failed_step="get" if failed else None,
    )


async def seed(url: str, checks: int, runs: int) -> tuple[float, int]:
    rng = random.Random(7)
    now = datetime.now(UTC)
    step = timedelta(days=7) / runs
    store = await Store.open(url)
    written = 0
    spent = 0.0
    try:
        batch: list[RunResult] = []
        for k in range(runs):
            at = now - step * (runs - k)
            for i in range(checks):
                batch.append(run(i, k, at, rng))
                if len(batch) >= BATCH:
                    began = time.perf_counter()
                    await store.save_runs(batch)
                    spent += time.perf_counter() - began
                    written += len(batch)
                    batch = []
            if k % max(1, runs // 10) == 0:
                print(f"  seeded {written:,} runs", flush=True)
        if batch:
            began = time.perf_counter()
            await store.save_runs(batch)
            spent += time.perf_counter() - began
            written += len(batch)
    finally:
        await store.close()
    return spent, written


def measure(client: httpx2.Client, paths: list[str]) -> tuple[list[float], list[float]]:
    server, wall = [], []
    for path in paths:
        began = time.perf_counter()
        answer = client.get(path)
        wall.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 200:
            raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:300]}")
        timing = answer.headers.get("server-timing", "")
        server.append(float(timing.split("dur=")[1]) if "dur=" in timing else float("nan"))
    return server, wall


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{statistics.median(ordered):7.1f} {p95:7.1f} {ordered[-1]:7.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=100, help="runs per check over 7 days")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--settle", type=float, default=10.0, help="s after the first page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="synth-ui-bench-") as tmp:
        directory = Path(tmp)
        config = write_files(directory, args.checks)
        url = f"sqlite+aiosqlite:///{directory}/synth.db"
        print(f"seeding {args.checks:,} checks × {args.runs} runs over 7 days ...", flush=True)
        spent, written = asyncio.run(seed(url, args.checks, args.runs))
        print(f"store writes (runs + rollups): {written / spent:,.0f} runs/s ({written:,} runs)")
        with running_agent(config) as (_, client):
            repeat = args.repeat
            # The agent's first page: every pair's status read, every row built and sorted,
            # the templates compiled, SQLite's cache cold.
            (cold,), _ = measure(client, ["/ui/"])
            # Then the agent's start-up work (retention, flakiness, silences) settles.
            time.sleep(args.settle)
            pages = {
                "overview, pages 1..n": [f"/ui/?page={p}" for p in range(1, repeat + 1)],
                "overview, status=failing": ["/ui/?status=failing"] * repeat,
                "overview, service=svc7": ["/ui/?service=svc7"] * repeat,
                "check page": [f"/ui/checks/c{i:05d}?env={ENV}" for i in range(repeat)],
                "run page": [f"/ui/runs/r{i}-{args.runs - 1}" for i in range(repeat)],
                "caught before production": ["/ui/caught"] * repeat,
                "deploys": ["/ui/deploys"] * repeat,
            }
            print(
                f"\n{args.checks:,} checks, {written:,} runs; ms, {repeat} requests each"
                f"\n{'page':<28} {'server p50   p95     max':>24}   {'wall p50    p95     max':>24}"
            )
            for name, paths in pages.items():
                server, wall = measure(client, paths)
                print(f"{name:<28} {summary(server)}   {summary(wall)}")
            _, peer = measure(client, ["/v1/runs?limit=50"] * repeat)
            print(f"{'peer: GET /v1/runs?limit=50':<28} {'':>23}   {summary(peer)}")
            worst = max(cold, *measure(client, [f"/ui/?page={p}" for p in range(1, repeat + 1)])[0])
            met = "met" if worst < TARGET_MS else "MISSED"
            print(
                f"\nthe agent's first overview page (cold): {cold:.1f} ms server time"
                f"\ntarget: overview server time < {TARGET_MS:.0f} ms per page at "
                f"{args.checks:,} checks: max {worst:.1f} ms (the cold page and a second pass of "
                f"{repeat} pages) → {met}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
