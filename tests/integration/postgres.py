"""A private PostgreSQL server for tests, started from the Debian package's binaries.

Each server lives in its own temp dir, listens on 127.0.0.1 at a free port with its unix
socket in that dir, and runs as the `postgres` system user when the tests run as root
(PostgreSQL refuses to run as root). It is stopped by its own PID; nothing else is touched.

Use the session fixture `postgres_server` (import it into the test module), or
`PostgresServer.create()` / `.start()` / `.stop()` / `.destroy()` for a server of your own.
"""

from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
ADMIN_USER = "synth"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
_INSTALL_HINT = (
    "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin. "
    "Install the Debian package 'postgresql' (`make test` installs it: "
    "apt-get install -y postgresql)."
)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory; fails the test when there is none."""
    candidates = [
        path
        for path in Path("/").glob(BIN_GLOB.lstrip("/"))
        if (path / "initdb").is_file() and (path / "postgres").is_file()
    ]
    if not candidates:
        pytest.fail(_INSTALL_HINT, pytrace=False)
    return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


class PostgresServer:
    """One private PostgreSQL cluster: `initdb` once, then start and stop at will."""

    def __init__(self, bindir: Path, root: Path, run_as: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log_path = root / "postgres.log"
        self.run_as = run_as
        self.password = secrets.token_urlsafe(16)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)

    @classmethod
    def create(cls) -> PostgresServer:
        """A new, initialised and not yet started cluster in a fresh temp dir."""
        bindir = find_bindir()
        run_as = None
        if os.geteuid() == 0:
            try:
                run_as = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail(
                    "running as root, but there is no 'postgres' system user to run the "
                    "test PostgreSQL server as (the Debian package 'postgresql' creates it)",
                    pytrace=False,
                )
        # Not under pytest's tmp_path: that is mode 0700 and owned by root.
        root = Path(tempfile.mkdtemp(prefix="synth-pg-"))
        server = cls(bindir, root, run_as)
        try:
            server._initdb()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def _own(self, path: Path) -> None:
        if self.run_as is not None:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
            user=self.run_as.pw_uid if self.run_as else None,
            group=self.run_as.pw_gid if self.run_as else None,
            extra_groups=[] if self.run_as else None,
            env={**os.environ, "PGPASSWORD": self.password},
        )

    def _initdb(self) -> None:
        self._own(self.root)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._own(pwfile)
        done = self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            ADMIN_USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        pwfile.unlink()
        if done.returncode != 0:
            pytest.fail(f"initdb failed:\n{done.stdout}\n{done.stderr}", pytrace=False)

    def start(self) -> None:
        """Start the server (on a new free port the first time, the same port after) and
        wait until it accepts connections."""
        assert self.process is None, "already running"
        for attempt in range(3):
            port = self.port or free_port()
            if self._start_on(port):
                self.port = port
                return
            if self.port:
                break  # a restart must keep its port: tests hold URLs with it
            time.sleep(0.2 * (attempt + 1))
        pytest.fail(f"PostgreSQL did not start:\n{self.log_tail()}", pytrace=False)

    def _start_on(self, port: int) -> bool:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"unix_socket_directories={self.root}",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                user=self.run_as.pw_uid if self.run_as else None,
                group=self.run_as.pw_gid if self.run_as else None,
                extra_groups=[] if self.run_as else None,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            ready = self._run("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "1")
            if ready.returncode == 0:
                return True
            time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> None:
        """Stop this server (fast shutdown: SIGINT to its PID), escalating if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, 10.0)):
            process.send_signal(sig)
            try:
                process.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue
        process.kill()
        process.wait(timeout=10.0)

    def destroy(self) -> None:
        """Stop the server and delete its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"postgresql+asyncpg://{ADMIN_USER}:{secret}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"test_{next(self._names)}"
        done = self._run(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ADMIN_USER, name
        )
        if done.returncode != 0:
            pytest.fail(f"createdb {name} failed: {done.stderr}", pytrace=False)
        return self.url(name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL server shared by the session; each test makes its own database
    with `create_database()`. Fails (never skips) when PostgreSQL is not installed."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
