"""SQLite is a single-agent store: the first agent on a SQLite file holds an exclusive
lock beside it for its life, and a second agent on the same file refuses to start rather
than run every check a second time. Agents that share checks use PostgreSQL.

The lock is `flock(2)` on `<database>.agent-lock` (the file keeps the holder's PID for the
message): the kernel releases it when the holder exits, however it exits, so a killed
agent leaves no stale lock. It holds between processes on one machine, or on one volume
of a filesystem that supports flock (local disks, a Kubernetes PersistentVolume mounted
by one node); NFS may not honour it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from synth.store.engine import parse_url
from synth.store.records import StoreError


class StoreInUse(StoreError):
    """Another agent holds the SQLite store."""


class AgentLock:
    """An agent's hold on its SQLite store; released by `release()` or at exit."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def claim_store(raw_url: str) -> AgentLock | None:
    """Hold the SQLite store of `raw_url` for this agent; None for a store several agents
    may share (PostgreSQL) or that no one else can open (in memory). StoreInUse when
    another agent holds it."""
    try:
        url = parse_url(raw_url)
    except StoreError:
        return None  # the store reports its own URL problem when it opens
    database = url.database or ""
    if url.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    path = Path(database).resolve()
    lock_path = path.with_name(path.name + ".agent-lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"cannot open the store's lock file {lock_path}: {error}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise StoreInUse(
            f"the SQLite store {path} is in use by another synth agent{holder}. SQLite is "
            "a single-agent store: a second agent would run every check a second time. "
            "Stop the other agent, give this one its own store.url, or share the checks "
            "between agents through PostgreSQL (store.url: postgresql://...)."
        ) from None
    except OSError as error:
        os.close(fd)
        raise StoreError(f"cannot lock the store's lock file {lock_path}: {error}") from None
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return AgentLock(lock_path, fd)


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (pid {pid})"
    return ""
