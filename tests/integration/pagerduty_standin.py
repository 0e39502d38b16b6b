"""A local PagerDuty Events API v2, strict about the contract, for integration tests.

HTTPS on 127.0.0.1 at an ephemeral port with a certificate from a CA the test generates
(trustme): the real `pagerduty` client only talks https. Implements

- `POST /v2/enqueue`: routing_key of 32 characters; event_action trigger, acknowledge or
  resolve; dedup_key a string of at most 255 characters (required unless trigger);
  a trigger's payload with summary (1..1024 characters), source and severity (critical,
  error, warning, info), and only the documented optional fields. 202
  `{status, message, dedup_key}`; 400 `{status, message, errors}` otherwise.
- `POST /v2/change/enqueue`: payload with summary (1..1024) and optional source,
  timestamp, custom_details; links. 202 `{status, message}`.
- `POST /slack/...`: a Slack incoming webhook (200 "ok"), for the optional notification.

It records every accepted event in order and keeps incidents the way PagerDuty groups
them: a trigger opens an incident for its dedup key unless one is open (then it joins it);
a resolve closes it. `mode` switches answers: "ok", "400" (reject every event, as for an
unknown routing key), "429", "500" or "hang" (hold the request, then drop the connection
without processing it, once the mode changes or the server stops).
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, like a real one
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS = ("trigger", "acknowledge", "resolve")
EVENT_FIELDS = frozenset(
    {
        "routing_key",
        "event_action",
        "dedup_key",
        "payload",
        "images",
        "links",
        "client",
        "client_url",
    }
)
PAYLOAD_FIELDS = frozenset(
    {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
)
CHANGE_FIELDS = frozenset({"routing_key", "payload", "links", "images"})
CHANGE_PAYLOAD_FIELDS = frozenset({"summary", "source", "timestamp", "custom_details"})
HANG_MAX_S = 120.0
MODES = ("ok", "400", "429", "500", "hang")


@dataclass(frozen=True)
class Event:
    """An accepted event, as received."""

    path: str
    body: dict[str, Any]
    received_at: float

    @property
    def action(self) -> str:
        if self.path == "/v2/change/enqueue":
            return "change"
        if self.path.startswith("/slack/"):
            return "slack"
        return str(self.body["event_action"])

    @property
    def dedup_key(self) -> str | None:
        return self.body.get("dedup_key")


@dataclass
class Incident:
    dedup_key: str
    alerts: list[Event] = field(default_factory=list)
    resolved: bool = False


class PagerDutyStandIn:
    """The server; `events`, `incidents`, `rejected` and `attempts` are read by tests."""

    def __init__(self, ca: trustme.CA) -> None:
        self.ca = ca
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.incidents: list[Incident] = []
        self.rejected: list[tuple[dict[str, Any] | None, list[str]]] = []
        self.attempts = 0
        self.mode = "ok"
        self._changed = threading.Condition(self.lock)
        self._stopped = False
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> PagerDutyStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            self._stopped = True
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        with self.lock:
            self.mode = mode
            self._changed.notify_all()

    # -- views for tests -------------------------------------------------------------------

    def accepted(self, action: str | None = None) -> list[Event]:
        with self.lock:
            return [e for e in self.events if action is None or e.action == action]

    def incidents_for(self, dedup_key: str) -> list[Incident]:
        with self.lock:
            return [i for i in self.incidents if i.dedup_key == dedup_key]

    def open_incidents(self) -> list[Incident]:
        with self.lock:
            return [i for i in self.incidents if not i.resolved]

    # -- request handling ------------------------------------------------------------------

    def answer(self, path: str, raw: bytes) -> tuple[int, dict[str, Any] | str] | None:
        with self.lock:
            self.attempts += 1
            deadline = time.monotonic() + HANG_MAX_S
            if self.mode == "hang":
                while self.mode == "hang" and not self._stopped and time.monotonic() < deadline:
                    self._changed.wait(timeout=0.5)
                return None  # a black hole: the event was never received
            if self._stopped:
                return None
            if self.mode == "400":
                return self._reject(None, ["Invalid routing key"])
            if self.mode == "429":
                return 429, {"status": "throttle event", "message": "Too many requests"}
            if self.mode == "500":
                return 500, {"status": "error", "message": "internal error"}
            try:
                body = json.loads(raw)
            except ValueError:
                return self._reject(None, ["body is not valid JSON"])
            if not isinstance(body, dict):
                return self._reject(None, ["body must be a JSON object"])
            if path.startswith("/slack/"):
                if not isinstance(body.get("text"), str) or not body["text"]:
                    return 400, "invalid_payload"
                self.events.append(Event(path, body, time.time()))
                return 200, "ok"
            if path == "/v2/enqueue":
                errors = validate_event(body)
            elif path == "/v2/change/enqueue":
                errors = validate_change(body)
            else:
                return 404, {"status": "not found"}
            if errors:
                return self._reject(body, errors)
            event = Event(path, body, time.time())
            self.events.append(event)
            if path == "/v2/change/enqueue":
                return 202, {"status": "success", "message": "Change event processed"}
            key = body.get("dedup_key") or uuid.uuid4().hex
            self._group(event, key)
            return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _reject(self, body: dict[str, Any] | None, errors: list[str]) -> tuple[int, dict[str, Any]]:
        self.rejected.append((body, errors))
        return 400, {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        }

    def _group(self, event: Event, key: str) -> None:
        current = next((i for i in self.incidents if i.dedup_key == key and not i.resolved), None)
        if event.action == "trigger":
            if current is None:
                current = Incident(key)
                self.incidents.append(current)
            current.alerts.append(event)
        elif event.action == "resolve" and current is not None:
            current.resolved = True


def validate_event(body: dict[str, Any]) -> list[str]:
    """The Events API v2 rules for /v2/enqueue, as documented."""
    errors = [f"unknown field {k!r}" for k in body if k not in EVENT_FIELDS]
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("routing_key must be a 32 character string")
    action = body.get("event_action")
    if action not in ACTIONS:
        errors.append(f"event_action must be one of {', '.join(ACTIONS)}")
    dedup = body.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or not dedup or len(dedup) > 255):
        errors.append("dedup_key must be a string of 1 to 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        errors.append(f"dedup_key is required to {action}")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*errors, "payload is required for trigger"]
        errors += [f"unknown payload field {k!r}" for k in payload if k not in PAYLOAD_FIELDS]
        errors += _summary_errors(payload)
        if not isinstance(payload.get("source"), str) or not payload["source"]:
            errors.append("payload.source is required")
        if payload.get("severity") not in SEVERITIES:
            errors.append(f"payload.severity must be one of {', '.join(SEVERITIES)}")
        for name in ("component", "group", "class", "timestamp"):
            if name in payload and not isinstance(payload[name], str):
                errors.append(f"payload.{name} must be a string")
    errors += _links_errors(body)
    return errors


def validate_change(body: dict[str, Any]) -> list[str]:
    """The rules for /v2/change/enqueue."""
    errors = [f"unknown field {k!r}" for k in body if k not in CHANGE_FIELDS]
    key = body.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("routing_key must be a 32 character string")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "payload is required"]
    errors += [f"unknown payload field {k!r}" for k in payload if k not in CHANGE_PAYLOAD_FIELDS]
    errors += _summary_errors(payload)
    return errors + _links_errors(body)


def _summary_errors(payload: dict[str, Any]) -> list[str]:
    summary = payload.get("summary")
    if not isinstance(summary, str) or not 1 <= len(summary) <= 1024:
        return ["payload.summary must be a string of 1 to 1024 characters"]
    return []


def _links_errors(body: dict[str, Any]) -> list[str]:
    links = body.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and isinstance(link.get("href"), str) for link in links
    ):
        return ["links must be a list of objects with href"]
    return []


def _handler(standin: PagerDutyStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            answer = standin.answer(self.path, raw)
            if answer is None:
                self.close_connection = True
                return
            status, reply = answer
            data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
            self.send_response(status)
            kind = "text/plain" if isinstance(reply, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up meanwhile
                self.wfile.write(data)

    return Handler


@pytest.fixture(name="pagerduty")
def pagerduty_fixture(tmp_path: Path) -> Iterator[PagerDutyStandIn]:
    """A running stand-in; its CA is written to tmp_path/pagerduty-ca.pem."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "pagerduty-ca.pem"))
    standin = PagerDutyStandIn(ca).start()
    yield standin
    standin.stop()
