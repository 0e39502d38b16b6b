"""The private parts of httpcore2, httpx2 and anyio synth relies on, all in this module.

tests/unit/test_internals.py checks each one, so an upgrade that removes or changes one
fails there, loudly and by name, rather than as odd timings or failures at run time.
"""

from __future__ import annotations

# anyio imports its asyncio backend lazily, on the first connection: imported here, that
# one-off cost stays out of the first run's measured timings.
import anyio._backends._asyncio
import anyio.streams.stapled  # noqa: F401
import httpcore2
import httpx2
from httpcore2._backends.anyio import AnyIOBackend
from httpcore2._utils import is_socket_readable

__all__ = ["AnyIOBackend", "is_socket_readable", "use_pool"]


def use_pool(transport: httpx2.AsyncHTTPTransport, pool: httpcore2.AsyncConnectionPool) -> None:
    """Give `transport` our own connection pool (timed DNS, our network backend): httpx2
    has no public way to pass one."""
    transport._pool = pool
