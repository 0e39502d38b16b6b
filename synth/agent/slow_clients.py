"""uvicorn's HTTP protocol with the two bounds it lacks against slow or greedy clients:

- **header time**: a connection must send a complete request head within
  `server.header_timeout` of connecting (or of its previous response); a client that
  dribbles a byte at a time is closed. uvicorn's keep-alive timer does not do this: any
  byte received cancels it.
- **connections per client**: past `server.max_connections_per_client` open connections
  from one address, new ones are closed as they are accepted.

Without them ~1,000 dribbling connections filled uvicorn's `limit_concurrency`, which
counts connections, and every request — `/healthz` included — got 503.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("synth.api")


def guarded_protocol(header_timeout_s: float, max_per_client: int) -> type[H11Protocol]:
    """An H11Protocol class bounded as the module docstring says (0: no per-client bound)."""
    open_by_client: Counter[str] = Counter()
    refused_logged: set[str] = set()

    class GuardedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None
        _counted: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else ""
            open_by_client[host] += 1
            self._counted = host
            if max_per_client and open_by_client[host] > max_per_client:
                if host not in refused_logged:  # once per client while it stays over
                    refused_logged.add(host)
                    log.warning(
                        "refusing connections from %s: over %d open "
                        "(server.max_connections_per_client)",
                        host,
                        max_per_client,
                    )
                transport.close()
                return
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            host = self._counted
            if host is not None:
                self._counted = None
                open_by_client[host] -= 1
                if open_by_client[host] <= 0:
                    del open_by_client[host]
                    refused_logged.discard(host)
            super().connection_lost(exc)

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a complete request head arrived
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request's head gets the same time

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is None or self.cycle.response_complete:
                self.transport.close()

    return GuardedH11Protocol
