"""Telemetry pieces without a network: OTEL_* parsing, the metrics a RunResult becomes,
OpenMetrics negotiation, the bounded span queue and trace ids on log records."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from synth.config import ConfigError
from synth.metrics_settings import MetricsSettings
from synth.model import (
    CheckSpec,
    HttpTimings,
    Phase,
    RequestRecord,
    RunRequest,
    RunResult,
    Status,
    StepResult,
)
from synth.outputs.logging import JsonFormatter, TraceContext
from synth.outputs.metrics import Metrics
from synth.outputs.otlp_export import SdkRecordExporter
from synth.outputs.span_export import BoundedBatchProcessor, CountingExporter, SpanRecord
from synth.outputs.tracing import TracingConfig
from synth.probes.tls import TlsResult
from synth.spans import IdTracer

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}


# -- OTEL_* ---------------------------------------------------------------------------------


def test_tracing_off_without_endpoint_or_when_disabled() -> None:
    assert not TracingConfig.from_env({}).enabled
    assert not TracingConfig.from_env({"OTEL_SERVICE_NAME": "x"}).enabled
    assert not TracingConfig.from_env({**ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}).enabled
    assert not TracingConfig.from_env({**ENDPOINT, "OTEL_SDK_DISABLED": "true"}).enabled


def test_http_endpoint_gets_the_signal_path() -> None:
    config = TracingConfig.from_env({**ENDPOINT, "OTEL_EXPORTER_OTLP_HEADERS": "api-key=k%201"})
    assert config.enabled
    assert config.protocol == "http/protobuf"
    assert config.exporter_name == "otlp_http"
    assert config.endpoint == "http://collector:4318/v1/traces"
    assert dict(config.headers) == {"api-key": "k 1"}
    assert "k 1" not in repr(config)
    assert config.timeout_s == 3.0


def test_signal_specific_variables_win() -> None:
    config = TracingConfig.from_env(
        {
            **ENDPOINT,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example:4318/custom",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "9000",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1500",
        }
    )
    assert config.endpoint == "https://traces.example:4318/custom"
    assert config.timeout_s == 1.5


def test_grpc_and_explicit_otlp() -> None:
    grpc = TracingConfig.from_env({**ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert grpc.exporter_name == "otlp_grpc"
    assert grpc.endpoint == "http://collector:4318"
    default = TracingConfig.from_env({"OTEL_TRACES_EXPORTER": "otlp"})
    assert default.endpoint == "http://localhost:4318/v1/traces"


def test_queue_settings() -> None:
    config = TracingConfig.from_env(
        {
            **ENDPOINT,
            "OTEL_BSP_MAX_QUEUE_SIZE": "100",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "250",
        }
    )
    assert (config.max_queue, config.batch_size, config.delay_s) == (100, 100, 0.25)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER: 'zipkin' is not supported"),
        (
            {**ENDPOINT, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' is not supported",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "not an http(s) URL"),
        ({**ENDPOINT, "OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT: not a"),
        ({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "0"}, "OTEL_BSP_MAX_QUEUE_SIZE: must be"),
    ],
)
def test_unusable_values_name_the_variable(variables: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TracingConfig.from_env(variables)
    assert message in str(caught.value)


# -- metrics --------------------------------------------------------------------------------

TRACE = "0af7651916cd43dd8448eb211c80319c"


def result(*, facts: object | None = None) -> RunResult:
    timings = HttpTimings(dns_s=0.001, connect_s=0.002, first_byte_s=0.01, body_s=0.001)
    request = RequestRecord(
        method="GET",
        url="https://shop.example/health",
        status_code=200,
        timings=timings,
        trace_id=TRACE,
        span_id="b7ad6b7169203331",
    )
    steps = (
        StepResult(name="health", status=Status.PASSED, duration_s=0.02, requests=(request,)),
        StepResult(
            name="tls shop.example:443",
            status=Status.PASSED,
            duration_s=0.01,
            facts=facts,
        ),
    )
    return RunResult(
        run_id="r1",
        check="shop",
        service="shop",
        environment="prod",
        phase=Phase.SCHEDULED,
        location="eu-1",
        status=Status.PASSED,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.05,
        steps=steps,
        trace_id=TRACE,
    )


def samples(metrics: Metrics, name: str) -> list[tuple[dict[str, str], float, object]]:
    body, content_type = metrics.negotiate("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    return [
        (dict(s.labels), s.value, s.exemplar)
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == name
    ]


DETAILED = MetricsSettings(detail=("phases", "steps"))


def test_the_last_runs_http_phases_are_gauges_by_default() -> None:
    metrics = Metrics()
    metrics.observe_run(result())
    phases = samples(metrics, "synth_http_phase_seconds")
    by_phase = {labels["http_phase"]: value for labels, value, _ in phases}
    # The phases the request went through (this record has no TLS or send timing).
    assert by_phase == {"dns": 0.001, "connect": 0.002, "first_byte": 0.01, "body": 0.001}
    assert {k: phases[0][0][k] for k in ("check", "env", "phase", "location", "step")} == {
        "check": "shop",
        "env": "prod",
        "phase": "scheduled",
        "location": "eu-1",
        "step": "health",
    }
    # A later run on a reused connection: no DNS or connect; they read 0, not the old value.
    reused = HttpTimings(first_byte_s=0.02, body_s=0.002)
    request = RequestRecord(method="GET", url="http://x/", status_code=200, timings=reused)
    step = StepResult(name="health", status=Status.PASSED, duration_s=0.03, requests=(request,))
    metrics.observe_run(replace(result(), steps=(step,)))
    again = samples(metrics, "synth_http_phase_seconds")
    by_phase = {labels["http_phase"]: value for labels, value, _ in again}
    assert by_phase == {"dns": 0, "connect": 0, "first_byte": 0.02, "body": 0.002}
    # No per-step or per-phase histogram unless asked for; the run's keeps its exemplar.
    assert samples(metrics, "synth_http_phase_duration_seconds_count") == []
    assert samples(metrics, "synth_step_duration_seconds_count") == []
    run_buckets = samples(metrics, "synth_check_run_duration_seconds_bucket")
    assert any(e is not None for _, _, e in run_buckets)


def test_http_phases_with_exemplars() -> None:
    metrics = Metrics(settings=DETAILED)
    metrics.observe_run(result())
    counts = samples(metrics, "synth_http_phase_duration_seconds_count")
    assert {labels["http_phase"]: value for labels, value, _ in counts} == {
        "dns": 1,
        "connect": 1,
        "first_byte": 1,
        "body": 1,
    }
    labels = counts[0][0]
    assert {k: labels[k] for k in ("check", "env", "phase", "location", "step")} == {
        "check": "shop",
        "env": "prod",
        "phase": "scheduled",
        "location": "eu-1",
        "step": "health",
    }
    buckets = samples(metrics, "synth_http_phase_duration_seconds_bucket")
    marked = [e for _, _, e in buckets if e is not None]
    assert len(marked) == 4  # one exemplar per observed phase
    assert {e.labels["trace_id"] for e in marked} == {TRACE}  # type: ignore[attr-defined]
    for name in ("synth_check_run_duration_seconds_bucket", "synth_step_duration_seconds_bucket"):
        assert any(e is not None for _, _, e in samples(metrics, name)), name


def test_tls_expiry_from_the_probe_steps_typed_facts() -> None:
    not_after = datetime(2027, 3, 1, 12, tzinfo=UTC)
    facts = TlsResult(
        host="shop.example", port=443, server_name="shop.example", subject="CN=shop.example",
        issuer="CN=CA", not_before=datetime(2026, 1, 1, tzinfo=UTC), not_after=not_after,
        days_left=100.0, sans=("shop.example",), chain_valid=True, hostname_valid=True,
        verify_error=None, tls_version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256",
        handshake_s=0.002,
    )  # fmt: skip
    metrics = Metrics()
    metrics.observe_run(result(facts=facts))
    ((labels, value, _),) = samples(metrics, "synth_tls_cert_expiry_timestamp_seconds")
    assert labels == {
        "check": "shop",
        "env": "prod",
        "location": "eu-1",
        "step": "tls shop.example:443",
    }
    assert value == not_after.timestamp()
    other = Metrics()
    other.observe_run(result())
    assert samples(other, "synth_tls_cert_expiry_timestamp_seconds") == []


def test_plain_text_unless_openmetrics_is_asked_for() -> None:
    metrics = Metrics()
    metrics.observe_run(result())
    body, content_type = metrics.negotiate(None)
    assert content_type.startswith("text/plain")
    assert b"# {" not in body
    body, _ = metrics.negotiate("text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert b"synth_check_run_duration_seconds_bucket{" in body


# -- span export ----------------------------------------------------------------------------


class GateExporter(SpanExporter):
    """Holds every export until `gate` opens; then fails or succeeds as told."""

    def __init__(self, result: SpanExportResult = SpanExportResult.SUCCESS) -> None:
        self.gate = threading.Event()
        self.result = result
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(10)
        self.exported.extend(s.name for s in spans)
        return self.result

    def shutdown(self) -> None:
        self.gate.set()


class Counted:
    def __init__(self) -> None:
        self.dropped = 0
        self.failures = 0

    def spans_dropped(self, exporter: str, count: int) -> None:
        assert exporter == "test"
        self.dropped += count

    def export_failed(self, exporter: str) -> None:
        self.failures += 1


def pipeline(exporter: GateExporter, counted: Counted, **kwargs: float) -> BoundedBatchProcessor:
    return BoundedBatchProcessor(
        CountingExporter(
            SdkRecordExporter(exporter, Resource.create({}), InstrumentationScope("test")),
            "test",
            counted,
        ),
        counted,
        **kwargs,  # type: ignore[arg-type]
    )


def spans(*names: str) -> list[SpanRecord]:
    return [
        SpanRecord(
            name=n, kind=SpanKind.INTERNAL, trace_id=1, span_id=i + 1, parent_id=0, start_ns=0
        )
        for i, n in enumerate(names)
    ]


def test_full_queue_drops_and_counts_without_blocking() -> None:
    exporter, counted = GateExporter(), Counted()
    processor = pipeline(exporter, counted, max_queue=3, batch_size=1, delay_s=0.01)
    processor.submit(spans("first"))
    # The worker takes "first" and is stuck exporting it; a run's spans that do not fit
    # are dropped whole.
    for name in ["a", "b", "c", "d", "e"]:
        processor.submit(spans(name))
    assert 2 <= counted.dropped <= 3
    processor.submit(spans("x", "y", "z", "w"))
    assert counted.dropped >= 6
    exporter.gate.set()
    assert processor.force_flush(5000)
    assert len(exporter.exported) + counted.dropped == 10
    assert counted.failures == 0
    processor.shutdown(1000)


def test_failed_export_counts_an_error_and_its_spans() -> None:
    exporter, counted = GateExporter(SpanExportResult.FAILURE), Counted()
    exporter.gate.set()
    processor = pipeline(exporter, counted, batch_size=10, delay_s=60)
    processor.submit(spans("a", "b", "c"))
    assert processor.force_flush(5000)
    assert (counted.failures, counted.dropped) == (1, 3)
    processor.shutdown(1000)


def test_shutdown_is_bounded_by_its_timeout() -> None:
    exporter, counted = GateExporter(), Counted()
    processor = pipeline(exporter, counted, max_queue=10, batch_size=1, delay_s=0.01)
    for name in ["a", "b", "c"]:
        processor.submit(spans(name))
    assert not processor.force_flush(100)  # the exporter hangs
    processor.shutdown(200)
    assert counted.dropped == 2  # queued behind the hung export: dropped, counted
    processor.submit(spans("late"))
    assert counted.dropped == 3
    exporter.gate.set()


# -- logs -----------------------------------------------------------------------------------


async def _noop(flow: object) -> None:
    pass


def test_log_records_in_a_run_carry_its_span() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContext())
    logger = logging.getLogger("test.telemetry")
    logger.addHandler(handler)
    logger.propagate = False
    tracer = IdTracer()
    request = RunRequest(check=CheckSpec(name="c", func=_noop, service="s"), environment="e")
    try:
        logger.warning("outside")
        with tracer.run_span(request) as run, tracer.step_span("login") as step:
            logger.warning("inside")
        logger.warning("after", extra={"trace_id": "given"})
    finally:
        logger.removeHandler(handler)
    outside, inside, after = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "trace_id" not in outside
    assert (inside["trace_id"], inside["span_id"]) == (run.trace_id, step.span_id)
    assert after["trace_id"] == "given"
    assert "span_id" not in after


def test_http_phase_buckets_are_configurable() -> None:
    metrics = Metrics(
        settings=MetricsSettings(detail=("phases", "steps"), http_phase_buckets=(0.01, 0.1, 1.0))
    )
    metrics.observe_run(result())
    buckets = samples(metrics, "synth_http_phase_duration_seconds_bucket")
    bounds = {labels["le"] for labels, _, _ in buckets}
    assert bounds == {"0.01", "0.1", "1.0", "+Inf"}
    # Run and step histograms keep theirs.
    step = {labels["le"] for labels, _, _ in samples(metrics, "synth_step_duration_seconds_bucket")}
    assert len(step) > 4
