"""A small web site for browser-check tests, on a 127.0.0.1 ephemeral port: a sign-in page
whose button calls fetch(), pages answering 500 and 401, a page that throws, a document
that arrives only after a delay (`/slow?hold=S`), and a record of every request's path and headers.

`/` has a text input labelled "Username" and a "Log in" button. Clicking it logs what was
typed to the console (raw, base64 and percent-encoded), POSTs it to `/api/login` (in the
query and the body), shows the answer's `message` in `role=status` and moves the URL to
`/welcome` with history.pushState. `/api/login` echoes what it received in its JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"
MAX_HOLD_S = 60.0
"""The longest `/slow?hold=S` holds its document back; the server's stop wakes it."""
SIGNED_IN = "Signed in as demo"
PAGE_ERROR = "kaboom-7731 in the page"

LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
<label for="user">Username</label>
<input id="user" name="user" type="text" autocomplete="off">
<button id="go" type="button">Log in</button>
<p id="status" role="status"></p>
<script>
document.getElementById("go").addEventListener("click", async () => {
  const typed = document.getElementById("user").value;
  console.log("typed " + typed + " b64 " + btoa(typed) + " pct " + encodeURIComponent(typed));
  const answer = await fetch("/api/login?user=" + encodeURIComponent(typed), {
    method: "POST",
    headers: {"Content-Type": "text/plain"},
    body: typed,
  });
  const data = await answer.json();
  document.getElementById("status").textContent = data.message;
  history.pushState({}, "", "/welcome");
});
</script>
</body></html>
"""

THROWING_PAGE = f"""<!doctype html>
<html><head><title>Broken</title></head><body><p>Loading…</p>
<script>throw new Error("{PAGE_ERROR}");</script>
</body></html>
"""


@dataclass(frozen=True, slots=True)
class Seen:
    """A request as the site received it; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: Site


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "text/html") -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        site = self.server.site
        site.record(
            Seen(self.command, parts.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if parts.path in ("/", "/welcome"):
            self._send(200, LOGIN_PAGE.encode())
        elif parts.path == "/api/login":
            user = parse_qs(parts.query).get("user", [""])[0]
            answer = {"message": SIGNED_IN, "echo": user, "body": body.decode(errors="replace")}
            self._send(200, json.dumps(answer).encode(), "application/json")
        elif parts.path == "/500":
            self._send(500, b"<!doctype html><h1>Internal Server Error</h1>")
        elif parts.path == "/401":
            self._send(401, b"<!doctype html><h1>Unauthorized</h1>")
        elif parts.path == "/throws":
            self._send(200, THROWING_PAGE.encode())
        elif parts.path == "/slow":
            hold = float(parse_qs(parts.query).get("hold", ["3"])[0])
            site.stopping.wait(min(hold, MAX_HOLD_S))  # a document that is late
            with contextlib.suppress(OSError):
                self._send(200, b"<!doctype html><p>finally</p>")
        elif parts.path == "/favicon.ico":
            self._send(204, b"")
        else:
            self._send(404, b"<!doctype html><h1>Not Found</h1>")

    do_GET = do_POST = _dispatch


class Site:
    """The site, served by a thread until `stop()`."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.site = self
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://{LOOPBACK}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def seen(self, path: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self._seen if path is None or s.path == path]

    def start(self) -> Site:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def refused_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
