"""Traces as a collector receives them: the runner with the real OTLP exporters (HTTP and
gRPC) sending to a real receiver in the test, against a real target that records the
`traceparent` it was sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from otlp_receiver import (
    OtlpGrpcReceiver,
    OtlpHttpReceiver,
    ReceivedSpan,
    otel_env,
    tree,
)

import synth
from synth.config import Settings
from synth.model import CheckSpec, DeployContext, Phase, RunRequest, RunResult
from synth.outputs.metrics import Metrics
from synth.outputs.tracing import Tracing, TracingConfig, start_tracing
from synth.runner import Runner

if TYPE_CHECKING:
    from tests.integration.conftest import Exchange, HttpServer, StartServer

    StartReceiver = Callable[..., OtlpHttpReceiver]

SECRET = "tr4ce-s3cret-token-42"
TEST_ENV = "test"


@synth.check(service="web", timeout="10s", retries=0)
async def traced(flow: synth.Flow) -> None:
    async with flow.step("login"):
        token = flow.secret("token")
        response = await flow.get(
            "/login",
            headers={"Authorization": f"Bearer {token}", "X-Plain": token},
            params={"q": token, "page": "1"},
        )
        response.expect_status(200)
    async with flow.step("cart"):
        (await flow.get("/cart")).expect_status(200)


def target(http_server: StartServer) -> HttpServer:
    def ok(ex: Exchange) -> None:
        ex.respond(200, {"ok": True})

    def unavailable(ex: Exchange) -> None:
        ex.respond(503, {"error": "cart service down"})

    return http_server({"/login": ok, "/cart": unavailable})


def settings(base_url: str) -> Settings:
    environment = {"services": {"web": {"base_url": base_url}}, "secrets": {"token": SECRET}}
    return Settings.model_validate({"environments": {TEST_ENV: environment}})


def spec_of(func: object) -> CheckSpec:
    spec = getattr(func, "__synth_check__", None)
    assert isinstance(spec, CheckSpec)
    return spec


@pytest.fixture
def tracings() -> Iterator[list[Tracing]]:
    """Tracings started by the test, shut down at its end."""
    started: list[Tracing] = []
    yield started
    for tracing in started:
        tracing.shutdown(2.0)


async def run_traced(
    receiver_endpoint: str,
    base_url: str,
    tracings: list[Tracing],
    *,
    protocol: str = "http/protobuf",
    request: RunRequest | None = None,
) -> tuple[RunResult, Tracing, Metrics]:
    config = TracingConfig.from_env(otel_env(receiver_endpoint, protocol=protocol))
    assert config.enabled
    metrics = Metrics()
    tracing = start_tracing(config, location="lab-1", environment=TEST_ENV, counters=metrics)
    tracings.append(tracing)
    runner = Runner(settings(base_url), tracer=tracing.tracer)
    result = await runner.run(
        request or RunRequest(check=spec_of(traced), environment=TEST_ENV, location="lab-1")
    )
    assert tracing.flush(5.0), "the receiver did not take the spans"
    return result, tracing, metrics


def only(spans: list[ReceivedSpan]) -> ReceivedSpan:
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


async def test_span_tree_attributes_and_traceparent(
    http_server: StartServer, otlp_http: StartReceiver, tracings: list[Tracing]
) -> None:
    server = target(http_server)
    receiver = otlp_http()
    result, _, metrics = await run_traced(receiver.endpoint, server.base_url, tracings)
    assert result.failure_type is not None
    spans = receiver.wait_for(lambda s: len(s) >= 5)
    assert receiver.content_types == ["application/x-protobuf"] * receiver.exports
    children = tree(spans, result.trace_id)
    assert sum(len(v) for v in children.values()) == 5, spans

    # run → steps → HTTP client spans
    root = only(children[""])
    assert root.name == "traced"
    assert root.kind == "internal"
    assert root.attributes == {
        "synth.check": "traced",
        "synth.service": "web",
        "synth.env": TEST_ENV,
        "synth.phase": "adhoc",
        "synth.location": "lab-1",
        "synth.attempt": 1,
        "synth.result": "failed",
        "error.type": "http_status",
    }
    assert root.status_code == "error"
    assert "503" in root.status_message
    event = only([e for e in root.events if e.name == "synth.failure"])
    assert event.attributes["synth.failure.type"] == "http_status"
    assert event.attributes["synth.failure.message"] == root.status_message

    steps = {s.name: s for s in children[root.span_id]}
    assert set(steps) == {"login", "cart"}
    login, cart = steps["login"], steps["cart"]
    assert login.attributes == {"synth.step": "login"}
    assert login.status_code == "unset"
    assert not login.events
    assert cart.status_code == "error"
    assert only(list(cart.events)).attributes["synth.failure.type"] == "http_status"
    assert login.start_ns <= login.end_ns <= cart.start_ns <= cart.end_ns <= root.end_ns

    login_http = only(children[login.span_id])
    cart_http = only(children[cart.span_id])
    port = server.port
    assert login_http.kind == cart_http.kind == "client"
    assert login_http.name == cart_http.name == "GET"
    assert login_http.attributes["http.request.method"] == "GET"
    assert login_http.attributes["server.address"] == "127.0.0.1"
    assert login_http.attributes["server.port"] == port
    assert login_http.attributes["http.response.status_code"] == 200
    assert login_http.status_code == "unset"
    assert "error.type" not in login_http.attributes
    assert cart_http.attributes["url.full"] == f"http://127.0.0.1:{port}/cart"
    assert cart_http.attributes["http.response.status_code"] == 503
    assert cart_http.attributes["error.type"] == "503"
    assert cart_http.status_code == "error"

    # The target was sent each client span's own context.
    sent = {r.path: r.headers.get("traceparent") for r in server.requests}
    assert sent["/login"] == f"00-{result.trace_id}-{login_http.span_id}-01"
    assert sent["/cart"] == f"00-{result.trace_id}-{cart_http.span_id}-01"
    # ... and the result names the same spans.
    recorded = {r.url.split("?")[0]: r for step in result.steps for r in step.requests}
    assert recorded[f"http://127.0.0.1:{port}/cart"].span_id == cart_http.span_id

    # Resource: who sent it, from where.
    assert root.resource["service.name"] == "synth"
    assert root.resource["deployment.environment.name"] == TEST_ENV
    assert root.resource["synth.location"] == "lab-1"

    # The secret went to the target but never into a span.
    login_request = next(r for r in server.requests if r.path == "/login")
    assert login_request.headers["x-plain"] == SECRET
    url = login_http.attributes["url.full"]
    assert url.startswith(f"http://127.0.0.1:{port}/login?q=")
    assert "page=1" in url
    for span in spans:
        assert SECRET not in repr(span), span

    assert metrics.telemetry_export_errors.labels("otlp_http")._value.get() == 0
    assert metrics.telemetry_spans_dropped.labels("otlp_http")._value.get() == 0


async def test_deploy_run_names_the_version(
    http_server: StartServer, otlp_http: StartReceiver, tracings: list[Tracing]
) -> None:
    server = target(http_server)
    receiver = otlp_http()
    deploy = DeployContext(
        deploy_id="d-42", service="web", environment=TEST_ENV, version="1.4.2", commit="abc123"
    )
    request = RunRequest(
        check=spec_of(traced), environment=TEST_ENV, phase=Phase.DEPLOY, deploy=deploy
    )
    result, _, _ = await run_traced(receiver.endpoint, server.base_url, tracings, request=request)
    spans = receiver.wait_for(lambda s: any(x.parent_span_id == "" for x in s))
    root = only(tree(spans, result.trace_id)[""])
    assert root.attributes["synth.phase"] == "deploy"
    assert root.attributes["synth.deploy.version"] == "1.4.2"
    assert root.attributes["synth.deploy.id"] == "d-42"
    assert root.attributes["synth.deploy.commit"] == "abc123"


async def test_http_export_compresses_and_sends_headers_as_the_otel_variables_say(
    http_server: StartServer,
    otlp_http: StartReceiver,
    tracings: list[Tracing],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Compression is read by the OpenTelemetry exporter from the process environment.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    receiver = otlp_http()
    server = target(http_server)
    config = TracingConfig.from_env(
        otel_env(receiver.endpoint, OTEL_EXPORTER_OTLP_HEADERS="api-key=k%201")
    )
    tracing = start_tracing(config, location="lab-1", environment=TEST_ENV)
    tracings.append(tracing)
    runner = Runner(settings(server.base_url), tracer=tracing.tracer)
    result = await runner.run(
        RunRequest(check=spec_of(traced), environment=TEST_ENV, location="lab-1")
    )
    assert tracing.flush(5.0)
    spans = receiver.wait_for(lambda s: len(s) >= 5)
    assert only(tree(spans, result.trace_id)[""]).name == "traced"
    assert receiver.exports >= 1
    assert set(receiver.encodings) == {"gzip"}
    assert set(receiver.api_keys) == {"k 1"}


async def test_grpc_export(
    http_server: StartServer, otlp_grpc: OtlpGrpcReceiver, tracings: list[Tracing]
) -> None:
    server = target(http_server)
    result, _, metrics = await run_traced(
        otlp_grpc.endpoint, server.base_url, tracings, protocol="grpc"
    )
    spans = otlp_grpc.wait_for(lambda s: len(s) >= 5)
    children = tree(spans, result.trace_id)
    root = only(children[""])
    steps = {s.name: s for s in children[root.span_id]}
    cart_http = only(children[steps["cart"].span_id])
    assert cart_http.kind == "client"
    assert cart_http.attributes["http.response.status_code"] == 503
    sent = {r.path: r.headers.get("traceparent") for r in server.requests}
    assert sent["/cart"] == f"00-{result.trace_id}-{cart_http.span_id}-01"
    assert metrics.telemetry_export_errors.labels("otlp_grpc")._value.get() == 0


async def test_off_without_endpoint_uses_id_tracer(http_server: StartServer) -> None:
    config = TracingConfig.from_env({"OTEL_SERVICE_NAME": "x"})
    assert not config.enabled
    tracing = start_tracing(config, location="local")
    assert not tracing.enabled
    server = target(http_server)
    result = await Runner(settings(server.base_url), tracer=tracing.tracer).run(
        RunRequest(check=spec_of(traced), environment=TEST_ENV)
    )
    # Still a traceparent per request, naming the request's own span id.
    cart = next(r for step in result.steps for r in step.requests if r.url.endswith("/cart"))
    sent = next(r.headers["traceparent"] for r in server.requests if r.path == "/cart")
    assert sent == f"00-{result.trace_id}-{cart.span_id}-01"


@synth.check(service="web", timeout="0.5s", retries=0)
async def stalls(flow: synth.Flow) -> None:
    async with flow.step("slow page"):
        await flow.get("/slow")


async def test_timeout_marks_the_cut_spans(
    http_server: StartServer, otlp_http: StartReceiver, tracings: list[Tracing]
) -> None:
    def slow(ex: Exchange) -> None:
        ex.pause(5)

    server = http_server({"/slow": slow})
    receiver = otlp_http()
    request = RunRequest(check=spec_of(stalls), environment=TEST_ENV)
    result, _, _ = await run_traced(receiver.endpoint, server.base_url, tracings, request=request)
    assert result.failure_type is not None
    assert result.failure_type.value == "timeout"
    spans = receiver.wait_for(lambda s: len(s) >= 3)
    children = tree(spans, result.trace_id)
    root = only(children[""])
    step = only(children[root.span_id])
    client = only(children[step.span_id])
    assert root.status_code == "error"
    assert only(list(root.events)).attributes["synth.failure.type"] == "timeout"
    assert step.status_code == client.status_code == "error"
    assert step.status_message == client.status_message == "interrupted: CancelledError"
    assert "http.response.status_code" not in client.attributes
