"""A step's baseline (check × environment × step × version) and how pre-prod runs make one.

`fragments(results, version)` turns runs into one `StepBaseline` per step; fragments of
the same key merge (`StepBaseline.merge`), in the store or anywhere else, in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from synth.baseline.contract import Contract
from synth.baseline.sketch import Sketch
from synth.model import RunResult, Status, StepResult

MAX_NAME = 200


@dataclass(slots=True)
class StepBaseline:
    """What one step looked like in pre-prod: latency, success ratio, response contract."""

    check: str
    environment: str
    step: str
    version: str
    latency: Sketch = field(default_factory=Sketch)
    runs: int = 0
    passed: int = 0
    contract: Contract = field(default_factory=Contract)
    updated_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.check, self.environment, self.step, self.version)

    @property
    def success_ratio(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    def add(self, step: StepResult) -> None:
        """Learn one run of the step: passed runs feed latency and the contract."""
        self.runs += 1
        if step.status is Status.PASSED:
            self.passed += 1
            self.latency.add(max(step.duration_s, 0.0))
            self.contract.add(step_shape(step))

    def merge(self, other: StepBaseline) -> None:
        """Add `other` (same key) into this baseline."""
        if other.key != self.key:
            raise ValueError(f"cannot merge baseline {other.key} into {self.key}")
        self.latency.merge(other.latency)
        self.runs += other.runs
        self.passed += other.passed
        self.contract.merge(other.contract)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the body items of `POST /v1/baselines`)."""
        latency = self.latency
        return {
            "check": self.check,
            "environment": self.environment,
            "step": self.step,
            "version": self.version,
            "runs": self.runs,
            "passed": self.passed,
            "p50_s": latency.quantile(0.5),
            "p95_s": latency.quantile(0.95),
            "p99_s": latency.quantile(0.99),
            "latency": latency.to_dict(),
            "contract": self.contract.to_dict(),
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepBaseline:
        """The baseline `to_dict` described (computed quantiles are ignored); ValueError
        naming what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("a baseline fragment must be an object")
        names = {}
        for key in ("check", "environment", "step", "version"):
            value = data.get(key)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
                raise ValueError(f"{key!r} must be a string of 1 to {MAX_NAME} characters")
            names[key] = value
        runs, passed = _count(data.get("runs")), _count(data.get("passed"))
        if runs is None or passed is None or passed > runs:
            raise ValueError("'runs' and 'passed' must be counts with passed <= runs")
        latency = data.get("latency")
        contract = data.get("contract")
        if not isinstance(latency, Mapping) or not isinstance(contract, Mapping):
            raise ValueError("'latency' and 'contract' must be objects")
        updated = data.get("updated_at")
        if updated is not None and not isinstance(updated, str):
            raise ValueError("'updated_at' must be an ISO 8601 time or null")
        return cls(
            **names,
            latency=Sketch.from_dict(latency),
            runs=runs,
            passed=passed,
            contract=Contract.from_dict(contract),
            updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
        )


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def step_shape(step: StepResult) -> set[tuple[str, str]]:
    """The union of the JSON shapes of a step's responses."""
    return {pair for request in step.requests for pair in request.json_shape}


def fragments(results: Iterable[RunResult], version: str) -> list[StepBaseline]:
    """One baseline fragment per check × environment × step seen in `results`."""
    now = datetime.now(UTC)
    found: dict[tuple[str, str, str], StepBaseline] = {}
    for result in results:
        for step in result.steps:
            key = (result.check, result.environment, step.name)
            baseline = found.get(key)
            if baseline is None:
                baseline = found[key] = StepBaseline(
                    result.check, result.environment, step.name, version, updated_at=now
                )
            baseline.add(step)
    return list(found.values())


@dataclass(frozen=True, slots=True)
class RecentWindow:
    """Baselines made from an environment's newest runs, and which runs those were."""

    baselines: list[StepBaseline]
    runs: int
    oldest: datetime | None
    newest: datetime | None


def newest_window(results: Sequence[RunResult]) -> RecentWindow:
    """Per check × step, a baseline of `results` (newest first): latency from all of them,
    the contract only from the newest runs since the step's response shape last changed.
    A field removed five runs ago then reads `-path` and a type change `number→string`,
    where a summary of every run would still hold the old shape."""
    found: dict[tuple[str, str, str], StepBaseline] = {}
    newest_shape: dict[tuple[str, str, str], frozenset[tuple[str, str]]] = {}
    settled: set[tuple[str, str, str]] = set()
    per_check: dict[str, int] = {}
    for result in results:
        per_check[result.check] = per_check.get(result.check, 0) + 1
    for result in results:
        for step in result.steps:
            key = (result.check, result.environment, step.name)
            baseline = found.get(key)
            if baseline is None:
                baseline = found[key] = StepBaseline(
                    result.check,
                    result.environment,
                    step.name,
                    f"newest {per_check[result.check]} runs",
                    updated_at=result.started_at,
                )
            baseline.runs += 1
            if step.status is not Status.PASSED:
                continue
            baseline.passed += 1
            baseline.latency.add(max(step.duration_s, 0.0))
            shape = frozenset(step_shape(step))
            if key in settled:
                continue
            if newest_shape.setdefault(key, shape) != shape:
                settled.add(key)  # older runs had another contract
                continue
            baseline.contract.add(shape)
    times = [r.started_at for r in results]
    return RecentWindow(
        list(found.values()), len(results), min(times, default=None), max(times, default=None)
    )


def effective(rows: Iterable[StepBaseline], min_samples: int) -> dict[str, StepBaseline]:
    """Per step, the baseline to compare with: the most recently updated version with at
    least `min_samples` latency samples, else the most recent one. `rows` newest first."""
    chosen: dict[str, StepBaseline] = {}
    for row in rows:
        current = chosen.get(row.step)
        if current is None or (current.latency.count < min_samples <= row.latency.count):
            chosen[row.step] = row
    return chosen
