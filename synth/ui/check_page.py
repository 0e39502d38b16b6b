"""The check page's data: its runs (a page at a time, newest first), its failure types per
day, and each step's pre-prod baseline beside the same step's latency in production."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from synth.baseline.record import StepBaseline
from synth.model import Phase, Status
from synth.store import RunSummary, Store
from synth.store.schema import runs

FAILURE_DAYS = 14
RECENT_RUNS = 50
"""Production runs a step's latency is read from, beside its baseline."""


@dataclass(frozen=True, slots=True)
class DayFailures:
    day: str
    by_type: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_type.values())


@dataclass(frozen=True, slots=True)
class StepComparison:
    step: str
    baseline_version: str | None
    baseline_samples: int
    baseline_p50: float | None
    baseline_p95: float | None
    baseline_success: float | None
    recent_samples: int
    recent_p50: float | None
    recent_p95: float | None


@dataclass(frozen=True, slots=True)
class CheckPage:
    runs: tuple[RunSummary, ...]
    older: datetime | None
    failures: tuple[DayFailures, ...]
    failure_types: tuple[str, ...]
    comparison: tuple[StepComparison, ...]


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def check_page(
    store: Store,
    *,
    check: str,
    env: str | None,
    before: datetime | None,
    per_page: int,
    baseline_env: str | None,
    now: datetime,
) -> CheckPage:
    listed = await store.list_runs(check=check, env=env, before=before, limit=per_page + 1)
    older = listed[per_page - 1].started_at if len(listed) > per_page else None
    since = (now - timedelta(days=FAILURE_DAYS - 1)).replace(hour=0, minute=0, second=0)
    failed = (
        sa.select(runs.c.started_at, runs.c.failure_type)
        .where(runs.c.check_name == check, runs.c.status == Status.FAILED.value)
        .where(runs.c.started_at >= since)
    )
    recent = (
        sa.select(runs.c.result)
        .where(runs.c.check_name == check, runs.c.phase != Phase.PREPROD.value)
        .order_by(runs.c.started_at.desc())
        .limit(RECENT_RUNS)
    )
    if env is not None:
        failed = failed.where(runs.c.environment == env)
        recent = recent.where(runs.c.environment == env)
    async with store.reading("read a check's page") as connection:
        failures = (await connection.execute(failed)).all()
        results = (await connection.execute(recent)).scalars().all()
    days: dict[str, Counter[str]] = {
        (since + timedelta(days=i)).date().isoformat(): Counter() for i in range(FAILURE_DAYS)
    }
    for started_at, failure_type in failures:
        day = started_at.date().isoformat()
        if day in days:
            days[day][failure_type or "unknown"] += 1
    types = sorted({t for counter in days.values() for t in counter})
    comparison = await _comparison(store, check, baseline_env, results)
    return CheckPage(
        runs=tuple(listed[:per_page]),
        older=older,
        failures=tuple(DayFailures(day, dict(c)) for day, c in days.items()),
        failure_types=tuple(types),
        comparison=comparison,
    )


async def _comparison(
    store: Store, check: str, baseline_env: str | None, results: Any
) -> tuple[StepComparison, ...]:
    durations: dict[str, list[float]] = {}
    for result in results:
        for step in result.get("steps", []) if isinstance(result, dict) else []:
            if step.get("status") == Status.PASSED.value and "name" in step:
                durations.setdefault(str(step["name"]), []).append(float(step["duration_s"]))
    newest: dict[str, StepBaseline] = {}
    if baseline_env is not None:
        for baseline in await store.list_baselines(check=check, env=baseline_env):
            newest.setdefault(baseline.step, baseline)  # most recently updated first
    steps = list(dict.fromkeys([*newest, *durations]))
    rows = []
    for step in steps:
        base = newest.get(step)
        recent = durations.get(step, [])
        rows.append(
            StepComparison(
                step=step,
                baseline_version=base.version if base else None,
                baseline_samples=base.runs if base else 0,
                baseline_p50=base.latency.quantile(0.5) if base else None,
                baseline_p95=base.latency.quantile(0.95) if base else None,
                baseline_success=base.success_ratio if base else None,
                recent_samples=len(recent),
                recent_p50=_quantile(recent, 0.5),
                recent_p95=_quantile(recent, 0.95),
            )
        )
    return tuple(rows)
