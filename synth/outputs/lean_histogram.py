"""Histograms for thousands of series: small to keep, fast to expose.

An agent with thousands of checks has a run, step and HTTP-phase histogram per check
(and step, and phase): over 100,000 exposed lines at 1,000 checks. prometheus-client's
Histogram keeps an object and a lock per bucket (~30 MB at 1,000 checks) and formats
every line generically (measured: 2.5 s CPU per scrape, 4.3 s in OpenMetrics, at 1,000
checks). Here a family keeps every series' bucket counts in one int64 array and sums in
one float array (an object per series cost ~0.7 KB: ~21 MB over the 30,000 series of
5,000 one-step checks), exemplars sparsely by bucket, and exposition writes lines
straight from them. The collector still yields ordinary metric families, so Pushgateway
pushes and registry queries see the same samples.
"""

from __future__ import annotations

import bisect
import math
import struct
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import Exemplar, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

# prometheus-client's own float spelling (1.0, +Inf), so both writers agree.
go_float = cast(Callable[[float], str], floatToGoString)

_EXACT = 2.0**53


def sample_value(value: float) -> str:
    """A sample's value as few bytes as both formats read the same: `1`, not `1.0` (a
    count, a 0/1 gauge: most of a page's values)."""
    value = float(value)  # an int gauge (a count set as is) renders the same
    if value.is_integer() and -_EXACT < value < _EXACT:
        return str(int(value))
    return go_float(value)


def escape_label(value: str) -> str:
    """A label value as the exposition formats quote it."""
    if "\\" not in value and "\n" not in value and '"' not in value:
        return value  # nearly always: three scans instead of three copies
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def escape_help(text: str, *, quotes: bool = False) -> str:
    """HELP text as the exposition formats escape it (OpenMetrics escapes quotes too)."""
    text = text.replace("\\", r"\\").replace("\n", r"\n")
    return text.replace('"', r"\"") if quotes else text


def label_text(names: Sequence[str], values: Sequence[str]) -> str:
    """`k="v",…`, escaped."""
    return ",".join(f'{k}="{escape_label(v)}"' for k, v in zip(names, values, strict=True))


# An exemplar (trace id, observed value, unix time) is kept as 32 packed bytes when the
# trace id is the usual 32 lowercase hex digits: ~0.1 KB less than a tuple of objects, over
# ~60,000 kept exemplars at 5,000 checks. Any other id is kept as given, in a tuple.
_Exemplar = bytes | tuple[str, float, float]
_VALUE_AT = struct.Struct("<dd")


def _packed(trace_id: str, value: float, at: float) -> _Exemplar:
    if len(trace_id) == 32 and (trace_id.islower() or trace_id.isdigit()):
        try:
            trace = bytes.fromhex(trace_id)
        except ValueError:
            trace = b""
        if len(trace) == 16:
            return trace + _VALUE_AT.pack(value, at)
    return (trace_id, value, at)


def _unpacked(exemplar: _Exemplar) -> tuple[str, float, float]:
    if isinstance(exemplar, bytes):
        value, at = _VALUE_AT.unpack_from(exemplar, 16)
        return exemplar[:16].hex(), value, at
    return exemplar


@dataclass(frozen=True, slots=True)
class _SeriesCopy:
    """One series as an exposition reads it: copied under the lock, one at a time."""

    labels: tuple[str, ...]
    counts: array[int]
    sum: float
    exemplars: list[_Exemplar | None] | None


class LeanHistogram(Collector):
    """A histogram family: `observe(labels, value, exemplar)` by a tuple of label values."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Iterable[float],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        bounds = sorted(float(b) for b in buckets)
        self.upper_bounds = (*bounds, math.inf)
        self._le = tuple(go_float(b) for b in self.upper_bounds)
        self._width = len(self.upper_bounds)
        self._zeros = array("q", bytes(8 * self._width))
        self._index: dict[tuple[str, ...], int] = {}
        self._keys: list[tuple[str, ...]] = []  # by index; only appended to
        self._counts = array("q")  # series i's buckets at [i * width, (i + 1) * width)
        self._sums = array("d")
        self._exemplars: dict[int, _Exemplar] = {}  # by position in _counts
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe(
        self, labels: tuple[str, ...], value: float, exemplar: Mapping[str, str] | None = None
    ) -> None:
        """Count one value in the series of these label values (created if new)."""
        index = self._index.get(labels)
        if index is None:
            index = self._add(labels)
        position = index * self._width + bisect.bisect_left(self.upper_bounds, value)
        with self._lock:
            self._counts[position] += 1
            self._sums[index] += value
            if exemplar:
                self._exemplars[position] = _packed(exemplar["trace_id"], value, time.time())

    def _add(self, labels: tuple[str, ...]) -> int:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {labels}")
        with self._lock:
            index = self._index.get(labels)
            if index is None:
                index = self._index[labels] = len(self._sums)
                self._counts.extend(self._zeros)
                self._sums.append(0.0)
                self._keys.append(labels)
            return index

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for series in self._series(exemplars=True):
            cumulative = 0
            buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
            for offset, le in enumerate(self._le):
                cumulative += series.counts[offset]
                exemplar = series.exemplars[offset] if series.exemplars else None
                if exemplar is None:
                    buckets.append((le, float(cumulative)))
                else:
                    trace_id, value, at = _unpacked(exemplar)
                    found = Exemplar({"trace_id": trace_id}, value, at)
                    buckets.append((le, float(cumulative), found))
            family.add_metric(list(series.labels), buckets, series.sum)
        yield family

    def render(self, *, openmetrics: bool) -> Iterator[str]:
        """Exposition lines (text format 0.0.4, or OpenMetrics with exemplars)."""
        name = self.name
        yield f"# HELP {name} {escape_help(self.documentation, quotes=openmetrics)}\n"
        yield f"# TYPE {name} histogram\n"
        les = self._le
        for series in self._series(exemplars=openmetrics):
            labels = label_text(self.labelnames, series.labels)
            bucket = f'{name}_bucket{{{labels},le="'
            cumulative = 0
            exemplars = series.exemplars
            for offset, count in enumerate(series.counts):
                cumulative += count
                exemplar = exemplars[offset] if exemplars else None
                if exemplar is None:
                    yield f'{bucket}{les[offset]}"}} {cumulative}\n'
                else:
                    trace_id, value, at = _unpacked(exemplar)
                    yield (
                        f'{bucket}{les[offset]}"}} {cumulative}'
                        f' # {{trace_id="{trace_id}"}} {go_float(value)} {at:.3f}\n'
                    )
            yield f"{name}_count{{{labels}}} {cumulative}\n"
            yield f"{name}_sum{{{labels}}} {sample_value(round(series.sum, 6))}\n"

    def _series(self, *, exemplars: bool) -> Iterator[_SeriesCopy]:
        """Every series, each copied under the lock on its own: a copy of the whole family
        at once (~10 MB at 5,000 checks) stayed in the agent's RSS after every scrape."""
        width = self._width
        for index in range(len(self._keys)):
            start = index * width
            with self._lock:
                found = None
                if exemplars:
                    found = list(map(self._exemplars.get, range(start, start + width)))
                counts = self._counts[start : start + width]
                total = self._sums[index]
            yield _SeriesCopy(self._keys[index], counts, total, found)
