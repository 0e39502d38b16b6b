"""Getting finished spans to the collector without ever holding up a check.

`BoundedBatchProcessor` queues ended spans (a lock and an append: no I/O on the run's
thread) and a background thread exports them in batches. The queue is bounded: when the
collector is slow or down and the queue is full, new spans are dropped and counted.
`CountingExporter` counts failed exports, and the spans they carried as dropped. Both
report to an `ExportCounters` (the Prometheus counters in `synth.outputs.metrics`).

The SDK's BatchSpanProcessor drops on overflow too, but counts only into the SDK's own
opt-in metrics; observing its queue would mean reading its private state.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

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


class CountingExporter(SpanExporter):
    """Wraps an exporter: a failed export counts one error and drops its spans (counted).
    Logs once when exports start failing and once when they recover, not per batch."""

    def __init__(self, inner: SpanExporter, name: str, counters: ExportCounters) -> None:
        self._inner = inner
        self.name = name
        self._counters = counters
        self._failing = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
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

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class BoundedBatchProcessor(SpanProcessor):
    """Batches ended spans to an exporter on a background thread.

    `on_end` never blocks on I/O; at most `max_queue` spans wait, the rest are dropped and
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
        self._queue: collections.deque[ReadableSpan] = collections.deque()
        self._cond = threading.Condition()
        self._enqueued = 0  # spans ever queued
        self._handled = 0  # of those, exported or failed
        self._flush_target = 0
        self._stopping = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._work, name="synth-span-export", daemon=True)
        self._thread.start()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._cond:
            if self._stopping or len(self._queue) >= self._max_queue:
                dropped = True
            else:
                dropped = False
                self._queue.append(span)
                self._enqueued += 1
                if len(self._queue) == self._batch_size:
                    self._cond.notify()
        if dropped:
            self._counters.spans_dropped(self._exporter.name, 1)

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
