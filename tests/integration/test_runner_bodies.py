"""Huge, endless and trickling response bodies end a run in bounded time and memory."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import psutil
import pytest

import synth
from synth.model import FailureType, Status

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, Route, StartServer

MiB = 1024**2
GiB = 1024**3
CAP = 1 * MiB
STREAM_LIMIT_S = 10.0  # the server gives up streaming after this, whatever the client does


def endless_body(*, chunked: bool, prefix: bytes, done: threading.Event) -> Route:
    """Stream zeros (after `prefix`) until the client hangs up, announced as 16 GiB or
    as an unbounded chunked body."""

    def route(ex: Exchange) -> None:
        headers = {"Content-Type": "application/json"}
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
        else:
            headers["Content-Length"] = str(16 * GiB)
        ex.send_head(200, headers)
        block = b"0" * (64 * 1024)
        first = True
        deadline = time.monotonic() + STREAM_LIMIT_S
        while time.monotonic() < deadline and not ex.server.stopping.is_set():
            data = prefix + block if first else block
            first = False
            if chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if not ex.write(data):
                break
        done.set()

    return route


@pytest.mark.parametrize("chunked", [False, True], ids=["16GiB-content-length", "chunked"])
async def test_endless_body_is_capped_in_bounded_memory(
    chunked: bool, http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    seen: dict[str, Any] = {}
    process = psutil.Process()

    @synth.check(service="web", timeout="10s", retries=0)
    async def download(flow: synth.Flow) -> None:
        async with flow.step("download export"):
            response = (await flow.get("/export")).expect_status(200)
            # Measured while the response (and its body) is still alive.
            seen["rss"] = process.memory_info().rss
            seen["content_length"] = len(response.content)
            seen["truncated"] = response.truncated

    streamed = threading.Event()
    server = http_server({"/export": endless_body(chunked=chunked, prefix=b"", done=streamed)})
    settings = settings_for(server.base_url, runner={"max_body_bytes": "1MiB"})

    rss_before = process.memory_info().rss
    started = time.perf_counter()
    result = await run_check(settings, download)
    elapsed = time.perf_counter() - started

    assert result.status is Status.PASSED, result.failure
    assert elapsed < 2.0
    assert seen["content_length"] == CAP
    assert seen["truncated"] is True
    assert seen["rss"] - rss_before < 64 * MiB
    (request,) = result.steps[0].requests
    assert request.body_truncated is True
    assert request.bytes_received == CAP
    assert request.status_code == 200
    # The client hung up: the server's stream ended long before its own time limit.
    assert streamed.wait(2.0)


async def test_trickling_body_times_out_on_the_request_deadline(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    def trickle(ex: Exchange) -> None:
        ex.send_head(200, {"Content-Type": "application/json", "Content-Length": "100"})
        for _ in range(100):
            if not ex.write(b" ") or not ex.pause(1.0):
                return

    @synth.check(service="web", timeout="10s", retries=0)
    async def slow_feed(flow: synth.Flow) -> None:
        async with flow.step("read feed"):
            (await flow.get("/feed")).expect_status(200)

    server = http_server({"/feed": trickle})
    settings = settings_for(server.base_url, runner={"request_timeout": "2s"})

    started = time.perf_counter()
    result = await run_check(settings, slow_feed)
    elapsed = time.perf_counter() - started

    assert 2.0 <= elapsed < 2.5
    assert result.failure_type is FailureType.TIMEOUT
    assert result.failed_step == "read feed"
    assert result.failure is not None
    assert result.failure.message == (
        "no complete response within 2s (headers arrived, the body did not finish)"
    )
    assert result.failure.url == server.url("/feed")


async def test_capped_body_fails_json_as_schema(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="10s", retries=0)
    async def catalogue(flow: synth.Flow) -> None:
        async with flow.step("read catalogue"):
            (await flow.get("/catalogue")).expect_status(200).json()

    streamed = threading.Event()
    route = endless_body(chunked=False, prefix=b'{"items": [', done=streamed)
    server = http_server({"/catalogue": route})
    result = await run_check(
        settings_for(server.base_url, runner={"max_body_bytes": "1MiB"}), catalogue
    )

    assert result.failure_type is FailureType.SCHEMA
    assert result.failed_step == "read catalogue"
    assert result.failure is not None
    assert result.failure.message == (
        f"response body exceeds the {CAP} byte cap; cannot parse JSON"
    )
    excerpt = result.failure.response_excerpt
    assert excerpt is not None
    assert excerpt.startswith('{"items": [000')
    assert excerpt.endswith("…")
    assert len(excerpt) == 301  # runner.excerpt_chars (300) and the ellipsis
    assert streamed.wait(2.0)
