"""`metrics:` in synth.yaml — how much each check costs Prometheus.

By default a one-step HTTP check exports at most 25 series (README, "Series per check"): its run
counts by result, one run-duration histogram, its state gauges and the last run's HTTP
phases as gauges. `detail` adds per-step and per-phase histograms and failure-type series
at 0, each a multiple of that.
"""

from __future__ import annotations

import itertools
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

HTTP_PHASE_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
RUN_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10)

MetricDetail = Literal["phases", "steps", "failure_types"]


class MetricsSettings(BaseModel):
    """What the per-check metrics cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detail: tuple[MetricDetail, ...] = ()
    """Opt-in families: `phases` (a histogram per step × HTTP phase, 17 series each),
    `steps` (a histogram per step, 16 series each), `failure_types` (each failure type's
    run counter at 0 before it first happens, 10 series per check × phase)."""
    run_duration_buckets: tuple[float, ...] = Field(
        default=RUN_DURATION_BUCKETS, min_length=1, max_length=40
    )
    http_phase_buckets: tuple[float, ...] = Field(
        default=HTTP_PHASE_BUCKETS, min_length=1, max_length=40
    )
    """The buckets of `synth_http_phase_duration_seconds` (with `detail: [phases]`)."""

    @field_validator("run_duration_buckets", "http_phase_buckets")
    @classmethod
    def _increasing(cls, buckets: tuple[float, ...]) -> tuple[float, ...]:
        if any(b <= 0 or not math.isfinite(b) for b in buckets):
            raise ValueError("bucket bounds must be positive seconds (+Inf is implied)")
        if any(a >= b for a, b in itertools.pairwise(buckets)):
            raise ValueError("bucket bounds must be strictly increasing")
        return buckets
