"""A real Prometheus Pushgateway (Debian package `prometheus-pushgateway`) for tests: its
own process on a free 127.0.0.1 port, in-memory only, stopped by its PID."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

BINARY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"
READY_TIMEOUT_S = 10.0


@dataclass
class Pushgateway:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample `name` the gateway exposes now."""
        response = httpx2.get(self.url + "/metrics", timeout=5.0, trust_env=False)
        assert response.status_code == 200, response.text
        return [
            (dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_pushgateway(directory: Path, attempts: int = 3) -> Pushgateway:
    """Start a pushgateway and wait until /-/ready answers 200."""
    for attempt in range(attempts):  # the free port can be taken before the gateway binds
        port = _free_port()
        log = directory / f"pushgateway-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    BINARY,
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--persistence.file=",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        gateway = Pushgateway(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx2.TransportError):
                ready = httpx2.get(gateway.url + "/-/ready", timeout=1.0, trust_env=False)
                if ready.status_code == 200:
                    return gateway
            time.sleep(0.05)
        gateway.stop()
    raise AssertionError(f"pushgateway did not start: {log.read_text(errors='replace')}")


@pytest.fixture(name="pushgateway")
def pushgateway_fixture(tmp_path: Path) -> Iterator[Pushgateway]:
    gateway = start_pushgateway(tmp_path)
    yield gateway
    gateway.stop()
