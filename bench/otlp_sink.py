"""An OTLP/HTTP receiver that accepts and discards: the collector for
bench/telemetry_overhead.py, run as its own process so its CPU is not the benchmark's.

    python bench/otlp_sink.py   # prints "port N", then serves until stdin closes

On exit it prints "requests N bytes M" so the benchmark can check spans really went out.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

REPLY = b""  # an empty ExportTraceServiceResponse


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = 0
    received = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with Sink.lock:
            Sink.requests += 1
            Sink.received += len(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)


def main() -> int:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    print(f"port {server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    server.shutdown()
    server.server_close()
    print(f"requests {Sink.requests} bytes {Sink.received}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
