"""Per-step metrics, as detailed as `metrics.detail` asks.

By default a step exports what blackbox_exporter exports of a probe: the last run's time in
each HTTP phase, as gauges (`synth_http_phase_seconds`, up to 6 series per HTTP step: a
phase the step's requests never went through — DNS for an IP address, TLS for http — has
none; once it has, a run without it sets 0). Its
distributions are in the trace and the store. `metrics.detail` adds histograms:
`phases` → `synth_http_phase_duration_seconds` (per step × phase, exemplars → trace),
`steps` → `synth_step_duration_seconds` (per step).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from synth.model import StepResult
from synth.outputs.lean_histogram import LeanHistogram
from synth.outputs.lean_scalars import LeanScalars

HTTP_PHASES = ("dns", "connect", "tls", "send", "first_byte", "body")
STEP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class StepMetrics:
    """The step families; `observe(step_labels, step, exemplar)` with the step's labels
    (check, env, phase, location, step)."""

    def __init__(
        self,
        lean: CollectorRegistry,
        *,
        detail: Sequence[str],
        phase_buckets: Sequence[float],
    ) -> None:
        labels = ("check", "env", "phase", "location", "step")
        self.phase_seconds = LeanScalars(
            "synth_http_phase_seconds",
            "Last run of a step: seconds its HTTP requests spent in each phase (dns, "
            "connect, tls, send, first_byte, body), summed over the step's requests; no "
            "series for a phase they never had (DNS for an IP, TLS for http), 0 for one this "
            "run skipped.",
            (*labels, "http_phase"),
            kind="gauge",
            registry=lean,
        )
        self.phase_duration: LeanHistogram | None = None
        self.step_duration: LeanHistogram | None = None
        if "phases" in detail:
            self.phase_duration = LeanHistogram(
                "synth_http_phase_duration_seconds",
                "Time of one phase of an HTTP request a step made (dns, connect, tls, send, "
                "first_byte, body); a reused connection has no dns/connect/tls sample.",
                (*labels, "http_phase"),
                buckets=phase_buckets,
                registry=lean,
            )
        if "steps" in detail:
            self.step_duration = LeanHistogram(
                "synth_step_duration_seconds",
                "Duration of one step: its requests' network time plus the check code's own time.",
                labels,
                buckets=STEP_DURATION_BUCKETS,
                registry=lean,
            )

    def families(self) -> tuple[LeanScalars | LeanHistogram, ...]:
        """The families this process exports (for the fast writer)."""
        optional = (self.phase_duration, self.step_duration)
        return (self.phase_seconds, *(f for f in optional if f is not None))

    def observe(
        self, step_labels: tuple[str, ...], step: StepResult, exemplar: dict[str, str] | None
    ) -> None:
        if self.step_duration is not None:
            self.step_duration.observe(step_labels, step.duration_s, exemplar)
        if not step.requests:
            return
        totals: dict[str, float] = {}
        for request in step.requests:
            timings = request.timings.as_dict()
            for http_phase, seconds in timings.items():
                totals[http_phase] = totals.get(http_phase, 0.0) + seconds
            if self.phase_duration is not None:
                trace = {"trace_id": request.trace_id} if request.trace_id else None
                for http_phase, seconds in timings.items():
                    self.phase_duration.observe((*step_labels, http_phase), seconds, trace)
        for http_phase in HTTP_PHASES:
            labels = (*step_labels, http_phase)
            total = totals.get(http_phase)
            if total is not None:
                # Microseconds: finer is noise, and 17 digits a sample cost bytes per check.
                self.phase_seconds.set(labels, round(total, 6))
            elif self.phase_seconds.value(labels) is not None:
                self.phase_seconds.set(labels, 0.0)  # this run skipped it (or failed before)
