"""Exporters that take a batch of `SpanRecord`s and send it over OTLP.

The HTTP and gRPC exporters are the SDK's own (so endpoint, headers, TLS certificates,
compression, retries and backoff follow the standard `OTEL_EXPORTER_OTLP_*` variables
exactly as documented for OpenTelemetry Python); only the encoding is ours
(`synth.outputs.otlp_encode`, ~9x cheaper than the SDK's). The gRPC one lives in
`synth.outputs.otlp_grpc`, imported only when configured: grpcio costs ~10 MB per
process. `SdkRecordExporter` feeds any other SDK `SpanExporter` (tests, benchmarks)
through the SDK's ReadableSpan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as SdkHttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from synth.outputs.otlp_encode import SpanEncoder
from synth.outputs.span_export import FixedResource, SpanRecord, to_readable

log = logging.getLogger("synth.tracing")


class SdkRecordExporter:
    """Any SDK `SpanExporter`, fed the SDK's ReadableSpans built from the records."""

    def __init__(
        self, inner: SpanExporter, resource: Resource, scope: InstrumentationScope
    ) -> None:
        self._inner = inner
        self._resource = FixedResource(resource)
        self._scope = scope

    def export(self, records: Sequence[SpanRecord]) -> SpanExportResult:
        return self._inner.export(to_readable(records, self._resource, self._scope))

    def shutdown(self) -> None:
        self._inner.shutdown()


class OtlpHttpRecordExporter(SdkHttpExporter):
    """OTLP/HTTP protobuf: the SDK exporter's HTTP client (retries, compression, TLS),
    fed bytes from `SpanEncoder`."""

    def __init__(self, resource: Resource, scope: InstrumentationScope, **options: Any) -> None:
        super().__init__(**options)
        self._encoder = SpanEncoder(resource, scope)
        self._resource = resource
        self._scope = scope
        # The SDK's HTTP client is private API: if a future release moves it, export the
        # SDK's way (correct, just slower) rather than fail.
        self._send = getattr(getattr(self, "_client", None), "export", None)
        if self._send is None:
            log.info("OTLP/HTTP: the SDK exporter's client was not found; using its encoder")

    def export(self, records: Sequence[SpanRecord]) -> SpanExportResult:  # type: ignore[override]
        if self._send is None:
            return super().export(to_readable(records, self._resource, self._scope))
        if self._shutdown:
            return SpanExportResult.FAILURE
        result = self._send(self._encoder.encode(records))
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
