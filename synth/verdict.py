"""A deploy's verdict: a pure function of the runs its verification produced."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from synth.codec import finding_to_dict
from synth.model import FailureType, RunResult


class VerdictResult(enum.StrEnum):
    """What the pipeline gates on: pass, fail (roll back) or error (could not verify)."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FailingCheck:
    """One failing check of a verification, with the step and cause."""

    check: str
    step: str | None
    failure_type: str
    message: str
    run_id: str
    trace_id: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a deploy verification."""

    result: VerdictResult
    reason: str
    runs: int
    checks: tuple[str, ...]
    failing: tuple[FailingCheck, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    comparison: tuple[dict[str, Any], ...] = ()
    """The baseline findings of the verification's runs (latest per check, step, field)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.result.value,
            "reason": self.reason,
            "runs": self.runs,
            "checks": list(self.checks),
            "failing": [
                {
                    "check": f.check,
                    "step": f.step,
                    "failure_type": f.failure_type,
                    "message": f.message,
                    "run_id": f.run_id,
                    "trace_id": f.trace_id,
                }
                for f in self.failing
            ],
            "comparison": [dict(c) for c in self.comparison],
        }


def decide(results: Sequence[RunResult], *, error: str | None = None) -> Verdict:
    """pass when every run passed; fail when a run failed because of the target; error when
    nothing could be verified (no checks, or only the checks themselves broke)."""
    checks = tuple(sorted({r.check for r in results}))
    verdict = _decide(results, checks, error)
    comparison = _comparison(results)
    return replace(verdict, comparison=comparison) if comparison else verdict


def _comparison(results: Sequence[RunResult]) -> tuple[dict[str, Any], ...]:
    latest: dict[tuple[str, str, str, str | None], dict[str, Any]] = {}
    for result in results:
        for finding in result.findings:
            key = (result.check, finding.step, finding.kind, finding.field)
            latest[key] = {"check": result.check, **finding_to_dict(finding)}
    return tuple(latest.values())


def _decide(results: Sequence[RunResult], checks: tuple[str, ...], error: str | None) -> Verdict:
    if error is not None:
        return Verdict(VerdictResult.ERROR, error, len(results), checks)
    if not results:
        return Verdict(VerdictResult.ERROR, "no checks ran", 0, checks)
    failing = tuple(
        FailingCheck(
            check=r.check,
            step=r.failed_step,
            failure_type=r.failure_type.value if r.failure_type else "",
            message=r.failure.message if r.failure else "",
            run_id=r.run_id,
            trace_id=r.trace_id,
        )
        for r in results
        if not r.passed
    )
    # A check's own error says nothing about the deploy; a page's script error does.
    target_failures = [
        f
        for f, r in zip(failing, (r for r in results if not r.passed), strict=True)
        if f.failure_type != FailureType.SCRIPT_ERROR or (r.failure and r.failure.in_target)
    ]
    if target_failures:
        names = ", ".join(sorted({f"{f.check} ({f.step})" for f in target_failures}))
        return Verdict(
            VerdictResult.FAIL,
            f"{len(target_failures)} of {len(results)} runs failed: {names}",
            len(results),
            checks,
            failing,
        )
    if failing:
        return Verdict(
            VerdictResult.ERROR,
            "only check errors (script_error): the checks themselves are broken",
            len(results),
            checks,
            failing,
        )
    return Verdict(VerdictResult.PASS, f"all {len(results)} runs passed", len(results), checks)
