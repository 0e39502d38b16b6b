"""Getting finished spans to the collector without ever holding up a check.

The tracer hands each finished run's spans as plain `SpanRecord`s to
`BoundedBatchProcessor` (a lock and an append: no I/O on the run's thread); a background
thread exports them in batches (`synth.outputs.otlp_export`: the SDK's OTLP exporters,
fed by synth's own protobuf encoder). The queue is bounded: when the collector is slow or
down and the queue is full, new spans are dropped and counted. `CountingExporter` counts failed
exports, and the spans they carried as dropped. Both report to an `ExportCounters` (the
Prometheus counters in `synth.outputs.metrics`).

Why not the SDK's Tracer and BatchSpanProcessor: its spans cost ~50 µs each on the run's
thread (locks, attribute validation), three per run, which alone broke the 15 % overhead
budget; and its processor counts drops only into opt-in SDK metrics.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from synth.spans import AttrValue

log = logging.getLogger("synth.tracing")

# The OTLP exporters log every failed batch (every few seconds while a collector is down).
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.exporter.otlp.proto.http._common",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
)
LOG_EVERY_S = 60.0


class Throttle(logging.Filter):
    """Lets each distinct message through at most once per `every_s`."""

    def __init__(self, every_s: float = LOG_EVERY_S) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[tuple[str, object], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.msg)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._every_s:
                return False
            self._last[key] = now
        return True


def throttle_exporter_logs(every_s: float = LOG_EVERY_S) -> None:
    """Keep the exporters' reasons (refused, 401, timeout) but not one line per batch."""
    for name in EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, Throttle) for f in logger.filters):
            logger.addFilter(Throttle(every_s))


class ExportCounters(Protocol):
    """Where the export pipeline reports what it lost."""

    def spans_dropped(self, exporter: str, count: int) -> None: ...

    def export_failed(self, exporter: str) -> None: ...


class NoCounters:
    """Counts nothing (tests of the pipeline alone, tools without metrics)."""

    def spans_dropped(self, exporter: str, count: int) -> None:
        pass

    def export_failed(self, exporter: str) -> None:
        pass


class RecordExporter(Protocol):
    """Sends one batch of finished spans (`synth.outputs.otlp_export` has the OTLP ones)."""

    def export(self, records: Sequence[SpanRecord]) -> SpanExportResult: ...

    def shutdown(self) -> None: ...


class CountingExporter:
    """Wraps an exporter: a failed export counts one error and drops its spans (counted).
    Logs once when exports start failing and once when they recover, not per batch."""

    def __init__(self, inner: RecordExporter, name: str, counters: ExportCounters) -> None:
        self._inner = inner
        self.name = name
        self._counters = counters
        self._failing = False

    def export(self, spans: Sequence[SpanRecord]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:  # an exporter bug must not kill the export thread
            log.warning("trace export raised: %r", exc, extra={"exporter": self.name})
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            if self._failing:
                self._failing = False
                log.info("trace export recovered", extra={"exporter": self.name})
            return result
        self._counters.export_failed(self.name)
        self._counters.spans_dropped(self.name, len(spans))
        if not self._failing:
            self._failing = True
            log.warning(
                "trace export failing; spans are dropped and counted "
                "(synth_telemetry_spans_dropped_total)",
                extra={"exporter": self.name},
            )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()


@dataclass(slots=True, eq=False)
class SpanRecord:
    """A finished span as the tracer keeps it: plain values, nothing validated or locked
    on the run's thread. Turned into the SDK's ReadableSpan only on the export thread."""

    name: str
    kind: SpanKind
    trace_id: int
    span_id: int
    parent_id: int  # 0: the root of its trace
    start_ns: int
    end_ns: int = 0
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    events: list[tuple[str, int, dict[str, AttrValue]]] = field(default_factory=list)
    error: str | None = None  # status ERROR with this description; None: unset


class FixedResource(Resource):
    """A Resource whose hash is computed once: the OTLP encoder hashes the resource of
    every span it encodes, and Resource's own hash serialises its attributes to JSON."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or super().__eq__(other)


_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OK = Status(StatusCode.UNSET)


def to_readable(
    records: Sequence[SpanRecord], resource: Resource, scope: InstrumentationScope
) -> list[ReadableSpan]:
    """The SDK's view of the records, which the OTLP exporters encode."""
    spans = []
    for r in records:
        # ReadableSpan is what every SDK exporter consumes; building it directly skips the
        # SDK span's locks and per-attribute validation, which cost more than the run's
        # own bookkeeping (bench/telemetry_overhead.py).
        spans.append(
            ReadableSpan(
                name=r.name,
                context=SpanContext(r.trace_id, r.span_id, False, _SAMPLED),
                parent=SpanContext(r.trace_id, r.parent_id, False, _SAMPLED)
                if r.parent_id
                else None,
                resource=resource,
                attributes=r.attributes,
                events=[Event(name, attributes, when) for name, when, attributes in r.events],
                kind=r.kind,
                status=_OK if r.error is None else Status(StatusCode.ERROR, r.error),
                start_time=r.start_ns,
                end_time=r.end_ns,
                instrumentation_scope=scope,
            )
        )
    return spans


class BoundedBatchProcessor:
    """Batches finished spans to an exporter on a background thread.

    `submit` never blocks on I/O; at most `max_queue` spans wait, the rest are dropped and
    counted. A batch goes out when `batch_size` spans are waiting, every `delay_s`, on
    `force_flush`, and at `shutdown` (each bounded by its timeout)."""

    def __init__(
        self,
        exporter: CountingExporter,
        counters: ExportCounters,
        *,
        max_queue: int = 2048,
        batch_size: int = 512,
        delay_s: float = 5.0,
    ) -> None:
        self._exporter = exporter
        self._counters = counters
        self._max_queue = max_queue
        self._batch_size = min(batch_size, max_queue)
        self._delay_s = delay_s
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._cond = threading.Condition()
        self._enqueued = 0  # spans ever queued
        self._handled = 0  # of those, exported or failed
        self._flush_target = 0
        self._stopping = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._work, name="synth-span-export", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[SpanRecord]) -> None:
        """Queue the spans of one run, or drop (and count) them all if they do not fit."""
        count = len(records)
        with self._cond:
            dropped = self._stopping or len(self._queue) + count > self._max_queue
            if not dropped:
                self._queue.extend(records)
                self._enqueued += count
                if len(self._queue) >= self._batch_size:
                    self._cond.notify()
        if dropped:
            self._counters.spans_dropped(self._exporter.name, count)

    def _ready(self) -> bool:
        return (
            self._stopping
            or len(self._queue) >= self._batch_size
            or (self._flush_target > self._handled and bool(self._queue))
        )

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, timeout=self._delay_s)
                if self._abandoned or (self._stopping and not self._queue):
                    return
                count = min(len(self._queue), self._batch_size)
                batch = [self._queue.popleft() for _ in range(count)]
            if batch:
                self._exporter.export(batch)
            with self._cond:
                self._handled += len(batch)
                self._cond.notify_all()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export every span queued so far; False if that took longer than the timeout."""
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            target = self._enqueued
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            while self._handled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    def shutdown(self, timeout_millis: int = 5000) -> None:
        """Export what is queued within the timeout; what is left then is dropped, counted."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout_millis / 1000)
        with self._cond:
            self._abandoned = True
            left = len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if left:
            self._counters.spans_dropped(self._exporter.name, left)
        if not self._thread.is_alive():
            self._exporter.shutdown()
