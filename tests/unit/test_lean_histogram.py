"""LeanHistogram: the fast writer exposes exactly what prometheus-client's own writers
make of the same series (text and OpenMetrics, exemplars included)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from synth.outputs.lean_histogram import LeanHistogram

BUCKETS = (0.01, 0.1, 1.0)
LABELS = ("check", "step")
OBSERVED = [
    (("checkout", "log in"), 0.005, "a" * 32),
    (("checkout", "log in"), 0.1, None),  # on a bound: counted in that bucket (le)
    (("checkout", "log in"), 3.0, "b" * 32),  # above every bound: only +Inf
    (('we"ird\\name', "line\nbreak"), 0.05, None),  # escaped label values
    (("checkout", "pay"), 0.05, "0" * 31 + "c"),  # leading zeros survive the compact form
    (("checkout", "pay"), 0.7, "not-hex-but-kept"),  # a non-hex id is kept as given
    (("checkout", "log in"), 0.004, "c" * 32),  # a newer exemplar replaces the bucket's
]


def _pair() -> tuple[LeanHistogram, CollectorRegistry]:
    lean = LeanHistogram("h_seconds", "A histogram.", LABELS, buckets=BUCKETS)
    registry = CollectorRegistry()
    reference = Histogram("h_seconds", "A histogram.", LABELS, buckets=BUCKETS, registry=registry)
    for labels, value, trace in OBSERVED:
        exemplar = {"trace_id": trace} if trace else None
        lean.observe(labels, value, exemplar)
        reference.labels(*labels).observe(value, exemplar)
    return lean, registry


def _samples(families: object, *, exemplars: bool) -> list[tuple[str, tuple, float, object]]:
    found = []
    for family in families:  # type: ignore[attr-defined]
        for s in family.samples:
            if s.name.endswith("_created"):
                continue  # prometheus-client adds creation times; optional in both formats
            exemplar = (s.exemplar.labels, s.exemplar.value) if exemplars and s.exemplar else None
            found.append((s.name, tuple(sorted(s.labels.items())), s.value, exemplar))
    return sorted(found, key=repr)


def test_text_format_matches_prometheus_client() -> None:
    lean, registry = _pair()
    ours = "".join(lean.render(openmetrics=False))
    theirs = generate_latest(registry).decode()
    assert _samples(parse_text(ours), exemplars=False) == _samples(
        parse_text(theirs), exemplars=False
    )


def test_openmetrics_with_exemplars_matches_prometheus_client() -> None:
    lean, registry = _pair()
    ours = "".join(lean.render(openmetrics=True)) + "# EOF\n"
    theirs = generate_openmetrics(registry).decode()
    mine = _samples(parse_om(ours), exemplars=True)
    assert mine == _samples(parse_om(theirs), exemplars=True)
    found = sorted(e[0]["trace_id"] for *_, e in mine if e)
    assert found == sorted(["c" * 32, "b" * 32, "0" * 31 + "c", "not-hex-but-kept"])


def test_collect_yields_the_same_samples_for_pushes_and_queries() -> None:
    lean, registry = _pair()
    mine = CollectorRegistry()
    mine.register(lean)
    assert _samples(mine.collect(), exemplars=True) == _samples(registry.collect(), exemplars=True)
    assert (
        mine.get_sample_value(
            "h_seconds_bucket", {"check": "checkout", "step": "log in", "le": "0.1"}
        )
        == 3.0  # 0.005, 0.004 and 0.1 (a bound counts in its own bucket)
    )


def test_wrong_label_count_is_refused() -> None:
    lean = LeanHistogram("h_seconds", "A histogram.", LABELS, buckets=BUCKETS)
    with pytest.raises(ValueError, match="expected labels"):
        lean.observe(("only-one",), 1.0)
