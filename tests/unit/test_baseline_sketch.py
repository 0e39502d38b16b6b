"""The latency sketch: quantiles within 1 % of the exact value, exact merges, JSON form."""

from __future__ import annotations

import json
import math
import random

import pytest

from synth.baseline.sketch import Sketch


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_are_within_the_relative_accuracy(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(-3, 1.2) for _ in range(20_000)]  # ~50 ms, long tail
    sketch = Sketch.of(values)
    got = sketch.quantile(q)
    assert got is not None
    assert got == pytest.approx(exact(values, q), rel=0.01)
    assert sketch.count == len(values)


def test_merging_equals_sketching_everything_at_once() -> None:
    rng = random.Random(3)
    first = [rng.uniform(0.001, 0.2) for _ in range(3000)]
    second = [rng.uniform(0.1, 2.0) for _ in range(1000)]
    merged = Sketch.of(first)
    merged.merge(Sketch.of(second))
    whole = Sketch.of(first + second)
    assert merged.to_dict() == whole.to_dict()
    for q in (0.5, 0.95, 0.99):
        assert merged.quantile(q) == pytest.approx(exact(first + second, q), rel=0.01)


def test_json_round_trip_keeps_every_quantile() -> None:
    sketch = Sketch.of([0.0, 0.004, 0.12, 0.12, 3.5])
    again = Sketch.from_dict(json.loads(json.dumps(sketch.to_dict())))
    assert again.count == 5
    assert again.zeros == 1
    for q in (0, 0.25, 0.5, 0.75, 1):
        assert again.quantile(q) == sketch.quantile(q)
    assert again.quantile(1) == 3.5  # clamped to the exact max


def test_empty_sketch_has_no_quantile() -> None:
    assert Sketch().quantile(0.95) is None
    assert Sketch.from_dict(Sketch().to_dict()).count == 0


def test_bad_input_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        Sketch().add(-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        Sketch().add(float("nan"))
    with pytest.raises(ValueError, match="cannot merge"):
        Sketch(0.01).merge(Sketch(0.02))
    with pytest.raises(ValueError, match="count does not match"):
        Sketch.from_dict({"accuracy": 0.01, "count": 3, "zeros": 0, "buckets": {"1": 1}})
    with pytest.raises(ValueError, match="not a latency sketch"):
        Sketch.from_dict({"accuracy": 0.01, "count": 1, "buckets": {"1": -1}})
    with pytest.raises(ValueError, match="quantile"):
        Sketch.of([1.0]).quantile(1.5)


def test_bucket_count_stays_bounded() -> None:
    sketch = Sketch(0.01)
    for exponent in range(-60, 60):
        for step in range(40):
            sketch.add(10 ** (exponent / 10) * (1 + step / 40))
    assert len(sketch.buckets) <= 2048
    top = sketch.quantile(0.99)
    assert top is not None
    assert top == pytest.approx(
        exact([10 ** (e / 10) * (1 + s / 40) for e in range(-60, 60) for s in range(40)], 0.99),
        rel=0.01,
    )
