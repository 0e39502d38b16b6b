"""Paying a process's one-off costs before its first measured run.

A new process's first request pays for things that say nothing about the target: loading
the CA bundle into an SSL context (~30 ms), the resolver's first call (NSS modules, the
executor thread), and the HTTP client's code paths on first use. Measured inside a step,
they made every pre-prod run (one run per check per CI process) look 30-50 ms slower than
the agent's warm runs, so the baseline held synth's start-up instead of the target's
latency. `warm_up` pays them once, before the first run, for `synth run`, the pytest
plugin, the agent and its run processes alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Iterable

from synth.config import Settings, TlsSettings
from synth.probes.errors import ProbeError
from synth.probes.http import SslContexts, exchange, new_client

log = logging.getLogger("synth.warmup")

WARMUP_TIMEOUT_S = 2.0
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
    b"Connection: close\r\n\r\n"
    b'{"ok":true}'
)


def tls_settings(settings: Settings) -> list[TlsSettings]:
    """Every distinct TLS setting a run of these settings can use."""
    found: list[TlsSettings] = [TlsSettings()]
    for env in settings.environments.values():
        for tls in (env.tls, *(s.tls for s in env.services.values() if s.tls is not None)):
            if tls not in found:
                found.append(tls)
    return found


def prepare_tls(contexts: SslContexts, settings: Iterable[TlsSettings]) -> None:
    """Build the SSL context of each setting now; one that cannot be built (a missing CA
    file) is left for the run that needs it to report."""
    for tls in settings:
        try:
            contexts.get(tls)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.debug("SSL context not prepared: %s", exc)


async def warm_http(contexts: SslContexts, *, user_agent: str) -> None:
    """One resolver call and one HTTP exchange with a loopback server of our own, so the
    first real request runs through warm code paths. Never raises."""
    try:
        async with asyncio.timeout(WARMUP_TIMEOUT_S):
            await _warm_http(contexts, user_agent)
    except (OSError, TimeoutError, ProbeError) as exc:
        log.debug("HTTP warm-up incomplete: %s", exc)


async def _warm_http(contexts: SslContexts, user_agent: str) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        await loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        client = new_client(contexts.get(TlsSettings()), user_agent=user_agent)
        try:
            await exchange(
                client,
                "GET",
                f"http://127.0.0.1:{port}/",
                headers={"traceparent": "00-" + "0" * 31 + "1-" + "0" * 15 + "1-00"},
                timeout_s=WARMUP_TIMEOUT_S,
                max_body_bytes=1024,
            )
        finally:
            await client.aclose()
    finally:
        server.close()
        await server.wait_closed()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_RESPONSE)
        await writer.drain()
    writer.close()
