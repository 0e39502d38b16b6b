"""OTLP/gRPC span export: imported only when `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` (grpcio
adds ~10 MB to a process)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as SdkGrpcExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from synth.outputs.otlp_encode import SpanEncoder
from synth.outputs.span_export import SpanRecord


class OtlpGrpcRecordExporter(SdkGrpcExporter):
    """OTLP/gRPC: the SDK exporter (channel, credentials, retries), its request built by
    parsing `SpanEncoder`'s bytes (protobuf's C parser: a few µs a batch)."""

    def __init__(self, resource: Resource, scope: InstrumentationScope, **options: Any) -> None:
        super().__init__(**options)
        self._encoder = SpanEncoder(resource, scope)

    def _translate_data(self, data: Sequence[Any]) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(
            self._encoder.encode(data)
        )
        return request

    def export(self, records: Sequence[SpanRecord]) -> SpanExportResult:  # type: ignore[override]
        # The mixin hands `records` to `_translate_data` above, whatever their type.
        return self._export(records)  # type: ignore[arg-type]
