"""Cluster mode at scale: N checks run by 1 agent, then shared by 3 agents on one PostgreSQL,
then one of the 3 killed with SIGKILL.

One private PostgreSQL (the Debian binaries, as tests/integration/postgres.py runs them)
and one private nginx (bench/nginx.py), both on 127.0.0.1 only. N one-step YAML checks
(`GET /ok?c=<i>`, expect 200, every --every seconds, no retries) with scheduler jitter
--jitter (default 0: each run starts on its due time, so the store's `started_at` puts
it on its due time exactly). Every agent is `synth agent` in cluster mode (`cluster:
{member_id, lease, expected_members}`, location `bench`), all with the same config but
their member id; each phase has a fresh database.

1. **one agent**: one member running all N. After it settles (live, running all N) and
   one interval of warm-up, for --seconds: scheduled runs started in the window (read back
   from the store), user+sys CPU of the agent's process tree over the window -> CPU ms per
   run, schedule lag p50/p99/max from `/debug/scheduler-lag` (every sample), PostgreSQL's
   CPU per run (context), duplicate runs per due time and due times with no run.
2. **three agents**: three members, same checks. Once settled (each runs exactly its
   rendezvous share, as `synth.cluster.membership.owned` computes it) and one interval of
   warm-up, the same window: total runs, summed CPU -> CPU ms per run and its ratio to
   the one agent's (the cluster's overhead), each member's owned checks and lag, duplicate
   runs per due time and missing due times over all N.
3. **kill**: SIGKILL to the third member's PID. Takeover time = from the kill until both
   survivors' `GET /v1/cluster` show 2 live members, running, each with its 2-member
   share. Churn = the checks whose owner differs between the 3- and the 2-member
   assignment (ideal: only the killed member's ~1/3), and how many of the survivors' own
   checks moved (ideal 0). From the store, one interval after the takeover: due times
   from the kill on with no run, per check (the killed member's checks: the gap; all the
   others: none expected), results of the killed member lost in flight in the interval
   before the kill, and duplicates.

Prints a table and the targets: CPU per run of 3 agents <= 1.05x one agent's, 0 duplicate
and 0 missing due times at steady state, churn = the killed member's share (~1/3),
takeover <= lease + lease/3 + 1 s. Every process it starts is stopped by its PID (the
agents SIGTERM then SIGKILL, PostgreSQL SIGINT, nginx SIGTERM), on errors too; every
loop is bounded in time. Figures, not tests: nothing is asserted.

    .venv/bin/python bench/cluster_scale.py [--checks 3000] [--seconds 60] [--every 10]
                                            [--lease 10] [--jitter 0] [--processes 0]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import psutil
import sqlalchemy as sa
import yaml
from agent_scale import ms, running_agent, verdict
from nginx import Nginx, running_nginx
from sqlalchemy.ext.asyncio import create_async_engine
from workload import percentile

from synth.agent.scheduler import grid_start
from synth.cluster.membership import owned
from synth.cluster.rendezvous import owner
from synth.store.schema import runs as runs_table

REPO = Path(__file__).resolve().parents[1]
ENV = "bench"
LOCATION = "bench"
TOKEN = "bench-token-0123456789abcdef"  # the agent refuses tokens under 16 bytes
POLL_S = 2.0  # lag recorder polls in the window
STATE_POLL_S = 0.1  # /v1/cluster polls while waiting for a settled cluster
SETTLE_TIMEOUT_S = 120.0
STORE_QUIET_S = 30.0  # at most this long for the runs of a window to reach the store
TARGET_CPU_RATIO = 1.05


def load_postgres_server() -> Any:
    """tests/integration/postgres.py's PostgresServer, imported from its file (the tests'
    folder holds modules whose names would shadow others on sys.path)."""
    path = REPO / "tests" / "integration" / "postgres.py"
    spec = importlib.util.spec_from_file_location("synth_bench_postgres", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.PostgresServer


@contextlib.contextmanager
def running_postgres() -> Iterator[Any]:
    """A private PostgreSQL server, stopped by its PID and deleted on exit."""
    server = load_postgres_server().create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


# -- files ------------------------------------------------------------------------------------


def check_names(n: int) -> list[str]:
    return [f"c{i:05d}" for i in range(n)]


def job_key(check: str) -> str:
    """The (check × environment) key rendezvous hashing and the schedule's grid use."""
    return f"{check}@{ENV}"


def write_checks(directory: Path, n: int, every_s: float) -> Path:
    """N one-step checks in one YAML file, shared by every member."""
    checks = [
        {
            "name": name,
            "service": "web",
            "every": f"{every_s:g}s",
            "timeout": "5s",
            "retries": 0,
            "steps": [
                {"name": "get", "request": {"path": f"/ok?c={i}"}, "expect": {"status": 200}}
            ],
        }
        for i, name in enumerate(check_names(n))
    ]
    folder = directory / "checks"
    folder.mkdir(parents=True)
    (folder / "bench.yaml").write_text(yaml.safe_dump({"checks": checks}))
    return folder


def write_member_config(
    directory: Path,
    checks: Path,
    base_url: str,
    store: str,
    member: str,
    members: int,
    args: argparse.Namespace,
    concurrency: int,
) -> Path:
    directory.mkdir(parents=True)
    config = {
        "location": LOCATION,
        "checks": [str(checks)],
        "environments": {ENV: {"services": {"web": {"base_url": base_url}}}},
        "server": {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN]},
        "store": {"url": store},
        "scheduler": {
            "jitter": args.jitter,
            "processes": args.processes,
            "concurrency": concurrency,
        },
        "cluster": {"member_id": member, "lease": f"{args.lease:g}s", "expected_members": members},
    }
    path = directory / "synth.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- processes --------------------------------------------------------------------------------


def tree_cpu_s(pid: int) -> float:
    """user+sys of a process and all its descendants, the exited ones included (a parent's
    children_* times hold its reaped children's)."""
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return math.nan
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            t = child.cpu_times()
            total += t.user + t.system
    return total


# -- the cluster as the agents see it ---------------------------------------------------------


@dataclass
class Agent:
    member_id: str
    pid: int
    client: httpx2.Client


def cluster_state(agent: Agent) -> dict[str, Any] | None:
    with contextlib.suppress(httpx2.TransportError, ValueError):
        response = agent.client.get("/v1/cluster", timeout=5.0)
        if response.status_code == 200:
            state: dict[str, Any] = response.json()
            return state
    return None


def shares(keys: Sequence[str], members: Sequence[str]) -> dict[str, int]:
    return {m: len(owned(keys, m, members)) for m in members}


def wait_settled(agents: Sequence[Agent], keys: Sequence[str], timeout_s: float) -> float:
    """Poll until every agent is running, sees len(agents) live members and owns exactly
    its rendezvous share; seconds waited."""
    expected = shares(keys, [a.member_id for a in agents])
    started = time.monotonic()
    deadline = started + timeout_s
    seen: list[Any] = []
    while True:
        states = [cluster_state(a) for a in agents]
        seen = [
            s and {k: s.get(k) for k in ("member_id", "running", "live_members", "owned_checks")}
            for s in states
        ]
        if all(
            s is not None
            and s["running"]
            and s.get("live_members") == len(agents)
            and s["owned_checks"] == expected[s["member_id"]]
            for s in states
        ):
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"not settled after {timeout_s:g}s: expected shares {expected}, agents saw {seen}"
            )
        time.sleep(STATE_POLL_S)


# -- the store --------------------------------------------------------------------------------


def _where(since: datetime, until: datetime) -> tuple[Any, ...]:
    return (
        runs_table.c.phase == "scheduled",
        runs_table.c.environment == ENV,
        runs_table.c.started_at >= since,
        runs_table.c.started_at < until,
    )


async def _count_runs(url: str, since: datetime, until: datetime) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(runs_table)
            return int((await connection.execute(query.where(*_where(since, until)))).scalar_one())
    finally:
        await engine.dispose()


async def _read_runs(url: str, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            query = sa.select(runs_table.c.check_name, runs_table.c.started_at)
            result = await connection.execute(query.where(*_where(since, until)))
            return [(str(row[0]), row[1]) for row in result]
    finally:
        await engine.dispose()


def stored_runs(url: str, since: datetime, until: datetime) -> list[tuple[str, datetime]]:
    """(check, started_at) of the scheduled runs started in [since, until), once the
    writers have stored them: read when two counts a second apart agree (bounded)."""
    wait = (until - datetime.now(UTC)).total_seconds()
    if wait > 0:
        time.sleep(wait)
    deadline = time.monotonic() + STORE_QUIET_S
    last = -1
    while time.monotonic() < deadline:
        count = asyncio.run(_count_runs(url, since, until))
        if count == last:
            break
        last = count
        time.sleep(1.0)
    return asyncio.run(_read_runs(url, since, until))


class Tally:
    """Stored scheduled runs per (check, due time k): k = floor((started - origin) / every),
    the origin being the check's grid start (synth.agent.scheduler.grid_start). Exact
    while jitter + lag < every."""

    def __init__(self, rows: Sequence[tuple[str, datetime]], every_s: float) -> None:
        self.every_s = every_s
        self.origins: dict[str, float] = {}
        self.counts: Counter[tuple[str, int]] = Counter()
        for check, started in rows:
            k = math.floor((started.timestamp() - self.origin(check)) / every_s + 1e-6)
            self.counts[(check, k)] += 1

    def origin(self, check: str) -> float:
        if check not in self.origins:
            self.origins[check] = grid_start(job_key(check), self.every_s).timestamp()
        return self.origins[check]

    def due_times(self, check: str, start: float, end: float) -> range:
        """The k of the check's due times in [start, end) (epoch seconds)."""
        origin = self.origin(check)
        return range(
            math.ceil((start - origin) / self.every_s), math.ceil((end - origin) / self.every_s)
        )

    def duplicates(self) -> int:
        """Runs beyond the first of a due time."""
        return sum(n - 1 for n in self.counts.values() if n > 1)

    def missing(self, checks: Sequence[str], start: float, end: float) -> Counter[str]:
        """Per check, its due times in [start, end) with no stored run."""
        gaps: Counter[str] = Counter()
        for check in checks:
            for k in self.due_times(check, start, end):
                if self.counts[(check, k)] == 0:
                    gaps[check] += 1
        return gaps

    def expected(self, checks: Sequence[str], start: float, end: float) -> int:
        return sum(len(self.due_times(c, start, end)) for c in checks)


# -- one phase --------------------------------------------------------------------------------


@dataclass
class MemberFigures:
    member_id: str
    owned: int
    cpu_s: float
    lags: list[float]
    lost_samples: int


@dataclass
class PhaseFigures:
    label: str
    members: list[MemberFigures]
    window_s: float
    runs: int  # stored scheduled runs started in the window
    due: int  # due times in the window
    duplicates: int
    missing: int
    pg_cpu_s: float
    settle_s: float

    @property
    def cpu_s(self) -> float:
        return sum(m.cpu_s for m in self.members)

    @property
    def cpu_ms_per_run(self) -> float:
        return self.cpu_s / self.runs * 1000 if self.runs else math.nan

    @property
    def lags(self) -> list[float]:
        return [lag for m in self.members for lag in m.lags]


@dataclass
class KillFigures:
    victim: str
    takeover_s: float
    moved: int
    total: int
    victim_share: int
    survivors_moved: int
    survivors_owned_after: dict[str, int]
    gapped_checks: int  # checks with a due time from the kill on and no run
    gapped_outside_victim: int
    max_missed: int
    missed_due_times: int
    lost_before_kill: int
    duplicates: int
    observed_s: float


def measure_window(
    agents: Sequence[Agent], postgres: Any, seconds: float
) -> tuple[datetime, datetime, list[MemberFigures], float]:
    """Lag samples and CPU of each agent (and PostgreSQL's CPU) over `seconds`."""
    seqs = {}
    for a in agents:
        page = a.client.get("/debug/scheduler-lag", params={"after": 10**12}).json()
        seqs[a.member_id] = page["count"]
    lags: dict[str, list[float]] = {a.member_id: [] for a in agents}
    lost = dict.fromkeys(seqs, 0)
    owned_now = {a.member_id: (cluster_state(a) or {}).get("owned_checks", -1) for a in agents}
    pg0 = tree_cpu_s(postgres.process.pid)
    cpu0 = {a.member_id: tree_cpu_s(a.pid) for a in agents}
    w0 = datetime.now(UTC)
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(POLL_S, left))
        for a in agents:
            page = a.client.get("/debug/scheduler-lag", params={"after": seqs[a.member_id]}).json()
            seqs[a.member_id] = page["count"]
            lost[a.member_id] += page["missed"]
            lags[a.member_id].extend(page["lags_s"])
    cpu1 = {a.member_id: tree_cpu_s(a.pid) for a in agents}
    pg1 = tree_cpu_s(postgres.process.pid)
    w1 = datetime.now(UTC)
    members = [
        MemberFigures(
            member_id=a.member_id,
            owned=owned_now[a.member_id],
            cpu_s=cpu1[a.member_id] - cpu0[a.member_id],
            lags=lags[a.member_id],
            lost_samples=lost[a.member_id],
        )
        for a in agents
    ]
    return w0, w1, members, pg1 - pg0


def run_phase(
    label: str,
    count: int,
    nginx: Nginx,
    postgres: Any,
    checks: Path,
    directory: Path,
    args: argparse.Namespace,
    kill: bool,
) -> tuple[PhaseFigures, KillFigures | None]:
    names = check_names(args.checks)
    keys = [job_key(n) for n in names]
    store = postgres.create_database()
    concurrency = max(100, math.ceil(args.checks / args.every))  # as agent_scale.py sizes it
    ids = [f"m{i}" for i in range(count)]
    with contextlib.ExitStack() as stack:
        agents = []
        started = time.monotonic()
        for member in ids:
            config = write_member_config(
                directory / member, checks, nginx.base_url, store, member, count, args, concurrency
            )
            process, client = stack.enter_context(running_agent(config))
            agents.append(Agent(member, process.pid, client))
        settle_s = wait_settled(agents, keys, SETTLE_TIMEOUT_S)
        print(
            f"  {label}: {count} member(s) ready in {time.monotonic() - started:.1f}s, settled "
            f"{settle_s:.1f}s after the last was ready; shares "
            + ", ".join(f"{m}={s}" for m, s in shares(keys, ids).items())
        )
        time.sleep(args.every)  # warm-up: the first runs are spread over one interval
        w0, w1, members, pg_cpu = measure_window(agents, postgres, args.seconds)
        window = (w1 - w0).total_seconds()
        slack = timedelta(seconds=args.jitter + 2)
        rows = stored_runs(store, w0 - timedelta(seconds=args.every), w1 + slack)
        tally = Tally(rows, args.every)
        in_window = sum(1 for _, t in rows if w0 <= t < w1)
        start, end = w0.timestamp(), w1.timestamp()
        phase = PhaseFigures(
            label=label,
            members=members,
            window_s=window,
            runs=in_window,
            due=tally.expected(names, start, end),
            duplicates=tally.duplicates(),
            missing=sum(tally.missing(names, start, end).values()),
            pg_cpu_s=pg_cpu,
            settle_s=settle_s,
        )
        killed = measure_kill(agents, keys, names, store, args) if kill else None
    return phase, killed


def measure_kill(
    agents: list[Agent],
    keys: Sequence[str],
    names: Sequence[str],
    store: str,
    args: argparse.Namespace,
) -> KillFigures:
    ids = [a.member_id for a in agents]
    victim, survivors = agents[-1], agents[:-1]
    left = [a.member_id for a in survivors]
    before = {key: owner(key, ids) for key in keys}
    after = {key: owner(key, left) for key in keys}
    moved = [k for k in keys if before[k] != after[k]]
    victim_keys = {k for k in keys if before[k] == victim.member_id}
    survivors_moved = sum(1 for k in moved if before[k] != victim.member_id)

    killed_at = datetime.now(UTC)
    killed = time.monotonic()
    psutil.Process(victim.pid).kill()  # SIGKILL to the PID started: no goodbye
    # The lease runs out within `lease` of the kill; the survivors read that within a
    # renewal period (lease/3). Waited for up to 3 leases and 30 s more.
    wait_settled(survivors, keys, args.lease * 3 + 30)
    takeover_s = time.monotonic() - killed
    print(f"  kill: {victim.member_id} killed; survivors settled after {takeover_s:.2f}s")
    # One interval more: every moved check has had a due time on its new owner.
    time.sleep(args.every + 1)
    observed_end = datetime.now(UTC)
    rows = stored_runs(
        store,
        killed_at - timedelta(seconds=2 * args.every),
        observed_end + timedelta(seconds=args.jitter + 2),
    )
    tally = Tally(rows, args.every)
    kill_s, end_s = killed_at.timestamp(), observed_end.timestamp()
    gaps = tally.missing(names, kill_s, end_s)
    victim_names = {k.removesuffix(f"@{ENV}") for k in victim_keys}
    lost = tally.missing(sorted(victim_names), kill_s - args.every, kill_s)
    owned_after = {a.member_id: (cluster_state(a) or {}).get("owned_checks", -1) for a in survivors}
    return KillFigures(
        victim=victim.member_id,
        takeover_s=takeover_s,
        moved=len(moved),
        total=len(keys),
        victim_share=len(victim_keys),
        survivors_moved=survivors_moved,
        survivors_owned_after=owned_after,
        gapped_checks=len(gaps),
        gapped_outside_victim=sum(1 for c in gaps if c not in victim_names),
        max_missed=max(gaps.values(), default=0),
        missed_due_times=sum(gaps.values()),
        lost_before_kill=sum(lost.values()),
        duplicates=tally.duplicates(),
        observed_s=end_s - kill_s,
    )


# -- report -----------------------------------------------------------------------------------


def lag_cells(lags: Sequence[float]) -> list[str]:
    if not lags:
        return ["n/a"] * 3
    return [ms(statistics.median(lags)), ms(percentile(lags, 99)), ms(max(lags))]


HEADER = ["", "owned", "runs", "runs/s", "CPU s", "CPU ms/run", "lag p50", "p99", "max"]


def rows_for(phase: PhaseFigures) -> list[list[str]]:
    rows = [
        [
            phase.label,
            str(sum(m.owned for m in phase.members)),
            str(phase.runs),
            f"{phase.runs / phase.window_s:.0f}",
            f"{phase.cpu_s:.1f}",
            f"{phase.cpu_ms_per_run:.3f}",
            *lag_cells(phase.lags),
        ]
    ]
    if len(phase.members) > 1:
        for m in phase.members:
            rows.append(
                [f"  {m.member_id}", str(m.owned), "", "", f"{m.cpu_s:.1f}", "", *lag_cells(m.lags)]
            )
    return rows


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for r in [HEADER, *rows]:
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        print("  " + "  ".join(cells))
    print("  (lag in ms, every sample of the window; CPU: user+sys of the agents' process trees)")


def print_phase(phase: PhaseFigures) -> None:
    samples = sum(len(m.lags) for m in phase.members)
    lost = sum(m.lost_samples for m in phase.members)
    print(f"\n== {phase.label} ==")
    print(f"  window                   {phase.window_s:.1f}s")
    print(f"  stored runs in window    {phase.runs} ({phase.due} due times in it)")
    print(f"  duplicate runs / due     {phase.duplicates}")
    print(f"  due times with no run    {phase.missing}")
    print(f"  lag samples              {samples} ({lost} dropped by the recorders)")
    print(f"  agents CPU ms / run      {phase.cpu_ms_per_run:.3f}")
    pg = phase.pg_cpu_s / phase.runs * 1000 if phase.runs else math.nan
    print(f"  PostgreSQL CPU ms / run  {pg:.3f} (context: the store's side, lease rows included)")


def print_kill(k: KillFigures, args: argparse.Namespace) -> None:
    print(f"\n== SIGKILL of {k.victim} ==")
    print(f"  takeover                 {k.takeover_s:.2f}s (kill -> survivors settled)")
    print(
        f"  churn                    {k.moved}/{k.total} = {k.moved / k.total:.3f} "
        f"(ideal 1/3 = 0.333; the killed member owned {k.victim_share})"
    )
    print(f"  survivors' checks moved  {k.survivors_moved} (ideal 0)")
    print(
        "  survivors own after      "
        + ", ".join(f"{m}={n}" for m, n in k.survivors_owned_after.items())
    )
    print(
        f"  from the store, {k.observed_s:.0f}s from the kill: {k.gapped_checks} checks missed "
        f"{k.missed_due_times} due times ({k.gapped_outside_victim} of those checks not the "
        f"killed member's); max missed per check {k.max_missed} interval(s) of {args.every:g}s"
    )
    print(
        f"  killed member's results lost in the interval before the kill (in flight or "
        f"unwritten): {k.lost_before_kill}; duplicates around the kill: {k.duplicates}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--checks", type=int, default=3000, help="number of checks")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per phase")
    parser.add_argument("--every", type=float, default=10.0, help="check interval, seconds")
    parser.add_argument("--lease", type=float, default=10.0, help="cluster.lease, seconds")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="scheduler.jitter, seconds (< every/2)"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="scheduler.processes of every agent"
    )
    args = parser.parse_args()
    members = 3
    takeover_target = args.lease + args.lease / 3 + 1
    print(
        f"cluster_scale: {args.checks} checks every {args.every:g}s (jitter {args.jitter:g}s), "
        f"window {args.seconds:g}s, lease {args.lease:g}s, scheduler.processes "
        f"{args.processes}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    with (
        tempfile.TemporaryDirectory(prefix="synth-bench-cluster-") as tmp,
        running_postgres() as postgres,
        running_nginx() as nginx,
    ):
        directory = Path(tmp)
        checks = write_checks(directory, args.checks, args.every)
        print(f"\n-- one agent (PostgreSQL on port {postgres.port}, nginx {nginx.base_url})")
        one, _ = run_phase("1 agent", 1, nginx, postgres, checks, directory / "one", args, False)
        print_phase(one)
        print(f"\n-- {members} agents")
        three, kill = run_phase(
            f"{members} agents", members, nginx, postgres, checks, directory / "three", args, True
        )
        print_phase(three)
        assert kill is not None
        print_kill(kill, args)

    ratio = three.cpu_ms_per_run / one.cpu_ms_per_run
    print("\nSummary:")
    print_table(rows_for(one) + rows_for(three))
    print(f"  CPU per run, {members} agents / 1 agent: {ratio:.3f}x")
    # What the ratio is made of: the agents' CPU beyond the 1-agent cost of the same runs,
    # per second (a per-member fixed cost shows as a ratio that falls as N grows).
    extra = (three.cpu_ms_per_run - one.cpu_ms_per_run) * three.runs / three.window_s
    print(
        f"  extra CPU of {members} agents for the same runs: {extra:.1f} ms/s "
        f"({extra / (members - 1):.1f} ms/s per member beyond the first)"
    )
    with_pg = [(p.cpu_s + p.pg_cpu_s) / p.runs * 1000 if p.runs else math.nan for p in (one, three)]
    print(
        f"  with PostgreSQL's CPU: {with_pg[0]:.3f} vs {with_pg[1]:.3f} ms/run, "
        f"{with_pg[1] / with_pg[0]:.3f}x (context)"
    )
    worst_p99 = max((percentile(m.lags, 99) for m in three.members if m.lags), default=math.nan)
    one_p99 = percentile(one.lags, 99) if one.lags else math.nan
    missed_bound = math.ceil(takeover_target / args.every)
    print("\nTargets:")
    lines = [
        f"CPU/run {members} agents vs 1: {ratio:.3f}x <= {TARGET_CPU_RATIO:g}x  "
        + verdict(ratio <= TARGET_CPU_RATIO),
        f"duplicate runs at steady state: {one.duplicates} + {three.duplicates} = 0  "
        + verdict(one.duplicates + three.duplicates == 0),
        f"missing due times at steady state: {one.missing} + {three.missing} = 0  "
        + verdict(one.missing + three.missing == 0),
        f"worst member p99 lag: {ms(worst_p99)} ms (1 agent: {ms(one_p99)} ms)",
        f"churn after the kill: {kill.moved}/{kill.total} = {kill.moved / kill.total:.3f} "
        f"(1/{members} = {1 / members:.3f}), the killed member's share only  "
        + verdict(kill.moved == kill.victim_share and kill.survivors_moved == 0),
        f"takeover: {kill.takeover_s:.2f}s <= lease + lease/3 + 1 s = {takeover_target:.2f}s  "
        + verdict(kill.takeover_s <= takeover_target),
        f"due times missed per moved check: max {kill.max_missed} <= {missed_bound}, "
        f"other checks {kill.gapped_outside_victim}, duplicates {kill.duplicates}  "
        + verdict(
            kill.max_missed <= missed_bound
            and kill.gapped_outside_victim == 0
            and kill.duplicates == 0
        ),
    ]
    for line in lines:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
