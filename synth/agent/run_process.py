"""A run process: runs scheduled declarative checks for the agent, on another CPU core.

Started by the agent (`synth.agent.run_processes`) as
`python -m synth.agent.run_process --generation G --shard I --shards N [--config FILE]
[--spans] [--browser] [PATH ...]`. It loads the same config and its share of the YAML
checks itself, then serves frames (`synth.agent.frames`) on stdin/stdout.

With `--browser` it is a browser process instead: it loads every check that drives a
browser (YAML or Python), lowers its priority to `browser.nice` (its Chromium inherits it)
and runs the scheduled runs the agent sends it, one at a time, on its own Chromium. The
Playwright client then shares no interpreter with the agent's loop, whose API runs kept
their schedule ~50 ms worse (p50) beside two browser worker threads.

Frames:

    agent -> here   ("run", seq, generation, check, env, location, due)
                    ("cancel", seq)   ("reload", generation)   ("stop",)
    here -> agent   ("ready", generation, checks, problems)
                    ("result", seq, RunResult, lag_s, span_records, launches)
                                      launches: Chromium processes this process started
                                      since its previous result (browser processes)
                    ("stale", seq)    the check or its generation is not loaded here:
                                      the agent runs it itself
                    ("crashed", seq, message)
                    ("reloaded", generation, ok, checks, problems)

Storing, metrics, alerting and span export stay in the agent: a result and its spans go
back to it. The process ignores SIGINT/SIGTERM/SIGHUP (the agent decides when it stops:
a Ctrl-C reaches the whole process group) and exits when told to or when stdin closes
(the agent is gone, even by SIGKILL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import traceback
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from synth.agent import frames, gc_tuning, malloc_tuning
from synth.model import CheckSpec, Phase, RunRequest
from synth.runner import Runner
from synth.spans import IdTracer, RunTracer

if TYPE_CHECKING:  # the OpenTelemetry SDK (~2.5 MB) loads only when spans are on
    from synth.config import Settings
    from synth.outputs.span_export import SpanRecord

log = logging.getLogger("synth.run_process")

BROWSER_CLOSE_S = 5.0


def shard_of(check: str, shards: int) -> int:
    """The run process (0..shards-1) that runs `check`: stable across runs and restarts."""
    return zlib.crc32(check.encode()) % shards


class SpanBuffer:
    """Stands in for the span batch processor: keeps a run's finished spans until its
    result is sent, so they travel to the agent's exporter with it."""

    def __init__(self) -> None:
        self.records: list[SpanRecord] = []

    def submit(self, records: Sequence[SpanRecord]) -> None:
        self.records.extend(records)

    def take(self) -> list[SpanRecord]:
        taken, self.records = self.records, []
        return taken


@dataclass(frozen=True, slots=True)
class _Loaded:
    """One generation of this process's checks, with the runner for its settings."""

    checks: dict[str, CheckSpec]
    runner: Runner


class RunProcess:
    """The process's state: loaded generations of checks, runs in flight.

    A reload is two-phase: the agent sends `reload` with the next generation, keeps sending
    runs of the current one (served from the set loaded for it) until every run process
    has answered `reloaded`, then switches — or never does, if it rejected the new files.
    Kept: the generation runs come for and the newest loaded; an older one is dropped
    when the first run of a newer one comes (the agent sends none of it after that)."""

    def __init__(self, args: argparse.Namespace, writer: asyncio.StreamWriter) -> None:
        self.config = Path(args.config) if args.config else None
        self.paths: list[str] = list(args.paths)
        self.shard: int = args.shard
        self.shards: int = args.shards
        self.browser: bool = args.browser
        self.launches = 0  # Chromium started since the last result sent
        if self.browser:
            from synth.browser.engine import LAUNCH_HOOKS

            LAUNCH_HOOKS.append(self._launched)
        self.writer = writer
        self.spans = SpanBuffer() if args.spans else None
        self.loaded: dict[int, _Loaded] = {}
        self.in_use = args.generation  # of the latest run the agent sent
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.reloading_to: int | None = None
        self.held: list[tuple[int, int, str, str, str, float]] = []

    def _launched(self) -> None:
        self.launches += 1

    def tracer(self) -> RunTracer:
        if self.spans is None:
            return IdTracer()
        from synth.outputs.tracing import OtelTracer

        return OtelTracer(self.spans)  # type: ignore[arg-type]  # duck-typed processor

    def load(self) -> tuple[_Loaded | None, list[str]]:
        """This process's share of the checks as the files say now, or None and why."""
        # Config and checks only: the agent validated the rest (hooks, playbooks), and
        # importing what that needs (store, alerting) would cost this process ~40 MB.
        from synth.checks.loader import load_checks
        from synth.config import ConfigError, load_settings

        try:
            settings = load_settings(self.config)
        except ConfigError as exc:
            return None, list(exc.problems)
        if self.browser:
            return self._load_browser_checks(settings)
        # Only this process's share, and only YAML checks (the only ones it is sent): the
        # others are not compiled, and no Python check module runs its code here.
        loaded = load_checks(
            self.paths or settings.checks,
            yaml_only=True,
            keep=lambda name: shard_of(name, self.shards) == self.shard,
        )
        checks = {check.name: check for check in loaded.checks}
        return _Loaded(checks, Runner(settings, tracer=self.tracer())), [
            str(p) for p in loaded.problems
        ]

    def _load_browser_checks(self, settings: Settings) -> tuple[_Loaded | None, list[str]]:
        """Every check that drives a browser, run one at a time on this process's Chromium."""
        from synth.checks.loader import load_checks

        loaded = load_checks(self.paths or settings.checks)
        checks = {check.name: check for check in loaded.checks if check.uses_browser}
        one_at_a_time = settings.browser.model_copy(update={"concurrency": 1})
        settings = settings.model_copy(update={"browser": one_at_a_time})
        return _Loaded(checks, Runner(settings, tracer=self.tracer())), [
            str(p) for p in loaded.problems
        ]

    def keep(self, generation: int, loaded: _Loaded) -> None:
        self.loaded[generation] = loaded
        for old in [g for g in self.loaded if g not in (generation, self.in_use)]:
            del self.loaded[old]  # loaded for a reload the agent did not commit

    def use(self, generation: int) -> None:
        """A run of `generation` came: the agent switched to it, older ones go."""
        if generation > self.in_use:
            self.in_use = generation
            for old in [g for g in self.loaded if g < generation]:
                del self.loaded[old]

    def send(self, *message: object) -> None:
        self.writer.write(frames.encode(message))

    async def reload(self, generation: int) -> None:
        self.reloading_to = generation
        try:
            loaded, problems = await asyncio.to_thread(self.load)
        except Exception:  # a bug, not a bad file (load reports those): keep the old set
            loaded, problems = None, [traceback.format_exc(limit=5)]
        if loaded is not None:
            await loaded.runner.warm_up()
            self.keep(generation, loaded)
            gc_tuning.freeze(full=True)
        self.reloading_to = None
        count = len(loaded.checks) if loaded is not None else 0
        self.send("reloaded", generation, loaded is not None, count, problems)
        held, self.held = self.held, []
        for run in held:
            self.start_run(*run)

    def start_run(
        self, seq: int, generation: int, name: str, env: str, loc: str, due: float
    ) -> None:
        if generation == self.reloading_to:
            # Sent for the generation being loaded: wait for it rather than handing the run
            # back to the agent.
            self.held.append((seq, generation, name, env, loc, due))
            return
        loaded = self.loaded.get(generation)
        if loaded is not None:
            self.use(generation)
        check = loaded.checks.get(name) if loaded is not None else None
        if loaded is None or check is None:
            self.send("stale", seq)
            return
        task = asyncio.create_task(self._run(seq, loaded.runner, check, env, loc, due))
        self.tasks[seq] = task
        task.add_done_callback(lambda _: self.tasks.pop(seq, None))

    async def _run(
        self, seq: int, runner: Runner, check: CheckSpec, env: str, location: str, due: float
    ) -> None:
        lag = max(time.time() - due, 0.0)
        request = RunRequest(check=check, environment=env, phase=Phase.SCHEDULED, location=location)
        try:
            result = await runner.run(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.send("crashed", seq, traceback.format_exc(limit=20))
            return
        launches, self.launches = self.launches, 0
        spans = self.spans.take() if self.spans else []
        self.send("result", seq, result, lag, spans, launches)

    async def serve(self, reader: asyncio.StreamReader, generation: int) -> None:
        malloc_tuning.fix_mmap_threshold()
        loaded, problems = self.load()
        if self.browser and loaded is not None:
            nice = loaded.runner.settings.browser.nice
            with contextlib.suppress(OSError):  # at least `nice`; never raises
                os.nice(max(nice - os.nice(0), 0))
        if loaded is not None:
            await loaded.runner.warm_up()
            self.keep(generation, loaded)
        gc_tuning.tune()
        gc_tuning.freeze(full=True)
        count = len(loaded.checks) if loaded is not None else 0
        self.send("ready", generation if loaded is not None else -1, count, problems)
        reloading: asyncio.Task[None] | None = None
        while True:
            message = await frames.read(reader)
            if message is None or message[0] == "stop":
                break
            kind = message[0]
            if kind == "run":
                self.start_run(*message[1:])
            elif kind == "cancel":
                task = self.tasks.get(message[1])
                if task is not None:
                    task.cancel()
            elif kind == "reload":
                if reloading is not None:
                    await reloading  # reloads apply in order
                reloading = asyncio.create_task(self.reload(message[1]))
            else:
                log.error("unknown message from the agent: %r", kind)
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if self.browser:
            from synth.browser.engine import close_running_loop_engine

            with contextlib.suppress(Exception):  # a browser that will not close is killed
                await asyncio.wait_for(close_running_loop_engine(), BROWSER_CLOSE_S)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()


async def _main(args: argparse.Namespace, out_fd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=frames.MAX_FRAME)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    try:
        await RunProcess(args, writer).serve(reader, args.generation)
    finally:
        writer.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synth.agent.run_process")
    parser.add_argument("--config")
    parser.add_argument("--generation", type=int, default=0)
    parser.add_argument("--spans", action="store_true")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--browser", action="store_true")
    parser.add_argument("--log-format", default="auto")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    # Frames go out on a private copy of stdout; fd 1 becomes stderr, so a stray print
    # (a library's, a check's) cannot corrupt the stream.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    from synth.outputs.logging import configure_logging

    configure_logging(args.log_format, args.log_level)
    asyncio.run(_main(args, out_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main())
