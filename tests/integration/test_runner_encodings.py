"""Bodies in every encoding synth advertises are decoded; a binary body is described
(type, size, a hex excerpt), never dumped; a stalled TLS handshake is named as such."""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import brotli
import pytest
from backports import zstd

import synth
from synth.model import FailureType, Status

if TYPE_CHECKING:
    from tests.conftest import RunCheck, SettingsFor
    from tests.integration.conftest import Exchange, Route, StartServer

DOCUMENT = {"items": [{"sku": "A-1", "price": 12.5}], "count": 1}
ENCODERS = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": zstd.compress,
}


def encoded(name: str) -> Route:
    def route(ex: Exchange) -> None:
        body = ENCODERS[name](json.dumps(DOCUMENT).encode())
        ex.respond(
            200, body, headers={"Content-Type": "application/json", "Content-Encoding": name}
        )

    return route


@synth.check(service="web", timeout="5s")
async def read_catalog(flow: synth.Flow) -> None:
    async with flow.step("catalog"):
        r = (await flow.get("/catalog")).expect_status(200)
        r.expect_json("$.items[0].price", 12.5)


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
async def test_every_advertised_encoding_is_decoded(
    encoding: str, http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    server = http_server({"/catalog": encoded(encoding)})
    result = await run_check(settings_for(server.base_url), read_catalog)

    assert result.status is Status.PASSED, result.failure
    advertised = [e.strip() for e in server.requests[0].headers["accept-encoding"].split(",")]
    assert encoding in advertised


async def test_binary_body_is_described_not_dumped(
    http_server: StartServer, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    payload = b"\x00\x01\x02\xff" * 300

    def binary(ex: Exchange) -> None:
        ex.respond(200, payload, headers={"Content-Type": "application/octet-stream"})

    server = http_server({"/catalog": binary})
    result = await run_check(settings_for(server.base_url), read_catalog)

    failure = result.failure
    assert failure is not None
    assert failure.type is FailureType.SCHEMA
    assert "utf-8" not in failure.message
    assert failure.message == "response is not valid JSON: the body is binary"
    assert failure.actual == "1200 bytes of application/octet-stream"
    excerpt = failure.response_excerpt
    assert excerpt == (
        "<binary body: 1200 bytes of application/octet-stream, "
        "starts 000102ff000102ff000102ff000102ff…>"
    )
    assert "\x00" not in repr(result.failure)


@pytest.fixture
def tls_port_that_never_handshakes() -> Iterator[int]:
    """A TCP listener that accepts and then says nothing (a stalled TLS terminator)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    for connection in accepted:
        connection.close()
    listener.close()


async def test_stalled_tls_handshake_is_named(
    tls_port_that_never_handshakes: int, settings_for: SettingsFor, run_check: RunCheck
) -> None:
    @synth.check(service="web", timeout="5s")
    async def secure(flow: synth.Flow) -> None:
        async with flow.step("open"):
            (await flow.get("/", timeout="0.5s")).expect_status(200)

    base_url = f"https://127.0.0.1:{tls_port_that_never_handshakes}"
    result = await run_check(settings_for(base_url), secure)

    failure = result.failure
    assert failure is not None
    assert failure.type is FailureType.TIMEOUT
    assert failure.message == "TLS handshake did not complete within 0.5s"
