"""Comparing a production run with its check's baseline: findings, and a new result.

The runner's `RunResult` is never changed: `compare` returns findings (and each step's
latency ratio), and `with_findings` returns a *new* result that carries them, failed with
`regression` or `schema` when a finding's policy is `fail` and the run had passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from synth.baseline.record import StepBaseline, step_shape
from synth.baseline.shape import container
from synth.baseline.window import WindowStats
from synth.config import BaselineSettings
from synth.model import Failure, FailureType, Finding, RunResult, Severity, Status

MAX_FINDINGS_PER_STEP = 10

RecentStats = Callable[[str], WindowStats | None]
"""The production window of a step (by step name)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The findings of one run and the p95 latency ratio to baseline of each step judged."""

    findings: tuple[Finding, ...] = ()
    ratios: Mapping[str, float] = field(default_factory=dict)


def compare(
    result: RunResult,
    baselines: Mapping[str, StepBaseline],
    recent: RecentStats,
    settings: BaselineSettings,
) -> Comparison:
    """Judge each passed step of `result` against its baseline (skipped below
    `min_samples` baseline samples; latency also needs `window_min_samples` recent runs)."""
    findings: list[Finding] = []
    ratios: dict[str, float] = {}
    for step in result.steps:
        base = baselines.get(step.name)
        if step.status is not Status.PASSED or base is None:
            continue
        if base.latency.count < settings.min_samples:
            continue
        window = recent(step.name)
        latency = _latency(step.name, base, window, settings)
        if latency is not None:
            ratio, finding = latency
            ratios[step.name] = ratio
            if finding is not None:
                findings.append(finding)
        drift = _contract(step.name, base, step_shape(step), settings)
        findings.extend(drift[:MAX_FINDINGS_PER_STEP])
    return Comparison(tuple(findings), ratios)


def _latency(
    step: str, base: StepBaseline, window: WindowStats | None, settings: BaselineSettings
) -> tuple[float, Finding | None] | None:
    baseline_p95 = base.latency.quantile(0.95)
    if baseline_p95 is None or window is None or window.samples < settings.window_min_samples:
        return None
    ratio = window.p95_s / baseline_p95 if baseline_p95 > 0 else float("inf")
    limit = baseline_p95 * settings.latency_factor
    if window.p95_s <= limit or window.p95_s - baseline_p95 < settings.min_increase:
        return (ratio, None)
    shown_ratio = f"{ratio:.1f}x" if ratio != float("inf") else "∞x"
    return (
        ratio,
        Finding(
            step=step,
            kind="latency",
            type=FailureType.REGRESSION,
            severity=Severity.FAIL,
            message=(
                f"step `{step}`: p95 {_ms(window.p95_s)} vs baseline {_ms(baseline_p95)} "
                f"({shown_ratio})"
            ),
            baseline=f"p95 {_ms(baseline_p95)} ({base.latency.count} samples, "
            f"version {base.version})",
            actual=f"p95 {_ms(window.p95_s)} (last {window.samples} runs)",
            ratio=ratio,
        ),
    )


def _contract(
    step: str, base: StepBaseline, shape: set[tuple[str, str]], settings: BaselineSettings
) -> list[Finding]:
    policy = settings.contract
    contract = base.contract
    if contract.samples == 0:
        return []
    types: dict[str, set[str]] = {}
    for path, kind in shape:
        types.setdefault(path, set()).add(kind)
    new_paths = {path for path in types if path not in contract.fields}
    findings: list[Finding] = []
    for path in sorted(set(contract.fields) | set(types)):
        stats = contract.fields.get(path)
        seen = types.get(path)
        if stats is not None and seen is None:
            parent = container(path)
            if (
                policy.missing is not Severity.IGNORE
                and stats.present == contract.samples
                and _container_present(parent, types)
            ):
                findings.append(
                    _schema(
                        step,
                        "missing",
                        path,
                        policy.missing,
                        f"step `{step}`: field `{path}` is missing "
                        f"(present in all {contract.samples} baseline responses)",
                        baseline=_types(stats.type_names()),
                        actual="missing",
                    )
                )
        elif stats is None and seen is not None:
            if policy.new_field is not Severity.IGNORE and container(path) not in new_paths:
                findings.append(
                    _schema(
                        step,
                        "new_field",
                        path,
                        policy.new_field,
                        f"step `{step}`: new field `{path}` ({_types(sorted(seen))})",
                        baseline="absent",
                        actual=_types(sorted(seen)),
                    )
                )
        elif stats is not None and seen is not None:
            known = set(stats.types)
            if not seen <= known and policy.type_changed is not Severity.IGNORE:
                was, now = _types(sorted(known)), _types(sorted(seen))
                findings.append(
                    _schema(
                        step,
                        "type_changed",
                        path,
                        policy.type_changed,
                        f"step `{step}`: field `{path}` changed from {was} to {now}",
                        baseline=was,
                        actual=now,
                    )
                )
    return findings


def _container_present(parent: str, types: Mapping[str, set[str]]) -> bool:
    """Whether the object or array that should hold a missing field is there (and, for an
    array, not empty): otherwise only the container itself is reported."""
    if parent == "":
        return bool(types)
    kinds = types.get(parent)
    if kinds is None:
        return False
    if kinds == {"array"}:
        prefix = parent + "[]"
        return any(path.startswith(prefix) for path in types)
    return "object" in kinds


def _schema(
    step: str,
    kind: str,
    path: str,
    severity: Severity,
    message: str,
    *,
    baseline: str,
    actual: str,
) -> Finding:
    return Finding(
        step=step,
        kind=kind,
        type=FailureType.SCHEMA,
        severity=severity,
        message=message,
        field=path,
        baseline=baseline,
        actual=actual,
    )


def _types(names: list[str] | tuple[str, ...]) -> str:
    return " or ".join(names)


def _ms(seconds: float) -> str:
    millis = seconds * 1000
    return f"{millis:.0f} ms" if millis >= 10 else f"{millis:.1f} ms"


def with_findings(result: RunResult, findings: tuple[Finding, ...]) -> RunResult:
    """A new result carrying `findings`; a passed run with a `fail` finding becomes failed
    (type of the first such finding, every failing finding in the message)."""
    if not findings:
        return result
    failing = [f for f in findings if f.severity is Severity.FAIL]
    if not failing or not result.passed:
        return replace(result, findings=findings)
    first = failing[0]
    failure = Failure(
        type=first.type,
        message="\n".join(f.message for f in failing),
        expected=first.baseline,
        actual=first.actual,
    )
    return replace(
        result,
        findings=findings,
        status=Status.FAILED,
        failure=failure,
        failed_step=first.step,
    )
