"""Slow and greedy clients against a real agent: 1,000 connections from one address that
dribble a request head a byte at a time (slowloris). Before, they filled uvicorn's
`limit_concurrency` (which counts connections) and every request, `/healthz` included,
got 503. Now connections past `server.max_connections_per_client` are closed as they are
accepted, and a head not complete within `server.header_timeout` is closed however
steadily its bytes trickle in; probes and Prometheus (another address) keep answering."""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_harness import (
    AgentProcess,
    StartAgent,
    copy_example_checks,
    write_config,
)

from synth.demo import ShopThread

ATTACKER = "127.0.0.2"  # loopback too, but another client address than the probes'
CONNECTIONS = 1000
PER_CLIENT = 50
HEADER_TIMEOUT_S = 1.0
CLOSE_BOUND_S = 15.0
PARTIAL_HEAD = b"GET /healthz HTTP/1.1\r\nHost: synth\r\nX-Slow: "


@pytest.fixture
def agent(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> AgentProcess:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS * 2 + 256  # this process's sockets, and the agent's (inherited)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path,
        shop.base_url,
        scheduler={"enabled": False},
        server={
            "header_timeout": f"{HEADER_TIMEOUT_S:g}s",
            "max_connections_per_client": PER_CLIENT,
        },
    )
    return start_agent(config)


@contextlib.contextmanager
def dribblers(port: int) -> Iterator[list[socket.socket]]:
    """CONNECTIONS sockets from ATTACKER, each with a partial request head sent."""
    opened: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            opened.append(sock)
            sock.settimeout(5)
            sock.bind((ATTACKER, 0))
            sock.connect(("127.0.0.1", port))
            with contextlib.suppress(OSError):  # already closed by the agent: fine
                sock.sendall(PARTIAL_HEAD)
            sock.setblocking(False)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset
        return True


def test_dribbling_connections_neither_starve_probes_nor_stay_open(agent: AgentProcess) -> None:
    port = int(agent.url.rsplit(":", 1)[1])
    with dribblers(port) as sockets:
        # while all 1,000 are (or were) open: the probes and a scrape answer
        for path in ("/healthz", "/readyz", "/metrics"):
            response = agent.http.get(path)
            assert response.status_code == 200, (path, response.status_code, response.text[:200])
        # every one is closed: past the per-client bound at once, the rest after the
        # header timeout, although they keep sending a byte every 100 ms
        selector = selectors.DefaultSelector()
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        open_ = set(sockets)
        started = time.monotonic()
        deadline = started + CLOSE_BOUND_S
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if closed_by_peer(sock):
                    selector.unregister(sock)
                    open_.discard(sock)
            for sock in open_:
                with contextlib.suppress(OSError):
                    sock.send(b"x")
        elapsed = time.monotonic() - started
        selector.close()
        assert not open_, f"{len(open_)} of {CONNECTIONS} dribbling connections still open"
        assert elapsed >= HEADER_TIMEOUT_S * 0.5, elapsed  # the ones within the bound waited
    assert agent.http.get("/healthz").status_code == 200
    assert any("refusing connections from 127.0.0.2" in m for m in agent.log_messages())


def test_a_client_within_the_header_timeout_is_served(agent: AgentProcess) -> None:
    port = int(agent.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for byte in b"GET /healthz HTTP/1.1\r\nHost: synth\r\n\r\n":
            sock.send(bytes([byte]))  # slow, but done well inside the timeout
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 200"), reply[:100]
