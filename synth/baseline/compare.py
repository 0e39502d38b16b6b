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
FAIL_ABOVE = 2
"""Runs above the per-run limit, of the newest RECENT_RUNS, that fail a small window."""
NOT_JUDGED = "not_judged"
UNCONFIRMED = "latency_unconfirmed"

RecentStats = Callable[[str], WindowStats | None]
"""The production window of a step (by step name)."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """The findings of one run, the p95 latency ratio to baseline of each step judged and
    the size of each step's baseline."""

    findings: tuple[Finding, ...] = ()
    ratios: Mapping[str, float] = field(default_factory=dict)
    samples: Mapping[str, int] = field(default_factory=dict)
    """The baseline's latency samples per passed step (0 without a baseline)."""


def compare(
    result: RunResult,
    baselines: Mapping[str, StepBaseline],
    recent: RecentStats,
    settings: BaselineSettings,
) -> Comparison:
    """Judge each passed step of `result` against its baseline. A baseline below
    `min_samples` is not judged, and the run says so (a `not_judged` warning)."""
    findings: list[Finding] = []
    ratios: dict[str, float] = {}
    samples: dict[str, int] = {}
    for step in result.steps:
        if step.status is not Status.PASSED:
            continue
        base = baselines.get(step.name)
        samples[step.name] = base.latency.count if base is not None else 0
        if base is None or base.latency.count < settings.min_samples:
            findings.append(_not_judged(step.name, base, settings))
            continue
        window = recent(step.name)
        judged = judge_latency(step.name, base, window, settings, deploy=result.deploy is not None)
        if judged is not None:
            ratio, finding = judged
            ratios[step.name] = ratio
            if finding is not None:
                findings.append(finding)
        drift = _contract(step.name, base, step_shape(step), settings)
        findings.extend(drift[:MAX_FINDINGS_PER_STEP])
    return Comparison(tuple(findings), ratios, samples)


def _not_judged(step: str, base: StepBaseline | None, settings: BaselineSettings) -> Finding:
    count = base.latency.count if base is not None else 0
    return Finding(
        step=step,
        kind=NOT_JUDGED,
        type=FailureType.REGRESSION,
        severity=Severity.WARN,
        message=(
            f"step `{step}`: baseline has {count} of {settings.min_samples} samples: not judged"
        ),
        baseline=f"{count} samples" + (f" (version {base.version})" if base else ""),
        actual=f"needs {settings.min_samples}",
    )


def judge_latency(
    step: str,
    base: StepBaseline,
    window: WindowStats | None,
    settings: BaselineSettings,
    *,
    deploy: bool = False,
) -> tuple[float, Finding | None] | None:
    """(p95 ratio to baseline, finding or None) for a step's recent window.

    A window of `window_min_samples` runs or more is judged on its p95. A smaller one (the
    agent just started, or a deploy's first runs) is judged run by run: a run is *above*
    when it exceeds the baseline's p99, `latency_factor` × its p95 and its p95 +
    `min_increase` all at once; 2 of the newest 3 above fail. One above is a warning of
    kind `latency_unconfirmed`, on which a deploy verification runs the check again. Under
    an unchanged service a run is above with probability p ≤ 1 %, so a run fails with
    probability ≈ 3p² ≤ 3·10⁻⁴. While the window is small, a regression the last full
    window before a deploy showed still stands on scheduled runs (a warning on deploy
    runs), until `window_min_samples` runs have been made since, of whatever versions.
    """
    baseline_p95 = base.latency.quantile(0.95)
    if baseline_p95 is None or window is None:
        return None
    ratio = window.p95_s / baseline_p95 if baseline_p95 > 0 else float("inf")
    if window.samples >= settings.window_min_samples:
        return (ratio, _p95_finding(step, base, baseline_p95, window, settings))
    finding = _small_window_finding(step, base, baseline_p95, window, settings)
    previous = window.previous
    if (
        finding is None
        and previous is not None
        and previous.samples >= settings.window_min_samples
        and window.since_previous < settings.window_min_samples
    ):
        carried = _p95_finding(step, base, baseline_p95, previous, settings)
        if carried is not None:
            finding = replace(
                carried,
                severity=Severity.WARN if deploy else Severity.FAIL,
                message=carried.message + f"; found before the latest deploy, it stands until "
                f"{settings.window_min_samples} runs since ({window.since_previous} so far)",
            )
    return (ratio, finding)


def _p95_finding(
    step: str,
    base: StepBaseline,
    baseline_p95: float,
    window: WindowStats,
    settings: BaselineSettings,
) -> Finding | None:
    limit = baseline_p95 * settings.latency_factor
    if window.p95_s <= limit or window.p95_s - baseline_p95 < settings.min_increase:
        return None
    ratio = window.p95_s / baseline_p95 if baseline_p95 > 0 else float("inf")
    shown_ratio = f"{ratio:.1f}x" if ratio != float("inf") else "∞x"
    return Finding(
        step=step,
        kind="latency",
        type=FailureType.REGRESSION,
        severity=Severity.FAIL,
        message=(
            f"step `{step}`: p95 {_ms(window.p95_s)} vs baseline {_ms(baseline_p95)} "
            f"({shown_ratio})"
        ),
        baseline=f"p95 {_ms(baseline_p95)} ({base.latency.count} samples, version {base.version})",
        actual=f"p95 {_ms(window.p95_s)} (last {window.samples} runs)",
        ratio=ratio,
    )


def run_limit(base: StepBaseline, settings: BaselineSettings) -> float | None:
    """The duration above which one run counts against the baseline (small windows)."""
    p95 = base.latency.quantile(0.95)
    p99 = base.latency.quantile(0.99)
    if p95 is None or p99 is None:
        return None
    return max(p99, p95 * settings.latency_factor, p95 + settings.min_increase)


def _small_window_finding(
    step: str,
    base: StepBaseline,
    baseline_p95: float,
    window: WindowStats,
    settings: BaselineSettings,
) -> Finding | None:
    limit = run_limit(base, settings)
    if limit is None or not window.recent or window.recent[-1] <= limit:
        # Only the newest run can change the judgement; an older run above was judged
        # (and confirmed or not) when it arrived.
        return None
    above = [d for d in window.recent if d > limit]
    shown = ", ".join(_ms(d) for d in above)
    baseline = (
        f"p95 {_ms(baseline_p95)}, limit per run {_ms(limit)} "
        f"({base.latency.count} samples, version {base.version})"
    )
    ratio = window.recent[-1] / baseline_p95 if baseline_p95 > 0 else float("inf")
    if len(above) >= FAIL_ABOVE:
        return Finding(
            step=step,
            kind="latency",
            type=FailureType.REGRESSION,
            severity=Severity.FAIL,
            message=(
                f"step `{step}`: {len(above)} of the last {len(window.recent)} runs above "
                f"{_ms(limit)} ({shown}; baseline p95 {_ms(baseline_p95)})"
            ),
            baseline=baseline,
            actual=f"{shown} (last {len(window.recent)} runs)",
            ratio=ratio,
        )
    return Finding(
        step=step,
        kind=UNCONFIRMED,
        type=FailureType.REGRESSION,
        severity=Severity.WARN,
        message=(
            f"step `{step}`: {_ms(window.recent[-1])}, above {_ms(limit)} "
            f"(baseline p95 {_ms(baseline_p95)}): one run, not yet a regression"
        ),
        baseline=baseline,
        actual=_ms(window.recent[-1]),
        ratio=ratio,
    )


def unconfirmed(result: RunResult) -> bool:
    """Whether a passed run has a step that one more run would judge (a deploy
    verification runs the check again before its verdict)."""
    return result.passed and any(f.kind == UNCONFIRMED for f in result.findings)


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
