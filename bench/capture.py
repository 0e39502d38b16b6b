"""tcpdump on loopback for the benchmarks: one capture of one TCP port to a pcap file,
with nanosecond timestamps, stopped by the PID of the process this module started.

Needs root (or CAP_NET_RAW) and the Debian package `tcpdump` (`make bench` installs it).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

TCPDUMP = shutil.which("tcpdump") or "/usr/bin/tcpdump"
BUFFER_KIB = 65536  # 64 MiB: a saturated level must not overflow the kernel's ring
SNAPLEN = 2048  # request line and headers (traceparent) of the benchmark's requests
_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
# libpcap hands packets to tcpdump in blocks, a block at the latest after its 1 s timeout;
# a SIGINT before that loses the packets of the block still open.
FLUSH_S = 1.2


@dataclass(slots=True)
class Captured:
    """A finished capture: the file, what tcpdump said it saw, and its CPU time while the
    block ran (and the flush after it)."""

    path: Path
    cpu_s: float = 0.0
    captured: int | None = None  # packets written to the file
    received: int | None = None  # packets received by the filter (twice each on lo)
    dropped: int | None = None  # packets the kernel dropped (the buffer overflowed)


@contextlib.contextmanager
def capturing(port: int, path: Path) -> Iterator[Captured]:
    """Capture TCP to/from 127.0.0.1:`port` on `lo` into `path` while the block runs; the
    `Captured` is complete after the block (tcpdump stopped, its figures read)."""
    log = path.with_suffix(".log")
    result = Captured(path=path)
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                TCPDUMP,
                "-i",
                "lo",
                "-n",
                "--time-stamp-precision=nano",
                "-B",
                str(BUFFER_KIB),
                "-s",
                str(SNAPLEN),
                "-Z",
                "root",  # write the file as ourselves: no privilege drop to a user who can't
                "-w",
                str(path),
                f"tcp port {port} and host 127.0.0.1",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # a Ctrl-C reaches us, and we stop tcpdump ourselves
        )
    try:
        _wait_listening(process, log)
        started_cpu = _cpu_s(process)  # opening the ring buffer is not the capture's work
        yield result
        time.sleep(FLUSH_S)
        result.cpu_s = _cpu_s(process) - started_cpu
    finally:
        _stop(process)
    text = log.read_text(errors="replace")
    result.captured = _count(text, "packets captured")
    result.received = _count(text, "packets received by filter")
    result.dropped = _count(text, "packets dropped by kernel")


def _wait_listening(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if "listening on" in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            break
        time.sleep(0.01)
    _stop(process)
    raise RuntimeError(f"tcpdump did not start capturing: {log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGINT (tcpdump flushes its file and prints its counts), then wait; SIGKILL the PID
    if it does not end."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)


def _cpu_s(process: subprocess.Popen[bytes]) -> float:
    times = psutil.Process(process.pid).cpu_times()
    return float(times.user + times.system)


def _count(text: str, label: str) -> int | None:
    match = re.search(rf"(\d+) {label}", text)
    return int(match.group(1)) if match else None
