"""A target with a known latency, to check a latency measurement against: a subprocess
HTTP server on a free 127.0.0.1 port that answers every GET `{"ok":true}` after sleeping a
fixed delay (from having read the request), headers and body in separate writes. Stopped by
the PID of the process this module started.
"""

from __future__ import annotations

import contextlib
import select
import subprocess
import sys
from collections.abc import Iterator

_START_TIMEOUT_S = 10.0
_SERVER = """
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DELAY_S = float(sys.argv[1])

class Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(DELAY_S)
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextlib.contextmanager
def slow_target(delay_s: float) -> Iterator[int]:
    """Run the server; yields its port."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(delay_s)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], _START_TIMEOUT_S)
        line = process.stdout.readline() if ready else b""  # its port, once listening
        if not line.strip().isdigit():
            raise RuntimeError(f"slow target did not start (exit {process.poll()})")
        yield int(line)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
