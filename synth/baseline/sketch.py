"""A mergeable quantile sketch (DDSketch-style logarithmic buckets).

Every value `v > 0` goes into bucket `ceil(log(v) / log(gamma))`, with
`gamma = (1 + a) / (1 - a)` for relative accuracy `a`: any quantile read back is within
`a` (1 % by default) of the true value at that rank. Two sketches with the same accuracy
merge exactly by adding bucket counts, so baselines recorded by separate CI runs combine
into one. Serialises to a small JSON object.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ACCURACY = 0.01
MIN_VALUE = 1e-6
"""Values below this (1 µs for durations) are counted in a zero bucket."""
MAX_BUCKETS = 2048
"""Bound on stored buckets; beyond it the lowest buckets collapse into one (DDSketch's
policy: high quantiles keep their accuracy)."""


@dataclass(slots=True)
class Sketch:
    """Counts of values in logarithmic buckets, with exact count, min and max."""

    accuracy: float = DEFAULT_ACCURACY
    buckets: dict[int, int] = field(default_factory=dict)
    zeros: int = 0
    count: int = 0
    min: float = math.inf
    max: float = -math.inf

    def __post_init__(self) -> None:
        if not 0 < self.accuracy < 1:
            raise ValueError(f"accuracy must be between 0 and 1, got {self.accuracy}")

    @property
    def _gamma(self) -> float:
        return (1 + self.accuracy) / (1 - self.accuracy)

    @classmethod
    def of(cls, values: Iterable[float], accuracy: float = DEFAULT_ACCURACY) -> Sketch:
        """A sketch of `values`."""
        sketch = cls(accuracy)
        for value in values:
            sketch.add(value)
        return sketch

    def add(self, value: float, times: int = 1) -> None:
        """Count `value` (a non-negative finite number) `times` times."""
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"sketch values must be finite and non-negative, got {value}")
        if value < MIN_VALUE:
            self.zeros += times
        else:
            key = math.ceil(math.log(value) / math.log(self._gamma))
            self.buckets[key] = self.buckets.get(key, 0) + times
            self._collapse()
        self.count += times
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def merge(self, other: Sketch) -> None:
        """Add `other`'s counts into this sketch; both must have the same accuracy."""
        if not math.isclose(self.accuracy, other.accuracy):
            raise ValueError(
                f"cannot merge sketches of accuracy {self.accuracy} and {other.accuracy}"
            )
        for key, n in other.buckets.items():
            self.buckets[key] = self.buckets.get(key, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._collapse()

    def quantile(self, q: float) -> float | None:
        """The value at quantile `q` (0..1), within the relative accuracy; None if empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be between 0 and 1, got {q}")
        if self.count == 0:
            return None
        if q == 1:
            return self.max
        if q == 0:
            return self.min
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        gamma = self._gamma
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if rank < seen:
                # The bucket (gamma^(k-1), gamma^k] is represented by the value with equal
                # relative error to both ends.
                value = 2 * gamma**key / (gamma + 1)
                return min(max(value, self.min), self.max)
        return self.max

    def _collapse(self) -> None:
        if len(self.buckets) <= MAX_BUCKETS:
            return
        keys = sorted(self.buckets)
        excess = keys[: len(keys) - MAX_BUCKETS + 1]
        total = sum(self.buckets.pop(k) for k in excess)
        self.buckets[excess[-1]] = total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; `from_dict` reads it back."""
        return {
            "accuracy": self.accuracy,
            "count": self.count,
            "zeros": self.zeros,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "buckets": {str(k): n for k, n in sorted(self.buckets.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        """The sketch `to_dict` described; ValueError naming what is wrong."""
        try:
            accuracy = float(data["accuracy"])
            buckets = {int(k): _count(n) for k, n in dict(data["buckets"]).items()}
            zeros = _count(data.get("zeros", 0))
            count = _count(data["count"])
            low, high = data.get("min"), data.get("max")
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a latency sketch: {exc}") from None
        if count != zeros + sum(buckets.values()):
            raise ValueError("not a latency sketch: count does not match its buckets")
        sketch = cls(accuracy, buckets, zeros, count)
        if count:
            if not isinstance(low, int | float) or not isinstance(high, int | float):
                raise ValueError("not a latency sketch: min and max must be numbers")
            sketch.min, sketch.max = float(low), float(high)
        return sketch


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"counts must be non-negative integers, got {value!r}")
    return value
