"""OpenTelemetry traces of check runs: one trace per run, a span per step, a client span
per HTTP request, exported over OTLP (HTTP or gRPC) as the standard `OTEL_*` variables say.

`TracingConfig.from_env` reads those variables once, at start. With no OTLP endpoint (or
`OTEL_TRACES_EXPORTER=none`) tracing is off and `start_tracing` hands back the cheap
`IdTracer`: requests still carry a `traceparent` and results a trace id, nothing is
exported. Span attributes come from the runner and the flow, already redacted.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind
from opentelemetry.util.re import parse_env_headers

from synth import __version__
from synth.config import ConfigError
from synth.model import Failure, RunRequest
from synth.outputs.otlp_export import (
    OtlpHttpRecordExporter,
    SdkRecordExporter,
)
from synth.outputs.span_export import (
    BoundedBatchProcessor,
    CountingExporter,
    ExportCounters,
    NoCounters,
    RecordExporter,
    SpanRecord,
    throttle_exporter_logs,
)
from synth.spans import AttrValue, IdTracer, RunTracer, SpanHandle, activated

PROTOCOLS = {"http/protobuf": "otlp_http", "grpc": "otlp_grpc"}
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
DEFAULT_EXPORT_TIMEOUT_S = 3.0
MAX_MESSAGE_CHARS = 1024


def _first(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _positive(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError([f"{name}: not a number: {raw!r}"]) from None
    if value <= 0:
        raise ConfigError([f"{name}: must be greater than 0, got {raw!r}"])
    return value


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """What the `OTEL_*` environment asks for; `enabled` False means no export at all."""

    enabled: bool = False
    protocol: str = "http/protobuf"
    endpoint: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold API keys
    timeout_s: float = DEFAULT_EXPORT_TIMEOUT_S
    max_queue: int = 2048
    batch_size: int = 512
    delay_s: float = 5.0

    @property
    def exporter_name(self) -> str:
        """The `exporter` label of the telemetry counters."""
        return PROTOCOLS[self.protocol]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TracingConfig:
        """Tracing is on when an OTLP endpoint is set or `OTEL_TRACES_EXPORTER=otlp`; off
        with `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. ConfigError names
        the variable when a value cannot be used."""
        if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return cls()
        exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if exporter == "none":
            return cls()
        if exporter not in ("", "otlp"):
            raise ConfigError(
                [f"OTEL_TRACES_EXPORTER: {exporter!r} is not supported (use otlp or none)"]
            )
        endpoint = _first(
            environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if exporter == "" and endpoint is None:
            return cls()
        found = _first(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        protocol = found[1] if found else "http/protobuf"
        if found and protocol not in PROTOCOLS:
            raise ConfigError(
                [f"{found[0]}: {protocol!r} is not supported (use http/protobuf or grpc)"]
            )
        # The specification gives OTLP timeouts in milliseconds.
        timeout_name = next(
            (
                n
                for n in ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
                if environ.get(n, "").strip()
            ),
            "OTEL_EXPORTER_OTLP_TIMEOUT",
        )
        if endpoint is not None and endpoint[0] == "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
            url = endpoint[1]  # the signal's own endpoint is used as given
        else:
            base = endpoint[1] if endpoint else DEFAULT_ENDPOINTS[protocol]
            url = base.rstrip("/") + "/v1/traces" if protocol == "http/protobuf" else base
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            name = endpoint[0] if endpoint else "OTEL_EXPORTER_OTLP_ENDPOINT"
            raise ConfigError([f"{name}: not an http(s) URL: {url!r}"])
        found_headers = _first(
            environ, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"
        )
        headers = parse_env_headers(found_headers[1], liberal=True) if found_headers else {}
        timeout_ms = _positive(environ, timeout_name, DEFAULT_EXPORT_TIMEOUT_S * 1000)
        max_queue = int(_positive(environ, "OTEL_BSP_MAX_QUEUE_SIZE", 2048))
        batch_size = int(_positive(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512))
        delay_ms = _positive(environ, "OTEL_BSP_SCHEDULE_DELAY", 5000)
        return cls(
            enabled=True,
            protocol=protocol,
            endpoint=url,
            headers=tuple(sorted(headers.items())),
            timeout_s=timeout_ms / 1000,
            max_queue=max_queue,
            batch_size=min(batch_size, max_queue),
            delay_s=delay_ms / 1000,
        )


# -- spans ------------------------------------------------------------------------------------


class OtelSpan:
    """A `SpanHandle` recording into a `SpanRecord`."""

    __slots__ = ("_client", "_failed", "record", "span_id", "trace_id")

    def __init__(self, record: SpanRecord, *, client: bool = False) -> None:
        self.record = record
        self.trace_id = format(record.trace_id, "032x")
        self.span_id = format(record.span_id, "016x")
        self._client = client
        self._failed = False

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"

    def set_attributes(self, attributes: Mapping[str, AttrValue]) -> None:
        record = self.record
        record.attributes.update(attributes)
        status = attributes.get("http.response.status_code")
        # HTTP semantic conventions: a client span with a 4xx/5xx answer is an error, and
        # error.type is the status code.
        if self._client and isinstance(status, int) and status >= 400 and not self._failed:
            record.attributes["error.type"] = str(status)
            record.error = ""

    def record_failure(self, failure: Failure) -> None:
        self._failed = True
        record = self.record
        message = failure.message[:MAX_MESSAGE_CHARS]
        record.error = message
        record.attributes["error.type"] = failure.type.value
        event: dict[str, AttrValue] = {
            "synth.failure.type": failure.type.value,
            "synth.failure.message": message,
        }
        if failure.expected is not None:
            event["synth.failure.expected"] = failure.expected[:MAX_MESSAGE_CHARS]
        if failure.actual is not None:
            event["synth.failure.actual"] = failure.actual[:MAX_MESSAGE_CHARS]
        record.events.append(("synth.failure", time.time_ns(), event))

    def interrupted(self, error: BaseException) -> None:
        """An exception left the span without a recorded failure (cancelled by the
        check's deadline, for one)."""
        if not self._failed:
            self.record.error = f"interrupted: {type(error).__name__}"


@dataclass(slots=True, eq=False)
class _Open:
    """The span open in this context and the run it belongs to."""

    record: SpanRecord
    run: list[SpanRecord]  # the run's finished spans, handed over when the root ends


_open: contextvars.ContextVar[_Open | None] = contextvars.ContextVar(
    "synth_open_span", default=None
)


def run_attributes(request: RunRequest) -> dict[str, AttrValue]:
    """The root span's attributes: which check, where, in which phase, for which deploy."""
    attributes: dict[str, AttrValue] = {
        "synth.check": request.check.name,
        "synth.service": request.check.service,
        "synth.env": request.environment,
        "synth.phase": request.phase.value,
        "synth.location": request.location,
    }
    deploy = request.deploy
    if deploy is not None:
        attributes["synth.deploy.id"] = deploy.deploy_id
        attributes["synth.deploy.service"] = deploy.service
        attributes["synth.deploy.version"] = deploy.version
        if deploy.commit:
            attributes["synth.deploy.commit"] = deploy.commit
    return attributes


def _nonzero_bits(bits: int) -> int:
    return random.getrandbits(bits) or 1  # the SDK's id generator, minus the all-zero id


class OtelTracer:
    """A `RunTracer` that records real spans: the run is a root span, steps its
    children, HTTP requests client spans under the step. A run's spans are queued for
    export together when the run's span ends."""

    def __init__(self, processor: BoundedBatchProcessor) -> None:
        self._processor = processor

    @contextlib.contextmanager
    def _span(
        self, name: str, kind: SpanKind, attributes: Mapping[str, AttrValue], *, root: bool
    ) -> Iterator[SpanHandle]:
        parent = None if root else _open.get()
        record = SpanRecord(
            name=name,
            kind=kind,
            trace_id=parent.record.trace_id if parent else _nonzero_bits(128),
            span_id=_nonzero_bits(64),
            parent_id=parent.record.span_id if parent else 0,
            start_ns=time.time_ns(),
            attributes=dict(attributes),
        )
        opened = _Open(record, parent.run if parent else [])
        handle = OtelSpan(record, client=kind is SpanKind.CLIENT)
        token = _open.set(opened)
        try:
            with activated(handle):
                yield handle
        except BaseException as error:
            handle.interrupted(error)
            raise
        finally:
            with contextlib.suppress(ValueError, RuntimeError):
                _open.reset(token)
            record.end_ns = time.time_ns()
            opened.run.append(record)
            if parent is None:
                self._processor.submit(opened.run)

    def run_span(self, request: RunRequest) -> contextlib.AbstractContextManager[SpanHandle]:
        return self._span(request.check.name, SpanKind.INTERNAL, run_attributes(request), root=True)

    def step_span(self, name: str) -> contextlib.AbstractContextManager[SpanHandle]:
        return self._span(name, SpanKind.INTERNAL, {"synth.step": name}, root=False)

    def http_span(
        self, method: str, url: str, attributes: Mapping[str, AttrValue]
    ) -> contextlib.AbstractContextManager[SpanHandle]:
        return self._span(method, SpanKind.CLIENT, attributes, root=False)

    def finished_span(
        self, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, AttrValue]
    ) -> None:
        parent = _open.get()
        if parent is None:
            return
        parent.run.append(
            SpanRecord(
                name=name,
                kind=SpanKind.CLIENT,
                trace_id=parent.record.trace_id,
                span_id=_nonzero_bits(64),
                parent_id=parent.record.span_id,
                start_ns=start_ns,
                end_ns=max(end_ns, start_ns),
                attributes=dict(attributes),
            )
        )


# -- set-up -----------------------------------------------------------------------------------


@dataclass(slots=True)
class Tracing:
    """The tracer for the runner, and the export pipeline behind it to flush at stop."""

    tracer: RunTracer
    exporter: str | None = None
    processor: BoundedBatchProcessor | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.exporter is not None

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Export what has been queued; False if the collector did not take it in time."""
        if self.processor is None:
            return True
        return self.processor.force_flush(int(timeout_s * 1000))

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush within `timeout_s` and stop exporting; spans still queued are dropped."""
        if self.processor is not None:
            self.processor.shutdown(int(timeout_s * 1000))
            self.processor = None


def resource(*, location: str, environment: str | None) -> Resource:
    """service.name "synth" unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says
    otherwise; deployment.environment(.name) when the process targets one environment."""
    attributes: dict[str, AttrValue] = {
        "service.name": "synth",
        "service.version": __version__,
        "synth.location": location,
    }
    if environment is not None:
        attributes["deployment.environment.name"] = environment
        attributes["deployment.environment"] = environment  # the pre-1.27 name, still read
    from_env = OTELResourceDetector().detect().attributes
    return Resource.create({**attributes, **from_env})


def new_exporter(
    config: TracingConfig, resource: Resource, scope: InstrumentationScope
) -> RecordExporter:
    """The OTLP exporter for the configured protocol and endpoint; certificates and
    compression come from the standard variables, read by the SDK exporter itself."""
    headers = dict(config.headers)
    options = {"endpoint": config.endpoint, "headers": headers, "timeout": config.timeout_s}
    if config.protocol == "grpc":
        from synth.outputs.otlp_grpc import OtlpGrpcRecordExporter

        return OtlpGrpcRecordExporter(resource, scope, **options)
    return OtlpHttpRecordExporter(resource, scope, **options)


def start_tracing(
    config: TracingConfig,
    *,
    location: str,
    environment: str | None = None,
    counters: ExportCounters | None = None,
    exporter: SpanExporter | None = None,
) -> Tracing:
    """The tracer to give the runner: exporting spans when `config.enabled`, else the
    id-only `IdTracer`. `exporter` replaces the OTLP exporter (tests, benchmarks)."""
    if not config.enabled and exporter is None:
        return Tracing(tracer=IdTracer())
    throttle_exporter_logs()
    run_resource = resource(location=location, environment=environment)
    scope = InstrumentationScope("synth", __version__)
    records: RecordExporter = (
        SdkRecordExporter(exporter, run_resource, scope)
        if exporter is not None
        else new_exporter(config, run_resource, scope)
    )
    counting = CountingExporter(records, config.exporter_name, counters or NoCounters())
    processor = BoundedBatchProcessor(
        counting,
        counters or NoCounters(),
        max_queue=config.max_queue,
        batch_size=config.batch_size,
        delay_s=config.delay_s,
    )
    return Tracing(tracer=OtelTracer(processor), exporter=config.exporter_name, processor=processor)
