"""The private parts of httpcore2, httpx2 and anyio that synth relies on are still there and
behave as synth expects; and only synth/probes/internals.py reaches for them. An upgrade
that breaks one fails here, by name."""

from __future__ import annotations

import ast
import socket
import sys
from pathlib import Path

import httpcore2
import httpx2

import synth
from synth.probes import internals

ROOT = Path(synth.__file__).resolve().parent
PRIVATE_ROOTS = ("httpcore2", "httpx2", "anyio")


def test_anyio_backend_is_imported_before_the_first_connection() -> None:
    assert "anyio._backends._asyncio" in sys.modules


def test_httpcore2_anyio_backend_has_the_methods_synth_delegates_to() -> None:
    backend = internals.AnyIOBackend()
    for method in ("connect_tcp", "connect_unix_socket", "sleep"):
        assert callable(getattr(backend, method)), f"httpcore2 AnyIOBackend.{method} is gone"


def test_is_socket_readable_tells_an_idle_socket_from_a_closed_peer() -> None:
    left, right = socket.socketpair()
    try:
        assert internals.is_socket_readable(left) is False
        right.close()
        assert internals.is_socket_readable(left) is True  # EOF is readable
    finally:
        left.close()


def test_the_transport_takes_our_pool() -> None:
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    assert isinstance(transport._pool, httpcore2.AsyncConnectionPool), "httpx2 moved _pool"
    pool = httpcore2.AsyncConnectionPool()
    internals.use_pool(transport, pool)
    assert transport._pool is pool


def test_only_the_internals_module_imports_private_modules() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        if path == Path(internals.__file__).resolve():
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                parts = name.split(".")
                if parts[0] in PRIVATE_ROOTS and any(p.startswith("_") for p in parts[1:]):
                    offenders.append(f"{path.relative_to(ROOT.parent)}: {name}")
            if isinstance(node, ast.Attribute) and node.attr == "_pool":
                offenders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: ._pool")
    assert offenders == []
