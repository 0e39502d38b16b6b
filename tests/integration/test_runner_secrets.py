"""Secrets never reach a RunResult, even when the target echoes every byte it was sent."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

import synth
from synth.model import FailureType, RunResult, Status

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, StartServer

SECRET = "s3cr3t-value-123"
VISIBLE = "visible-marker"  # not secret: proves the echo reached the report
SECRETS_CONFIG = {"api_key": {"value": SECRET}}
WIDE_EXCERPT = {"excerpt_chars": 10_000}  # the whole echo lands in the excerpt


def echo(ex: Exchange) -> None:
    """Answer 500 with everything the request carried: method, target, headers, body."""
    request = ex.request
    ex.respond(
        500,
        {
            "method": request.method,
            "target": request.target,
            "headers": request.headers,
            "body": request.body.decode(errors="replace"),
        },
    )


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a RunResult: dataclass fields, mappings, sequences, recursively."""
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from strings_in(getattr(value, field.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from strings_in(item)
    elif value is None or isinstance(value, bool | int | float | datetime):
        return
    else:
        yield repr(value)


def assert_absent(result: RunResult, *values: str) -> None:
    """None of `values` occurs in the result's repr or in any string it holds."""
    texts = [repr(result), *strings_in(result)]
    for value in values:
        leaks = [text for text in texts if value in text]
        assert not leaks, f"{value!r} leaked into: {leaks[:3]}"


async def test_configured_secret_is_redacted_everywhere(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def call_api(flow: synth.Flow) -> None:
        key = flow.secret("api_key")
        async with flow.step("call api"):
            response = await flow.post(
                "/echo",
                params={"api_key": key, "q": VISIBLE},
                headers={"Authorization": f"Bearer {key}"},
                json={"key": key, "note": f"{VISIBLE} with {key}"},
            )
            response.expect_status(200)

    server = http_server({"/echo": echo})
    settings = settings_for(server.base_url, secrets=SECRETS_CONFIG, runner=WIDE_EXCERPT)
    result = await run_check(settings, call_api)

    # The target really received the secret in all three places.
    (seen,) = server.requests
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert f"api_key={SECRET}" in seen.query
    assert SECRET in seen.body.decode()

    assert result.failure_type is FailureType.HTTP_STATUS
    assert result.failure is not None
    excerpt = result.failure.response_excerpt
    assert excerpt is not None
    assert VISIBLE in excerpt
    assert '"authorization": "***"' in excerpt
    assert result.failure.url == server.url(f"/echo?api_key=***&q={VISIBLE}")
    assert result.steps[0].requests[0].url == result.failure.url
    assert_absent(result, SECRET)


async def test_secret_straddling_the_excerpt_cut_is_not_partly_shown(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    """The excerpt is cut at runner.excerpt_chars; a secret crossing that point must not
    leave its first characters behind."""
    cut = 300

    def reflect(ex: Exchange) -> None:
        ex.respond(500, "x" * (cut - 6) + ex.request.body.decode())

    @synth.check(service="web", timeout="5s", retries=0)
    async def send_key(flow: synth.Flow) -> None:
        async with flow.step("send key"):
            (await flow.post("/reflect", content=flow.secret("api_key"))).expect_status(200)

    server = http_server({"/reflect": reflect})
    settings = settings_for(server.base_url, secrets=SECRETS_CONFIG, runner={"excerpt_chars": cut})
    result = await run_check(settings, send_key)

    assert result.failure is not None
    assert result.failure.response_excerpt is not None
    assert result.failure.response_excerpt.startswith("x" * (cut - 6))
    assert_absent(result, SECRET[:6])


async def test_runtime_token_marked_secret_is_redacted(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def session(flow: synth.Flow) -> None:
        async with flow.step("log in"):
            login = (await flow.post("/login")).expect_status(200)
            sid = flow.mark_secret(login.json()["sid"])
        async with flow.step("use session"):
            response = await flow.get("/echo", params={"s": sid}, headers={"X-Session-Id": sid})
            response.expect_status(200)

    issued: list[str] = []

    def issue_session(ex: Exchange) -> None:
        issued.append("sess-" + secrets.token_hex(12))  # unknown to the check until login
        ex.respond(200, {"sid": issued[-1], "note": VISIBLE})

    server = http_server({"/login": issue_session, "/echo": echo})
    settings = settings_for(server.base_url, secrets=SECRETS_CONFIG, runner=WIDE_EXCERPT)
    result = await run_check(settings, session)

    (token,) = issued
    assert server.requests[1].headers["x-session-id"] == token
    assert result.failure_type is FailureType.HTTP_STATUS
    assert result.failed_step == "use session"
    assert result.failure is not None
    assert result.failure.response_excerpt is not None
    assert '"x-session-id": "***"' in result.failure.response_excerpt
    assert result.failure.url == server.url("/echo?s=***")
    assert_absent(result, token, SECRET)


@pytest.mark.parametrize(
    ("written", "password"),
    [("hunter2-url-pass", "hunter2-url-pass"), ("hunter2%40url-pass", "hunter2@url-pass")],
    ids=["plain", "percent-encoded"],
)
async def test_url_userinfo_password_is_redacted(
    written: str,
    password: str,
    http_server: StartServer,
    settings_for: SettingsFor,
    run_check: RunCheck,
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def basic(flow: synth.Flow) -> None:
        async with flow.step("basic auth"):
            (await flow.get(f"http://admin:{written}@127.0.0.1:{port}/echo")).expect_status(200)

    server = http_server({"/echo": echo})
    port = server.port
    result = await run_check(settings_for(server.base_url, runner=WIDE_EXCERPT), basic)

    assert result.failure_type is FailureType.HTTP_STATUS
    assert result.failure is not None
    assert result.failure.url == f"http://admin:***@127.0.0.1:{port}/echo"
    assert result.steps[0].requests[0].url == result.failure.url
    # httpx sends URL userinfo (percent-decoded) as a Basic Authorization header; the echo
    # reflects it, so the password must not survive in its base64 form either.
    (seen,) = server.requests
    basic_credential = base64.b64encode(f"admin:{password}".encode()).decode()
    assert seen.headers.get("authorization") == f"Basic {basic_credential}"
    assert_absent(result, written, password, basic_credential)


@pytest.mark.parametrize(
    ("body", "failure_type"),
    [
        ("raise ValueError", FailureType.SCRIPT_ERROR),
        ("assert", FailureType.ASSERTION),
        ("flow.fail", FailureType.ASSERTION),
    ],
)
async def test_secret_in_check_code_failures_is_redacted(
    body: str,
    failure_type: FailureType,
    settings_for: SettingsFor,
    run_check: RunCheck,
) -> None:
    @synth.check(service="web", timeout="5s", retries=0)
    async def careless(flow: synth.Flow) -> None:
        async with flow.step("careless"):
            key = flow.secret("api_key")
            if body == "raise ValueError":
                raise ValueError(f"key {key} rejected")
            if body == "assert":
                assert key == "expected-key", f"got {key}"
            raise flow.fail(f"key {key} rejected", expected=key, actual=key)

    # The check fails before any request, so nothing needs to listen at the base URL.
    settings = settings_for("http://127.0.0.1:9", secrets=SECRETS_CONFIG)
    result = await run_check(settings, careless)

    assert result.status is Status.FAILED
    assert result.failure_type is failure_type
    assert result.failure is not None
    assert "***" in result.failure.message
    assert_absent(result, SECRET)
