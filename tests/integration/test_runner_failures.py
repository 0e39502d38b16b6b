"""Every failure type the runner reports, each produced by a real fault on a real socket,
plus retries, phase timings and trace propagation."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
import pytest

import synth
from synth.model import Failure, FailureType, RunResult, Status

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, StartServer, StartTlsServer

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def failed(result: RunResult, failure_type: FailureType, step: str) -> Failure:
    """The run's failure, after checking it failed with `failure_type` in `step`."""
    assert result.status is Status.FAILED, result
    assert result.failure is not None
    assert result.failure_type is failure_type, result.failure
    assert result.failed_step == step
    failed_steps = [s for s in result.steps if s.status is Status.FAILED]
    assert [s.name for s in failed_steps] == [step]
    assert failed_steps[0].failure == result.failure
    return result.failure


def json_route(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    def route(ex: Exchange) -> None:
        ex.respond(status, body, headers=headers)

    return route


def slow_route(delay_s: float, body: Any = None) -> Any:
    def route(ex: Exchange) -> None:
        if ex.pause(delay_s):
            ex.respond(200, body if body is not None else {"ok": True})

    return route


@synth.check(service="web", timeout="5s", retries=0)
async def get_home(flow: synth.Flow) -> None:
    async with flow.step("open home"):
        (await flow.get("/")).expect_status(200)


# -- connect ----------------------------------------------------------------------------------


async def test_connect_refused_on_closed_port(
    closed_port: int, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    result = await run_check(settings_for(f"http://127.0.0.1:{closed_port}"), get_home)

    failure = failed(result, FailureType.CONNECT, "open home")
    # The errno's meaning, not asyncio's "Connect call failed (address)" wording.
    assert failure.message == "cannot connect: connection refused"
    assert (failure.method, failure.url) == ("GET", f"http://127.0.0.1:{closed_port}/")
    assert failure.response_excerpt is None
    (request,) = result.steps[0].requests
    assert request.status_code is None
    assert result.duration_s < 1.0


async def test_connection_reset_mid_response(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    def reset(ex: Exchange) -> None:
        ex.send_head(200, {"Content-Type": "application/json", "Content-Length": "5000"})
        ex.write(b'{"items": [')
        ex.pause(0.1)  # let the client read the headers and start on the body
        ex.reset()

    server = http_server({"/": reset})
    result = await run_check(settings_for(server.base_url), get_home)

    failure = failed(result, FailureType.CONNECT, "open home")
    assert failure.message == "connection failed mid-exchange: connection reset by peer"
    assert failure.url == server.url("/")
    assert server.hits("/") == 1


# -- dns --------------------------------------------------------------------------------------


async def test_dns_unresolvable_name(settings_for: SettingsFor, run_check: RunCheck) -> None:
    result = await run_check(settings_for("http://something.invalid"), get_home)

    failure = failed(result, FailureType.DNS, "open home")
    assert failure.message.startswith("cannot resolve something.invalid: ")
    assert failure.url == "http://something.invalid/"


# -- tls --------------------------------------------------------------------------------------


async def test_tls_self_signed_certificate(
    tls_server: StartTlsServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = tls_server({"/": json_route(200, {"ok": True})}, cert="self_signed")
    result = await run_check(settings_for(server.base_url), get_home)

    failure = failed(result, FailureType.TLS, "open home")
    assert "self-signed certificate" in failure.message
    assert failure.message.startswith("TLS handshake failed: ")
    assert failure.url == server.url("/")
    assert server.requests == []


async def test_tls_expired_certificate_from_a_trusted_ca(
    tls_server: StartTlsServer, ca_file: Path, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    trust = {"ca_file": str(ca_file)}
    valid = tls_server({"/": json_route(200, {"ok": True})}, cert="valid")
    expired = tls_server({"/": json_route(200, {"ok": True})}, cert="expired")

    # The same trust settings accept a current certificate: only expiry fails below.
    control = await run_check(settings_for(valid.base_url, tls=trust), get_home)
    assert control.status is Status.PASSED, control.failure
    result = await run_check(settings_for(expired.base_url, tls=trust), get_home)

    failure = failed(result, FailureType.TLS, "open home")
    assert failure.message == "TLS handshake failed: certificate has expired"
    assert expired.requests == []


async def test_tls_hostname_mismatch(
    tls_server: StartTlsServer, ca_file: Path, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = tls_server({"/": json_route(200, {"ok": True})}, cert="wrong_host")
    result = await run_check(settings_for(server.base_url, tls={"ca_file": str(ca_file)}), get_home)

    failure = failed(result, FailureType.TLS, "open home")
    assert "Hostname mismatch" in failure.message
    assert "'localhost'" in failure.message


# -- timeout ----------------------------------------------------------------------------------


async def test_timeout_server_slower_than_request_timeout(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = http_server({"/": slow_route(2.0)})
    settings = settings_for(server.base_url, runner={"request_timeout": "300ms"})

    started = time.perf_counter()
    result = await run_check(settings, get_home)
    elapsed = time.perf_counter() - started

    failure = failed(result, FailureType.TIMEOUT, "open home")
    assert failure.message.startswith("no complete response within 0.3s")
    assert "waiting for the response headers" in failure.message
    assert (failure.method, failure.url) == ("GET", server.url("/"))
    assert 0.3 <= elapsed < 1.0


async def test_timeout_given_on_the_call(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def report(flow: synth.Flow) -> None:
        async with flow.step("fetch report"):
            await flow.get("/report", timeout="200ms")

    server = http_server({"/report": slow_route(2.0)})
    started = time.perf_counter()
    result = await run_check(settings_for(server.base_url), report)

    failure = failed(result, FailureType.TIMEOUT, "fetch report")
    assert failure.message.startswith("no complete response within 0.2s")
    assert time.perf_counter() - started < 1.0


async def test_check_timeout_names_step_and_in_flight_request(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="500ms", retries=0)
    async def export(flow: synth.Flow) -> None:
        async with flow.step("log in"):
            (await flow.get("/login")).expect_status(200)
        async with flow.step("export orders"):
            await flow.get("/export")

    server = http_server({"/login": json_route(200, {"ok": True}), "/export": slow_route(2.0)})
    started = time.perf_counter()
    result = await run_check(settings_for(server.base_url), export)

    assert time.perf_counter() - started < 1.5
    failure = failed(result, FailureType.TIMEOUT, "export orders")
    assert failure.message == "check timed out after 0.5s during step 'export orders'"
    export_url = server.url("/export")
    assert (failure.method, failure.url) == ("GET", export_url)
    assert failure.actual == f"still running: GET {export_url}"
    assert [s.status for s in result.steps] == [Status.PASSED, Status.FAILED]


# -- http_status and auth ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
async def test_http_status_with_json_excerpt(
    status: int, http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    body = {"error": "database unavailable", "retry": False}
    server = http_server({"/": json_route(status, body)})
    result = await run_check(settings_for(server.base_url), get_home)

    failure = failed(result, FailureType.HTTP_STATUS, "open home")
    assert failure.message == f"expected status 200, got {status}"
    assert (failure.expected, failure.actual) == ("200", str(status))
    assert failure.response_excerpt == '{"error": "database unavailable", "retry": false}'
    assert result.steps[0].requests[0].status_code == status


async def test_reported_url_keeps_query_written_in_path(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def search(flow: synth.Flow) -> None:
        async with flow.step("search"):
            (await flow.get("/search?q=shoes&page=2")).expect_status(200)

    server = http_server({"/search": json_route(500, {"error": "index offline"})})
    result = await run_check(settings_for(server.base_url), search)

    failure = failed(result, FailureType.HTTP_STATUS, "search")
    assert [r.target for r in server.requests] == ["/search?q=shoes&page=2"]
    assert failure.url == server.url("/search?q=shoes&page=2")
    assert result.steps[0].requests[0].url == failure.url


@pytest.mark.parametrize("status", [401, 403])
async def test_auth_status(
    status: int, http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = http_server({"/": json_route(status, {"error": "not allowed"})})
    result = await run_check(settings_for(server.base_url), get_home)

    failure = failed(result, FailureType.AUTH, "open home")
    assert failure.message == f"expected status 200, got {status}"
    assert failure.response_excerpt == '{"error": "not allowed"}'


# -- schema -----------------------------------------------------------------------------------


async def test_schema_body_not_json(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def products(flow: synth.Flow) -> None:
        async with flow.step("list products"):
            (await flow.get("/products")).expect_status(200).json()

    page = "<html>maintenance</html>"
    server = http_server(
        {"/products": json_route(200, page, {"Content-Type": "text/html"})},
    )
    result = await run_check(settings_for(server.base_url), products)

    failure = failed(result, FailureType.SCHEMA, "list products")
    assert failure.message.startswith("response is not valid JSON: ")
    assert failure.expected == "a JSON document"
    assert failure.actual == f"{len(page)} bytes of text/html"
    assert failure.response_excerpt == page


class Product(pydantic.BaseModel):
    id: str
    price: float
    in_stock: bool


async def test_schema_pydantic_model_mismatch(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def product(flow: synth.Flow) -> None:
        async with flow.step("get product"):
            (await flow.get("/product")).expect_schema(Product)

    server = http_server({"/product": json_route(200, {"id": "sku-1", "price": "cheap"})})
    result = await run_check(settings_for(server.base_url), product)

    failure = failed(result, FailureType.SCHEMA, "get product")
    assert failure.message == "response does not match Product (2 violation(s))"
    assert failure.expected == "Product"
    assert failure.actual is not None
    assert "$.price: Input should be a valid number" in failure.actual
    assert "(got 'cheap')" in failure.actual
    assert "$.in_stock: Field required" in failure.actual


async def test_schema_json_schema_mismatch(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    schema = {
        "title": "Order",
        "type": "object",
        "required": ["id", "total"],
        "properties": {"id": {"type": "string"}, "total": {"type": "number"}},
    }

    @synth.check(service="web", timeout="5s", retries=0)
    async def order(flow: synth.Flow) -> None:
        async with flow.step("get order"):
            (await flow.get("/order")).expect_schema(schema)

    server = http_server({"/order": json_route(200, {"id": 42, "total": "25.00"})})
    result = await run_check(settings_for(server.base_url), order)

    failure = failed(result, FailureType.SCHEMA, "get order")
    assert failure.message == "response does not match the JSON Schema (2 violation(s))"
    assert failure.expected == "Order"
    assert failure.actual == (
        "$.id: 42 is not of type 'string'; $.total: '25.00' is not of type 'number'"
    )


async def test_schema_expect_json_type(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def price(flow: synth.Flow) -> None:
        async with flow.step("read price"):
            (await flow.get("/product")).expect_json("$.price", type="number")

    server = http_server({"/product": json_route(200, {"price": "12.50"})})
    result = await run_check(settings_for(server.base_url), price)

    failure = failed(result, FailureType.SCHEMA, "read price")
    assert failure.message == "$.price is a string, expected number"
    assert (failure.expected, failure.actual) == ("number", "string '12.50'")


# -- assertion --------------------------------------------------------------------------------


async def test_assertion_expect_json_value(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def order(flow: synth.Flow) -> None:
        async with flow.step("order confirmed"):
            (await flow.get("/order")).expect_json("$.order.status", "confirmed")

    server = http_server({"/order": json_route(200, {"order": {"status": "pending"}})})
    result = await run_check(settings_for(server.base_url), order)

    failure = failed(result, FailureType.ASSERTION, "order confirmed")
    assert failure.message == "$.order.status should equal 'confirmed'"
    assert (failure.expected, failure.actual) == ("should equal 'confirmed'", "pending")
    assert failure.response_excerpt == '{"order": {"status": "pending"}}'


@pytest.mark.parametrize(
    ("sent", "message", "actual"),
    [
        ({"Cache-Control": "max-age=60"}, "header Cache-Control does not match", "max-age=60"),
        ({}, "header Cache-Control is missing", "missing"),
    ],
)
async def test_assertion_expect_header(
    sent: dict[str, str],
    message: str,
    actual: str,
    http_server: StartServer,
    settings_for: SettingsFor,
    run_check: RunCheck,
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def caching(flow: synth.Flow) -> None:
        async with flow.step("no caching"):
            (await flow.get("/")).expect_header("Cache-Control", "no-store")

    server = http_server({"/": json_route(200, {"ok": True}, sent)})
    result = await run_check(settings_for(server.base_url), caching)

    failure = failed(result, FailureType.ASSERTION, "no caching")
    assert failure.message == message
    assert failure.actual == actual


async def test_assertion_expect_body_contains(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def welcome(flow: synth.Flow) -> None:
        async with flow.step("welcome page"):
            (await flow.get("/")).expect_body_contains("Welcome back")

    server = http_server({"/": json_route(200, "Please log in")})
    result = await run_check(settings_for(server.base_url), welcome)

    failure = failed(result, FailureType.ASSERTION, "welcome page")
    assert failure.message == "body does not contain 'Welcome back'"
    assert failure.response_excerpt == "Please log in"


async def test_assertion_expect_latency(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def fast(flow: synth.Flow) -> None:
        async with flow.step("search is fast"):
            (await flow.get("/search")).expect_status(200).expect_latency("50ms")

    server = http_server({"/search": slow_route(0.2)})
    result = await run_check(settings_for(server.base_url), fast)

    failure = failed(result, FailureType.ASSERTION, "search is fast")
    took = re.fullmatch(r"took (\d+)ms, limit 50ms", failure.message)
    assert took is not None, failure.message
    assert 200 <= int(took.group(1)) < 1000
    assert (failure.expected, failure.actual) == ("<= 50ms", f"{took.group(1)}ms")
    assert result.steps[0].requests[0].timings.total_s >= 0.2


async def test_assertion_plain_assert_shows_expression_and_values(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def cart(flow: synth.Flow) -> None:
        async with flow.step("cart total"):
            total = (await flow.get("/cart")).json()["total"]
            expected_total = 30.0
            assert total == expected_total

    server = http_server({"/cart": json_route(200, {"total": 25.0})})
    result = await run_check(settings_for(server.base_url), cart)

    failure = failed(result, FailureType.ASSERTION, "cart total")
    # pytest rewrites asserts in test modules and appends its own explanation after " — ".
    assert failure.message.startswith("assertion failed: assert total == expected_total")
    assert failure.actual == "total = 25.0; expected_total = 30.0"


# -- script_error -----------------------------------------------------------------------------


async def test_script_error_exception_in_check(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def buggy(flow: synth.Flow) -> None:
        async with flow.step("read cart"):
            body = (await flow.get("/cart")).json()
            flow.vars["first"] = body["items"][0]

    server = http_server({"/cart": json_route(200, {"items": []})})
    result = await run_check(settings_for(server.base_url), buggy)

    failure = failed(result, FailureType.SCRIPT_ERROR, "read cart")
    assert failure.message == "check raised IndexError: list index out of range"
    assert failure.traceback is not None
    assert failure.traceback.startswith("Traceback (most recent call last):")
    assert 'flow.vars["first"] = body["items"][0]' in failure.traceback
    assert failure.traceback.rstrip().endswith("IndexError: list index out of range")
    assert Path(__file__).name in failure.traceback


async def test_script_error_missing_secret(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def login(flow: synth.Flow) -> None:
        async with flow.step("log in"):
            await flow.post("/login", json={"password": flow.secret("password")})

    server = http_server({"/login": json_route(200, {"ok": True})})
    result = await run_check(
        settings_for(server.base_url, secrets={"api_key": {"value": "k-123456"}}), login
    )

    failure = failed(result, FailureType.SCRIPT_ERROR, "log in")
    assert failure.message == (
        "secret 'password' is not configured for environment 'test' (configured: api_key); "
        "add environments.test.secrets.password"
    )
    assert server.requests == []


async def test_script_error_nested_steps(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def nested(flow: synth.Flow) -> None:
        async with flow.step("outer"):
            await flow.get("/")
            async with flow.step("inner"):
                await flow.get("/")

    server = http_server({"/": json_route(200, {"ok": True})})
    result = await run_check(settings_for(server.base_url), nested)

    failure = failed(result, FailureType.SCRIPT_ERROR, "outer")
    assert failure.message == (
        "check raised RuntimeError: step 'inner' is nested inside step 'outer'"
    )
    assert [s.name for s in result.steps] == ["outer"]
    assert server.hits("/") == 1


# -- retries ----------------------------------------------------------------------------------


async def test_retry_passes_on_second_attempt(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=2)
    async def flaky(flow: synth.Flow) -> None:
        async with flow.step("open home"):
            (await flow.get("/")).expect_status(200)

    def first_fails(ex: Exchange) -> None:
        ex.respond(500 if ex.server.hits("/") == 1 else 200, {"hit": ex.server.hits("/")})

    server = http_server({"/": first_fails})
    result = await run_check(settings_for(server.base_url, runner={"retry_delay": "10ms"}), flaky)

    assert result.status is Status.PASSED, result.failure
    assert result.attempts == 2
    assert result.failure is None
    assert result.failed_step is None
    assert server.hits("/") == 2


async def test_retries_exhausted(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=2)
    async def down(flow: synth.Flow) -> None:
        async with flow.step("open home"):
            (await flow.get("/")).expect_status(200)

    server = http_server({"/": json_route(503, {"error": "down"})})
    result = await run_check(settings_for(server.base_url, runner={"retry_delay": "10ms"}), down)

    failed(result, FailureType.HTTP_STATUS, "open home")
    assert result.attempts == 3
    assert server.hits("/") == 3


# -- phase timings and trace propagation ------------------------------------------------------


async def test_phase_timings_fresh_then_reused_connection(
    tls_server: StartTlsServer, ca_file: Path, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def two_pages(flow: synth.Flow) -> None:
        async with flow.step("first"):
            (await flow.get("/page")).expect_status(200)
        async with flow.step("second"):
            (await flow.get("/page")).expect_status(200)

    server = tls_server({"/page": json_route(200, {"items": list(range(200))})})
    assert server.base_url.startswith("https://localhost:")
    result = await run_check(
        settings_for(server.base_url, tls={"ca_file": str(ca_file)}), two_pages
    )

    assert result.status is Status.PASSED, result.failure
    fresh = result.steps[0].requests[0].timings
    phases = fresh.as_dict()
    assert set(phases) == {"dns", "connect", "tls", "send", "first_byte", "body"}
    # The body can share the headers' packet: it then took no time of its own.
    assert all(value > 0 for name, value in phases.items() if name != "body"), phases
    assert phases["body"] >= 0, phases
    # total is time on the network: the phases' sum, not the gaps where synth was busy.
    assert fresh.total_s == pytest.approx(sum(phases.values())), fresh

    reused = result.steps[1].requests[0].timings
    assert (reused.dns_s, reused.connect_s, reused.tls_s) == (None, None, None)
    assert set(reused.as_dict()) == {"send", "first_byte", "body"}
    first, second = server.requests
    assert first.client_port == second.client_port


async def test_traceparent_matches_run_and_request_span(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def traced(flow: synth.Flow) -> None:
        async with flow.step("one"):
            await flow.get("/")
        async with flow.step("two"):
            await flow.get("/")

    server = http_server({"/": json_route(200, {"ok": True})})
    result = await run_check(settings_for(server.base_url), traced)

    assert result.status is Status.PASSED, result.failure
    assert re.fullmatch(r"[0-9a-f]{32}", result.trace_id)
    seen = [r.headers["traceparent"] for r in server.requests]
    assert len(seen) == 2
    for header, step in zip(seen, result.steps, strict=True):
        match = TRACEPARENT.fullmatch(header)
        assert match is not None, header
        (request,) = step.requests
        assert match.group(1) == result.trace_id == request.trace_id
        assert match.group(2) == request.span_id
    assert result.steps[0].requests[0].span_id != result.steps[1].requests[0].span_id
