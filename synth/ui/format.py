"""How the pages write times, durations and ratios, and draw sparklines and phase bars:
Jinja2 filters and globals, pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote, urlencode

from synth.model import HttpTimings, Status, StepResult
from synth.store.records import RunSummary


def seconds(value: float | None) -> str:
    """0.0004 → "0.4 ms", 0.0123 → "12 ms", 2.5 → "2.5 s"; None → "—"."""
    if value is None:
        return "—"
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g} s"


def ago(moment: datetime | None, now: datetime) -> str:
    """How long before `now`: "42 s ago", "3 h ago", "5 d ago"; None → "never"."""
    if moment is None:
        return "never"
    delta = (now - moment).total_seconds()
    if delta < 0:
        return "just now"
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if delta >= size:
            return f"{delta // size:.0f} {unit} ago"
    return f"{delta:.0f} s ago"


def percent(ratio: float | None) -> str:
    """0.99951 → "99.95 %"; None → "—" (no runs)."""
    if ratio is None:
        return "—"
    return f"{ratio * 100:.2f} %" if ratio < 1 else "100 %"


def stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def query(base: str, **params: object) -> str:
    """`base` with the params that are set, URL-encoded."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return base + ("?" + urlencode(kept) if kept else "")


def path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


@dataclass(frozen=True, slots=True)
class SparkPoint:
    x: float
    y: float
    failed: bool


def spark(durations: Sequence[float], failed: Sequence[bool], width: int = 96) -> list[SparkPoint]:
    """Points of a duration sparkline in a `width` × 20 box (the slowest run at the top)."""
    if not durations:
        return []
    top = max(durations) or 1.0
    step = width / max(len(durations) - 1, 1)
    return [
        SparkPoint(round(i * step, 1), round(18 - 16 * d / top, 1), f)
        for i, (d, f) in enumerate(zip(durations, failed, strict=True))
    ]


def spark_line(points: Sequence[SparkPoint]) -> str:
    return " ".join(f"{p.x},{p.y}" for p in points)


def spark_marks(points: Sequence[SparkPoint]) -> list[SparkPoint]:
    """The points drawn as dots: the failures, and a lone run (a line through one point
    draws nothing, so a check's first run would show no sparkline at all)."""
    return [p for p in points if p.failed or len(points) == 1]


@dataclass(frozen=True, slots=True)
class Segment:
    phase: str
    start: float  # percent of the run
    width: float  # percent of the run
    seconds: float


PHASES = (
    ("dns", "dns_s"),
    ("connect", "connect_s"),
    ("tls", "tls_s"),
    ("send", "send_s"),
    ("wait", "first_byte_s"),
    ("receive", "body_s"),
)


def phase_bar(
    step: StepResult, run_s: float, offset_in_step: float, timings: HttpTimings
) -> list[Segment]:
    """A request's phases as a network panel draws them: where each starts and how long it
    lasts, in percent of the whole run (the request starts `offset_in_step` into its step)."""
    total = max(run_s, 1e-9)
    at = step.started_offset_s + offset_in_step
    segments = []
    for name, attribute in PHASES:
        value = getattr(timings, attribute)
        if value is None or value <= 0:
            continue
        segments.append(Segment(name, 100 * at / total, max(100 * value / total, 0.3), value))
        at += value
    if not segments and timings.total_s > 0:
        segments.append(
            Segment("total", 100 * at / total, 100 * timings.total_s / total, timings.total_s)
        )
    return segments


_MILESTONES = (("wait", "ttfb_ms"), ("dom", "dom_content_loaded_ms"), ("load", "load_ms"))


def navigation_bar(step: StepResult, run_s: float) -> list[Segment]:
    """A browser step's navigation as a bar: connection phases, then waiting for the first
    byte, building the DOM and loading the page, each up to its milestone (details `*_ms`,
    from the navigation's start)."""
    total = max(run_s, 1e-9)
    details = step.details
    at = 0.0
    segments = []
    for name in ("dns", "connect", "tls"):
        value = details.get(f"{name}_ms")
        if isinstance(value, int | float) and value > 0:
            seconds_ = value / 1000
            start = step.started_offset_s + at
            segments.append(
                Segment(name, 100 * start / total, max(100 * seconds_ / total, 0.3), seconds_)
            )
            at += seconds_
    for name, key in _MILESTONES:
        value = details.get(key)
        if isinstance(value, int | float) and value / 1000 > at:
            seconds_ = value / 1000 - at
            start = step.started_offset_s + at
            segments.append(
                Segment(name, 100 * start / total, max(100 * seconds_ / total, 0.3), seconds_)
            )
            at = value / 1000
    return segments


def step_facts(step: StepResult) -> list[str]:
    """A browser step's measured facts in words: "ttfb 12 ms", "lcp 80 ms", "14 requests"."""
    shown = []
    for key, value in step.details.items():
        if key.endswith("_ms") and isinstance(value, int | float):
            shown.append(f"{key[:-3].replace('_', ' ')} {seconds(value / 1000)}")
    if isinstance(step.details.get("requests"), int):
        shown.append(f"{step.details['requests']} requests")
    if isinstance(step.details.get("cls"), int | float):
        shown.append(f"CLS {step.details['cls']}")
    return shown


def duration_chart(runs: Sequence[RunSummary]) -> list[SparkPoint]:
    """Runs placed by start time (x, 0–600) and duration (y, 0–120, slowest at the top),
    oldest first."""
    if not runs:
        return []
    ordered = sorted(runs, key=lambda r: r.started_at)
    first = ordered[0].started_at
    span = (ordered[-1].started_at - first).total_seconds() or 1.0
    top = max(r.duration_s for r in ordered) or 1.0
    return [
        SparkPoint(
            round(600 * (r.started_at - first).total_seconds() / span, 1),
            round(115 - 105 * r.duration_s / top, 1),
            r.status is not Status.PASSED,
        )
        for r in ordered
    ]
