"""Run processes: scheduled declarative checks spread over other CPU cores.

One Python process runs about 400-500 one-request checks per second on a core; beyond
that the schedule falls behind. With `scheduler.processes: N` the agent starts N run
processes (`synth.agent.run_process`) and sends each scheduled run of a declarative check
to one of them, chosen by a stable hash of the check's name (each loads only its share).
The agent keeps the schedule, the concurrency bound, the store, metrics, alerting and
span export: a run process sends back the result, its schedule lag and its spans.

Whenever a run process cannot take a run — still starting, restarting after it died, or
without the checks of the current generation (a reload it could not make) — `run` returns
None and the agent runs the check itself: a run is never lost to a process boundary. A run
process that dies is restarted (with backoff); the runs it had in flight are run again by
the agent.

`browser=True` makes them browser processes (`run_process --browser`): each loads every
check that drives a browser and runs one scheduled run at a time on its own Chromium; a
run goes to an idle one, waiting for one while all are busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth.agent import frames
from synth.agent.run_process import shard_of
from synth.model import RunResult
from synth.outputs.span_export import SpanRecord

log = logging.getLogger("synth.run_processes")

START_TIMEOUT_S = 120.0
RESTART_MIN_S = 1.0
RESTART_MAX_S = 30.0
STOP_TIMEOUT_S = 5.0
RELOAD_TIMEOUT_S = 60.0
SpanSink = Callable[[list[SpanRecord]], None]


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """A run made by a run process: its result and schedule lag."""

    result: RunResult
    lag_s: float


@dataclass(eq=False)
class _Child:
    index: int
    process: asyncio.subprocess.Process
    ready: asyncio.Future[bool]
    pending: dict[int, asyncio.Future[ProcessRun | None]] = field(default_factory=dict)
    reloads: dict[int, asyncio.Future[bool]] = field(default_factory=dict)
    generations: set[int] = field(default_factory=set)  # loaded, or being loaded
    alive: bool = True
    started: float = field(default_factory=time.monotonic)
    reader: asyncio.Task[None] | None = None

    def send(self, *message: object) -> bool:
        stdin = self.process.stdin
        if not self.alive or stdin is None or stdin.is_closing():
            return False
        try:
            stdin.write(frames.encode(message))
        except (ConnectionError, RuntimeError):
            return False
        return True


class RunProcesses:
    """The agent's run processes; `run` hands a scheduled run to one of them."""

    def __init__(
        self,
        count: int,
        *,
        config_path: Path | None,
        check_paths: Sequence[str],
        spans: SpanSink | None,
        log_level: str = "info",
        on_restart: Callable[[], None] | None = None,
        browser: bool = False,
        on_launch: Callable[[], None] | None = None,
    ) -> None:
        self.count = count
        self.browser = browser
        self._on_launch = on_launch
        self._changed = asyncio.Event()  # a child settled a run, was lost or got ready
        self.generation = 0
        self._next_generation = 0
        self._config_path = config_path
        self._check_paths = list(check_paths)
        self._spans = spans
        self._log_level = log_level
        self._on_restart = on_restart
        self._children: list[_Child | None] = [None] * count
        self._seq = itertools.count(1)
        self._closing = False
        self._backoff = [RESTART_MIN_S] * count
        self._restarting: set[asyncio.Task[None]] = set()
        self._failed: dict[tuple[int, int], list[str]] = {}  # (child, generation): problems

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start every run process and wait (bounded) until each has loaded the checks;
        one that does not is reported, and its share runs in the agent until it does."""
        children = [await self._spawn(i) for i in range(self.count)]
        done, _ = await asyncio.wait([c.ready for c in children], timeout=timeout_s)
        for child in children:
            if child.ready not in done:
                log.error(
                    "run process %d (pid %d) did not load the checks within %.0f s; its runs "
                    "go to the agent meanwhile",
                    child.index,
                    child.process.pid,
                    timeout_s,
                )

    async def _spawn(self, index: int) -> _Child:
        command = [sys.executable, "-m", "synth.agent.run_process"]
        command += ["--generation", str(self.generation), "--log-level", self._log_level]
        command += ["--shard", str(index), "--shards", str(self.count)]
        if self.browser:
            command.append("--browser")
        if self._config_path is not None:
            command += ["--config", str(self._config_path)]
        if self._spans is not None:
            command.append("--spans")
        command += ["--", *self._check_paths]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=frames.MAX_FRAME,
        )
        child = _Child(index, process, asyncio.get_running_loop().create_future())
        child.generations.add(self.generation)
        child.reader = asyncio.create_task(self._read(child))
        self._children[index] = child
        log.info("run process started", extra={"run_process": index, "pid": process.pid})
        return child

    async def close(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop every run process (the agent has finished or cancelled its runs)."""
        self._closing = True
        for task in self._restarting:
            task.cancel()
        children = [c for c in self._children if c is not None]
        for child in children:
            child.send("stop")
            if child.process.stdin is not None:
                child.process.stdin.close()
        for child in children:
            try:
                await asyncio.wait_for(child.process.wait(), timeout_s)
            except TimeoutError:
                log.warning(
                    "run process %d did not stop; killing pid %d", child.index, child.process.pid
                )
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                await child.process.wait()
            if child.reader is not None:
                await asyncio.gather(child.reader, return_exceptions=True)

    def ready_count(self) -> int:
        """Run processes up with the checks loaded."""
        return sum(1 for c in self._children if c is not None and _usable(c))

    # -- work ---------------------------------------------------------------------------

    async def run(self, check: str, env: str, location: str, due: float) -> ProcessRun | None:
        """Run a scheduled check in its run process: its result and lag, or None when the
        process cannot take it (the caller runs it itself). Cancelling this cancels the
        run there."""
        if self.browser:
            child = await self._idle_child()
        else:
            child = self._children[shard_of(check, self.count)]
        if child is None or not _usable(child):
            return None
        seq = next(self._seq)
        future: asyncio.Future[ProcessRun | None] = asyncio.get_running_loop().create_future()
        child.pending[seq] = future
        if not child.send("run", seq, self.generation, check, env, location, due):
            child.pending.pop(seq, None)
            return None
        try:
            return await future
        except asyncio.CancelledError:
            if child.pending.pop(seq, None) is not None:
                child.send("cancel", seq)
            raise

    async def _idle_child(self) -> _Child | None:
        """A usable browser process running nothing (waited for while every usable one is
        busy), or None when none is usable."""
        while True:
            usable = [c for c in self._children if c is not None and _usable(c)]
            if not usable:
                return None
            idle = [c for c in usable if not c.pending]
            if idle:
                return idle[0]
            self._changed.clear()
            await self._changed.wait()

    async def prepare_reload(self, timeout_s: float = RELOAD_TIMEOUT_S) -> int:
        """Have every run process load the checks as the files are now, as the next
        generation, while runs of the current one go on; wait (bounded) for them. Then
        `commit` it: runs sent from then on use the new definitions (one that has not
        loaded them hands its runs back to the agent)."""
        generation = self._next_generation = max(self._next_generation, self.generation) + 1
        waiting = []
        for child in self._children:
            if child is not None and child.alive:
                done = asyncio.get_running_loop().create_future()
                child.reloads[generation] = done
                if child.send("reload", generation):
                    child.generations.add(generation)
                    waiting.append(done)
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=timeout_s)
            if late:
                log.error(
                    "%d run processes did not load the new checks within %.0f s; the agent "
                    "runs their checks until they do",
                    len(late),
                    timeout_s,
                )
        return generation

    def commit(self, generation: int) -> None:
        """Runs sent from now on are of `generation` (see `prepare_reload`)."""
        self.generation = generation
        failed, self._failed = self._failed, {}
        for (index, failed_generation), problems in failed.items():
            if failed_generation == generation:
                log.error(
                    "run process %d could not reload; the agent runs its checks meanwhile",
                    index,
                    extra={"problems": problems, "generation": generation},
                )
        for child in self._children:
            # Started while the others loaded: it has not been asked (it holds the runs
            # of that generation until it has loaded).
            if child is not None and child.alive and generation not in child.generations:
                child.generations.add(generation)
                child.send("reload", generation)

    # -- messages -----------------------------------------------------------------------

    async def _read(self, child: _Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        try:
            while (message := await frames.read(stdout)) is not None:
                self._handle(child, message)
        except asyncio.CancelledError:
            child.alive = False
            raise
        except Exception:
            log.exception("run process %d sent a bad frame; stopping it", child.index)
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
        await self._lost(child)

    def _handle(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "result":
            _, seq, result, lag, spans, launches = message
            if spans and self._spans is not None:
                self._spans(spans)
            if self._on_launch is not None:
                for _ in range(launches):
                    self._on_launch()
            self._settle(child, seq, ProcessRun(result, lag))
        elif kind == "stale":
            self._settle(child, message[1], None)
        elif kind == "crashed":
            log.error("run process %d failed a run: %s", child.index, message[2])
            self._settle(child, message[1], None)
        elif kind == "ready":
            _, generation, checks, problems = message
            ok = isinstance(generation, int) and generation >= 0
            if problems or not ok:
                log.error(
                    "run process %d loaded the checks with problems",
                    child.index,
                    extra={"problems": problems},
                )
            if not child.ready.done():
                child.ready.set_result(ok)
            if not ok:  # it could not load the checks: try again later (with backoff)
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
                return
            self._backoff[child.index] = RESTART_MIN_S
            self._changed.set()
            log.info("run process ready", extra={"run_process": child.index, "checks": checks})
        elif kind == "reloaded":
            _, generation, ok, checks, problems = message
            done = child.reloads.pop(generation, None)
            if not ok:  # said when the generation is committed (the agent may reject it)
                self._failed[(child.index, generation)] = problems
            if done is not None and not done.done():
                done.set_result(ok)
        else:
            log.error("run process %d sent an unknown message %r", child.index, kind)

    def _settle(self, child: _Child, seq: int, outcome: ProcessRun | None) -> None:
        future = child.pending.pop(seq, None)
        if future is not None and not future.done():
            future.set_result(outcome)
        self._changed.set()

    async def _lost(self, child: _Child) -> None:
        child.alive = False
        self._changed.set()
        if not child.ready.done():
            child.ready.set_result(False)
        for done in child.reloads.values():
            if not done.done():
                done.set_result(False)
        pending, child.pending = child.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_result(None)  # the agent runs them itself
        code = await child.process.wait()
        if self._closing:
            return
        log.error(
            "run process %d (pid %d) exited with %d; %d runs in flight go to the agent, "
            "restarting it",
            child.index,
            child.process.pid,
            code,
            len(pending),
        )
        task = asyncio.create_task(self._restart(child.index))
        self._restarting.add(task)
        task.add_done_callback(self._restarting.discard)

    async def _restart(self, index: int) -> None:
        delay = self._backoff[index]
        self._backoff[index] = min(delay * 2, RESTART_MAX_S)
        await asyncio.sleep(delay)
        if self._closing:
            return
        if self._on_restart is not None:
            self._on_restart()
        await self._spawn(index)


def _usable(child: _Child) -> bool:
    return child.alive and child.ready.done() and child.ready.result()
