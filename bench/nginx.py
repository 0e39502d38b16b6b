"""A private nginx for the benchmarks: its own config, prefix and logs in a temp dir,
listening on 127.0.0.1 only, stopped by the PID of the process this module started.

`GET /ok` answers `{"ok":true}`. The access log is tab-separated and carries nginx's own
`$request_time` and the request's `traceparent` header, so a client's reported timing can
be joined with the server's for the same request.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_CONFIG = """\
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server_tokens off;
    keepalive_requests 100000;
    log_format bench escape=none
        '$msec\\t$request_time\\t$status\\t$connection\\t$connection_requests\\t'
        '$request_id\\t$http_traceparent\\t$request';
    access_log {prefix}/access.log bench;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /ok {{
            default_type application/json;
            return 200 '{{"ok":true}}';
        }}
        location / {{ return 404; }}
    }}
}}
"""


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One access-log line: nginx's own view of a request."""

    msec: float
    request_time_s: float
    status: int
    connection: int
    connection_requests: int
    request_id: str
    traceparent: str
    request: str

    @property
    def span_id(self) -> str:
        """The parent span id the client sent in `traceparent` ("" if none)."""
        parts = self.traceparent.split("-")
        return parts[2] if len(parts) == 4 else ""


@dataclass(slots=True)
class Nginx:
    """A running private nginx."""

    process: subprocess.Popen[bytes]
    port: int
    prefix: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def log_offset(self) -> int:
        """Where the access log ends now; pass it to `read_log` to read only what follows."""
        return self.access_log.stat().st_size

    def read_log(self, offset: int = 0) -> list[AccessEntry]:
        """Access-log entries written after `offset` (complete lines only)."""
        with self.access_log.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        entries = []
        for raw in data.split(b"\n"):
            fields = raw.decode("utf-8", "replace").split("\t")
            if len(fields) != 8:
                continue
            entries.append(
                AccessEntry(
                    msec=float(fields[0]),
                    request_time_s=float(fields[1]),
                    status=int(fields[2]),
                    connection=int(fields[3]),
                    connection_requests=int(fields[4]),
                    request_id=fields[5],
                    traceparent=fields[6],
                    request=fields[7],
                )
            )
        return entries


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.02)
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the nginx master we started (SIGTERM = fast shutdown, which ends its workers);
    if it does not go, kill its process group, which `start_new_session` made ours alone."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def running_nginx(*, workers: int = 1, attempts: int = 3) -> Iterator[Nginx]:
    """Start a private nginx on a free 127.0.0.1 port; always stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="synth-bench-nginx-") as tmp:
        prefix = Path(tmp)
        (prefix / "tmp").mkdir()
        errors = ""
        for _ in range(attempts):  # the free port can be taken between probe and bind
            port = _free_port()
            conf = prefix / "nginx.conf"
            conf.write_text(_CONFIG.format(workers=workers, prefix=prefix, port=port))
            process = subprocess.Popen(
                [
                    NGINX,
                    "-c",
                    str(conf),
                    "-p",
                    str(prefix),
                    "-e",
                    str(prefix / "error.log"),
                    "-g",
                    "daemon off;",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            stderr = b""
            try:
                if _wait_ready(process, port, timeout_s=10):
                    yield Nginx(process=process, port=port, prefix=prefix)
                    return
            finally:
                _stop(process)
                if process.stderr is not None:
                    stderr = process.stderr.read()
                    process.stderr.close()
            error_log = prefix / "error.log"
            logged = error_log.read_text() if error_log.exists() else ""
            errors = stderr.decode("utf-8", "replace") + logged
        raise RuntimeError(f"nginx did not start after {attempts} attempts:\n{errors}")
