"""Real OTLP trace receivers for tests: an HTTP one (POST /v1/traces, protobuf) and a gRPC
one (TraceService/Export), both on 127.0.0.1 ephemeral ports, decoding what synth's
exporter sends with opentelemetry-proto into plain `ReceivedSpan`s.

The HTTP receiver can also misbehave on purpose: `mode="hang"` holds every export
without answering until the test ends (a collector that accepts connections and never
replies), `mode="error"` answers 503.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

LOOPBACK = "127.0.0.1"
Mode = Literal["accept", "hang", "error"]


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    result: dict[str, Any] = {}
    pair: KeyValue
    for pair in pairs:
        result[pair.key] = _value(pair.value)
    return result


@dataclass(frozen=True)
class ReceivedEvent:
    name: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as the collector received it; ids in lower-case hex."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str  # "internal", "client", ...
    attributes: dict[str, Any]
    status_code: str  # "unset", "ok", "error"
    status_message: str
    events: tuple[ReceivedEvent, ...]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int


_KINDS = {
    trace_pb2.Span.SPAN_KIND_INTERNAL: "internal",
    trace_pb2.Span.SPAN_KIND_CLIENT: "client",
    trace_pb2.Span.SPAN_KIND_SERVER: "server",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "producer",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "consumer",
}
_STATUS = {
    trace_pb2.Status.STATUS_CODE_UNSET: "unset",
    trace_pb2.Status.STATUS_CODE_OK: "ok",
    trace_pb2.Status.STATUS_CODE_ERROR: "error",
}


def decode(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Flatten an export request into spans, each with its resource's attributes."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_KINDS.get(span.kind, "unspecified"),
                        attributes=_attributes(span.attributes),
                        status_code=_STATUS[span.status.code],
                        status_message=span.status.message,
                        events=tuple(
                            ReceivedEvent(e.name, _attributes(e.attributes)) for e in span.events
                        ),
                        resource=resource,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


@dataclass
class _Store:
    spans: list[ReceivedSpan] = field(default_factory=list)
    exports: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spans: list[ReceivedSpan]) -> None:
        with self.lock:
            self.spans.extend(spans)
            self.exports += 1


class _Receiver:
    endpoint: str

    def __init__(self) -> None:
        self._store = _Store()

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._store.lock:
            return list(self._store.spans)

    @property
    def exports(self) -> int:
        with self._store.lock:
            return self._store.exports

    def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], *, timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """The spans received once `predicate(spans)` holds (AssertionError after
        `timeout` s, with what arrived)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans
            if predicate(spans):
                return spans
            if time.monotonic() >= deadline:
                names = [s.name for s in spans]
                raise AssertionError(f"spans never matched within {timeout:g}s; got {names}")
            time.sleep(0.05)


class OtlpHttpReceiver(_Receiver):
    """POST /v1/traces on 127.0.0.1; `endpoint` is the base URL for
    OTEL_EXPORTER_OTLP_ENDPOINT."""

    def __init__(self, mode: Mode = "accept") -> None:
        super().__init__()
        self.mode = mode
        self.stopping = threading.Event()
        self.content_types: list[str] = []
        self.encodings: list[str] = []
        self.api_keys: list[str] = []
        self.raw_bodies: list[bytes] = []  # each export request as sent, decompressed
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.mode == "hang":
                    receiver.stopping.wait(30)
                    self.close_connection = True
                    return
                if receiver.mode == "error":
                    self._reply(503, b"collector unavailable", "text/plain")
                    return
                if self.path != "/v1/traces":
                    self._reply(404, b"", "text/plain")
                    return
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.raw_bodies.append(body)
                receiver.content_types.append(self.headers.get("Content-Type", ""))
                receiver.encodings.append(encoding)
                receiver.api_keys.append(self.headers.get("api-key", ""))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._store.add(decode(request))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self._reply(200, reply, "application/x-protobuf")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: _Store) -> None:
        self._store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._store.add(decode(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpGrpcReceiver(_Receiver):
    """The OTLP TraceService on 127.0.0.1 (plaintext); `endpoint` for
    OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_EXPORTER_OTLP_PROTOCOL=grpc."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _TraceService(self._store), self._server
        )
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self.endpoint = f"http://{LOOPBACK}:{self.port}"
        self._server.start()

    def stop(self) -> None:
        self._server.stop(grace=None).wait(5)


@pytest.fixture(name="otlp_http")
def otlp_http_fixture() -> Iterator[Callable[..., OtlpHttpReceiver]]:
    """`otlp_http(mode="accept")` → a started OtlpHttpReceiver, stopped after the test."""
    receivers: list[OtlpHttpReceiver] = []

    def start(mode: Mode = "accept") -> OtlpHttpReceiver:
        receiver = OtlpHttpReceiver(mode)
        receivers.append(receiver)
        return receiver

    yield start
    for receiver in receivers:
        receiver.stop()


@pytest.fixture(name="otlp_grpc")
def otlp_grpc_fixture() -> Iterator[OtlpGrpcReceiver]:
    receiver = OtlpGrpcReceiver()
    yield receiver
    receiver.stop()


def otel_env(endpoint: str, *, protocol: str = "http/protobuf", **extra: str) -> dict[str, str]:
    """The standard variables pointing synth's exporter at `endpoint`, flushing fast."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        **extra,
    }


def tree(spans: list[ReceivedSpan], trace_id: str) -> dict[str, list[ReceivedSpan]]:
    """The spans of one trace by parent span id ("" = root)."""
    children: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        if span.trace_id == trace_id:
            children.setdefault(span.parent_span_id, []).append(span)
    return children
