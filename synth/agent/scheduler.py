"""APScheduler jobs, one per check × environment: interval or cron with jitter, spread
start, never overlapping itself (skips are counted), misfire grace, lag measured."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from synth.cluster.rendezvous import weight
from synth.config import SchedulerSettings, Settings
from synth.model import CheckSpec
from synth.outputs.metrics import Metrics

log = logging.getLogger("synth.scheduler")

# APScheduler logs every execution at INFO and every skip at WARNING: far too chatty at
# thousands of jobs. We log and count what matters ourselves.
logging.getLogger("apscheduler").setLevel(logging.ERROR)

Fire = Callable[[CheckSpec, str, float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobKey:
    """One scheduled (check, environment) pair."""

    check: str
    environment: str

    @property
    def job_id(self) -> str:
        return f"{self.check}@{self.environment}"


def scheduled_pairs(checks: Sequence[CheckSpec], settings: Settings) -> list[tuple[CheckSpec, str]]:
    """Every (check, environment) the agent schedules: environments the check applies to
    that define its service."""
    pairs = []
    for check in checks:
        for env_name, env in settings.environments.items():
            if check.applies_to(env_name) and check.service in env.services:
                pairs.append((check, env_name))
    return pairs


def interval_s(check: CheckSpec) -> float:
    """Seconds between scheduled runs of `check`; for cron, the gap between its next two
    fire times from now."""
    if check.schedule.cron is None:
        return float(check.schedule.every_s or 60.0)
    trigger = CronTrigger.from_crontab(check.schedule.cron, timezone=UTC)
    now = datetime.now(UTC)
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    if first is None or second is None:
        return math.inf  # never runs again: never overdue
    return float((second - first).total_seconds())


def grid_start(job_id: str, every_s: float) -> datetime:
    """The origin of a job's grid of due times: the same in every process, so a check that
    moves between cluster members keeps its due times (none runs twice), and spread over
    one interval by a hash so a thousand checks don't fire together."""
    fraction = weight("synth-grid", job_id) / 2.0**64
    return datetime.fromtimestamp(fraction * every_s, tz=UTC)


class GridIntervalTrigger(IntervalTrigger):  # type: ignore[misc]  # untyped library
    """An interval trigger whose jitter does not accumulate.

    APScheduler's IntervalTrigger adds the interval to the previous, already jittered,
    fire time, so `every: 10s` with 1 s of jitter ran every 10.5 s on average (measured:
    474 runs/s of 5,000 checks, not 500). Here fire times stay on the grid
    `start + k * interval`, each moved later by its own jitter in [0, jitter)."""

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None or not self.jitter:
            first: datetime | None = super().get_next_fire_time(previous_fire_time, now)
            return first
        start = self.start_date.timestamp()
        # Jitter < interval / 2, so the previous fire time lies in [grid_k, grid_k + jitter).
        k = math.floor((previous_fire_time.timestamp() - start) / self.interval_length + 1e-9)
        following = start + (k + 1) * self.interval_length + random.uniform(0, self.jitter)
        if self.end_date and following > self.end_date.timestamp():
            return None
        return datetime.fromtimestamp(following, tz=self.timezone)


class RunsToCompletion(AsyncIOExecutor):  # type: ignore[misc]
    """APScheduler's asyncio executor, except that shutting down leaves submitted jobs to
    finish: the agent waits for its in-flight runs itself (graceful stop), and a job
    cancelled before its first step is logged by APScheduler as an error. A job that starts
    after the stop sees the agent stopping and returns."""

    def shutdown(self, wait: bool = True) -> None:
        return None


class CheckScheduler:
    """Owns the APScheduler instance; calls `fire(check, env, due_unix_time)` per run."""

    def __init__(self, settings: SchedulerSettings, metrics: Metrics, fire: Fire) -> None:
        self._settings = settings
        self._metrics = metrics
        self._fire = fire
        self._scheduler = AsyncIOScheduler(timezone=UTC, executors={"default": RunsToCompletion()})
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        self._due: dict[str, float] = {}
        self._specs: dict[str, tuple[CheckSpec, str]] = {}

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing new runs (in-flight runs are the agent's to wait for)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def job_count(self) -> int:
        return len(self._specs)

    def replace(self, pairs: Sequence[tuple[CheckSpec, str]]) -> None:
        """Make the scheduled set exactly `pairs`; unchanged jobs keep their timing."""
        wanted = {JobKey(c.name, env).job_id: (c, env) for c, env in pairs}
        for job_id in list(self._specs):
            if job_id not in wanted:
                self._scheduler.remove_job(job_id)
                del self._specs[job_id]
        for job_id, (check, env) in wanted.items():
            previous = self._specs.get(job_id)
            self._specs[job_id] = (check, env)
            if previous is not None and previous[0].schedule == check.schedule:
                continue  # same timing: the job reads the new spec from _specs when it fires
            if previous is not None:
                self._scheduler.remove_job(job_id)
            self._scheduler.add_job(
                self._run_job,
                trigger=self._trigger(check, job_id),
                args=(job_id,),
                id=job_id,
                name=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(int(self._settings.misfire_grace), 1),
                replace_existing=True,
            )

    def _trigger(self, check: CheckSpec, job_id: str) -> Any:
        jitter = self._settings.jitter or None
        if check.schedule.cron is not None:
            return CronTrigger.from_crontab(check.schedule.cron, timezone=UTC)
        every = interval_s(check)
        return GridIntervalTrigger(
            seconds=every,
            start_date=grid_start(job_id, every),
            jitter=min(jitter, every / 2) if jitter else None,
            timezone=UTC,
        )

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._due[event.job_id] = event.scheduled_run_times[-1].timestamp()

    def _on_skipped(self, event: JobExecutionEvent) -> None:
        spec = self._specs.get(event.job_id)
        if spec is None:
            return
        check, env = spec
        self._metrics.overlap_skipped(check.name, env)
        log.info(
            "skipped run: previous run still going",
            extra={"check": check.name, "env": env, "event": "overlap_skipped"},
        )

    async def _run_job(self, job_id: str) -> None:
        spec = self._specs.get(job_id)
        if spec is None:
            return
        due = self._due.pop(job_id, time.time())
        check, env = spec
        try:
            await self._fire(check, env, due)
        except asyncio.CancelledError:
            return  # scheduler stopping; the run itself is shielded and finishes
        except Exception:  # the agent must outlive any bug in a sink
            log.exception("scheduled run crashed", extra={"check": check.name, "env": env})
