"""uvicorn serving the agent's API on a socket the agent bound, without taking over the
process's signals (the agent handles SIGTERM/SIGINT/SIGHUP itself)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from synth.agent.api import build_api
from synth.agent.slow_clients import guarded_protocol

if TYPE_CHECKING:
    from synth.agent.app import Agent


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """The API on an already-bound listening socket."""

    def __init__(self, agent: Agent, listen: socket.socket) -> None:
        self._socket = listen
        server = agent.settings.server
        config = uvicorn.Config(
            build_api(agent),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
            limit_concurrency=1000,
            h11_max_incomplete_event_size=64 * 1024,
            http=guarded_protocol(server.header_timeout, server.max_connections_per_client),
        )
        self._server = _QuietServer(config)

    async def serve(self) -> None:
        await self._server.serve(sockets=[self._socket])

    async def shutdown(self) -> None:
        self._server.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """Bind the API socket now, so a port of 0 resolves before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock
