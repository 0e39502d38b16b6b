"""LeanScalars: counters and gauges expose exactly what prometheus-client's own writers
make of the same series (text and OpenMetrics), and the same samples to registry queries."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from synth.outputs.lean_scalars import LeanScalars

LABELS = ("check", "result")
HELP = 'Runs by "result", one\\two\nlines.'


def _pair() -> tuple[list[LeanScalars], CollectorRegistry]:
    registry = CollectorRegistry()
    runs = LeanScalars("runs", HELP, LABELS, kind="counter")
    ref_runs = Counter("runs", HELP, LABELS, registry=registry)
    up = LeanScalars("up_now", HELP, LABELS, kind="gauge")
    ref_up = Gauge("up_now", HELP, LABELS, registry=registry)
    for labels in [("checkout", "pass"), ("checkout", "pass"), ('we"ird\\name', "line\nbreak")]:
        runs.inc(labels)
        ref_runs.labels(*labels).inc()
    runs.inc(("big", "pass"), 2.5)
    ref_runs.labels("big", "pass").inc(2.5)
    up.set(("checkout", "pass"), 1.0)
    ref_up.labels("checkout", "pass").set(1.0)
    up.set(("gone", "pass"), 7.0)
    up.remove(("gone", "pass"))
    up.inc(("failing", "fail"))
    up.inc(("failing", "fail"))
    ref_up.labels("failing", "fail").set(2)
    return [runs, up], registry


def _samples(families: object) -> list[tuple[str, tuple, float]]:
    found = []
    for family in families:  # type: ignore[attr-defined]
        for s in family.samples:
            if s.name.endswith("_created"):
                continue  # prometheus-client adds creation times; optional in both formats
            found.append((family.type, s.name, tuple(sorted(s.labels.items())), s.value))
    return sorted(found, key=repr)


def _help_and_type(text: str) -> list[str]:
    return sorted(line for line in text.splitlines() if line.startswith("#") and "EOF" not in line)


def test_text_format_matches_prometheus_client() -> None:
    lean, registry = _pair()
    ours = "".join(line for family in lean for line in family.render(openmetrics=False))
    theirs = generate_latest(registry).decode()
    assert _samples(parse_text(ours)) == _samples(parse_text(theirs))
    assert _help_and_type(ours) == [
        line for line in _help_and_type(theirs) if "_created" not in line
    ]


def test_openmetrics_matches_prometheus_client() -> None:
    lean, registry = _pair()
    ours = "".join(line for family in lean for line in family.render(openmetrics=True))
    theirs = generate_openmetrics(registry).decode()
    assert _samples(parse_om(ours + "# EOF\n")) == _samples(parse_om(theirs))
    assert _help_and_type(ours) == _help_and_type(theirs)


def test_collect_yields_the_same_samples_for_pushes_and_queries() -> None:
    lean, registry = _pair()
    mine = CollectorRegistry()
    for family in lean:
        mine.register(family)
    assert _samples(mine.collect()) == _samples(registry.collect())
    assert mine.get_sample_value("runs_total", {"check": "checkout", "result": "pass"}) == 2.0
    assert mine.get_sample_value("up_now", {"check": "gone", "result": "pass"}) is None


def test_values_read_back_and_removed_series_start_again() -> None:
    (runs, up), _ = _pair()
    assert runs.value(("checkout", "pass")) == 2.0
    assert up.value(("gone", "pass")) is None
    up.inc(("gone", "pass"))
    assert up.value(("gone", "pass")) == 1.0


def test_counters_refuse_to_go_down_and_wrong_label_counts_are_refused() -> None:
    runs = LeanScalars("runs", "Runs.", LABELS, kind="counter")
    with pytest.raises(ValueError, match="only increase"):
        runs.inc(("a", "b"), -1)
    with pytest.raises(ValueError, match="expected labels"):
        runs.inc(("only-one",))
    gauge = LeanScalars("g", "G.", LABELS, kind="gauge")
    with pytest.raises(ValueError, match="expected labels"):
        gauge.set(("a", "b", "c"), 1.0)
    assert runs.value(("only-one",)) is None


def test_values_are_written_short_and_read_back_the_same() -> None:
    family = LeanScalars("synth_test_values", "Values.", ("k",), kind="gauge")
    values = {"int": 3, "whole": 2.0, "fraction": 0.25, "big": 1.7e9 + 0.5, "huge": 2.0**60}
    for key, value in values.items():
        family.set((key,), value)
    lines = "".join(family.render(openmetrics=False))
    assert 'synth_test_values{k="int"} 3\n' in lines
    assert 'synth_test_values{k="whole"} 2\n' in lines
    parsed = {s.labels["k"]: s.value for f in parse_text(lines) for s in f.samples}
    assert parsed == {key: float(value) for key, value in values.items()}
