"""Counters and gauges for thousands of series: a float per label tuple.

prometheus-client keeps a child object, a value object and a lock per series (~0.7 KB; the
per-check run gauges and counters cost ~22 MB at 5,000 checks). Here a family is one dict
from label values to a float, its exposition is written straight from it, and `collect`
still yields ordinary metric families for Pushgateway pushes and registry queries. Like
LeanHistogram, counters expose no `_created` samples.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from synth.outputs.lean_histogram import escape_help, label_text, sample_value

Kind = Literal["counter", "gauge"]


class LeanScalars(Collector):
    """A counter or gauge family: `inc`/`set` by a tuple of label values."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        kind: Kind,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name.removesuffix("_total") if kind == "counter" else name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.kind = kind
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()  # inc is a read-modify-write; scrapes copy under it
        if registry is not None:
            registry.register(self)

    def set(self, labels: tuple[str, ...], value: float) -> None:
        """Set a gauge series (created if new)."""
        with self._lock:
            if labels not in self._values:
                self._check(labels)
            self._values[labels] = value

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add to a series (created at 0 if new); a counter never goes down."""
        if self.kind == "counter" and amount < 0:
            raise ValueError(f"{self.name}: counters only increase (got {amount})")
        with self._lock:
            current = self._values.get(labels)
            if current is None:
                self._check(labels)
                current = 0.0
            self._values[labels] = current + amount

    def remove(self, labels: tuple[str, ...]) -> None:
        """Stop exposing a series."""
        with self._lock:
            self._values.pop(labels, None)

    def value(self, labels: tuple[str, ...]) -> float | None:
        """The series' value, or None when it does not exist."""
        return self._values.get(labels)

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for labels, value in self._snapshot():
            family.add_metric(list(labels), value)
        yield family

    def render(self, *, openmetrics: bool) -> Iterator[str]:
        """Exposition lines (text format 0.0.4, or OpenMetrics)."""
        counter = self.kind == "counter"
        sample = f"{self.name}_total" if counter else self.name
        family = self.name if openmetrics or not counter else sample
        help_text = escape_help(self.documentation, quotes=openmetrics)
        yield f"# HELP {family} {help_text}\n"
        yield f"# TYPE {family} {self.kind}\n"
        names = self.labelnames
        for labels, value in self._snapshot():
            if names:
                yield f"{sample}{{{label_text(names, labels)}}} {sample_value(value)}\n"
            else:
                yield f"{sample} {sample_value(value)}\n"

    def _family(self) -> CounterMetricFamily | GaugeMetricFamily:
        if self.kind == "counter":
            return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _check(self, labels: tuple[str, ...]) -> None:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {labels}")

    def _snapshot(self) -> list[tuple[tuple[str, ...], float]]:
        with self._lock:
            return list(self._values.items())
