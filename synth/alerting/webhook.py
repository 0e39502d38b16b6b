"""The signed-webhook incident channel: a playbook's triggers, resolves and change events
POSTed as JSON to any receiver (Opsgenie, Teams, Alertmanager receivers, an in-house
bot), delivered through the same outbox as PagerDuty events.

Each request carries

    Content-Type: application/json
    X-Synth-Event-Id: <the event's id: the same on every redelivery>
    X-Synth-Timestamp: <unix seconds when this attempt was signed>
    X-Synth-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The body is the stored event as it is (`webhook_event`), serialised once per
attempt the same way. 2xx is delivered; 408, 429, 5xx and no answer are retried (with
Retry-After); any other status (3xx: redirects are not followed, 4xx) drops the event.
The URL and the secret are never part of an error, a log line or the stored event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2

from synth.alerting.channel import ChannelSender, Delivery, Notice, retry_after, tls_verify
from synth.alerting.webhook_settings import url_problems, webhook_problems
from synth.model import AlertAction, DeliveryResult
from synth.redact import Redactor, register_process_secret
from synth.store.records import NewOutboxEvent

if TYPE_CHECKING:
    from synth.config import PagerDutySettings, PlaybookSettings, SecretRef
    from synth.store import OutboxEvent

SIGNATURE_VERSION = "v1"
EVENT_ID_HEADER = "X-Synth-Event-Id"
TIMESTAMP_HEADER = "X-Synth-Timestamp"
SIGNATURE_HEADER = "X-Synth-Signature"
RETRIED_STATUSES = frozenset({408, 429})
ERROR_MAX = 300
URL_PART_MIN = 8  # path segments and query values this long are masked like the URL


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`v1=<hex>`: HMAC-SHA256 with `secret` over `<timestamp>.` followed by the body."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def encode(event: dict[str, Any]) -> bytes:
    """The request body of a stored webhook event: compact, ASCII-only JSON."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode()


def signed_headers(
    secret: str, body: bytes, event_id: str, *, now: float | None = None
) -> dict[str, str]:
    """The headers of one attempt to deliver `body`."""
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": "application/json",
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def url_redactor(url: str, secret: str) -> Redactor:
    """Masks the secret, the URL, and the parts of the URL that may carry a token (path
    segments, query values, a password) wherever they show up alone."""
    redactor = Redactor([url, secret])
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return redactor
    pieces = [parts.path, parts.query, *parts.path.split("/"), password or ""]
    pieces += [p.partition("=")[2] for p in parts.query.split("&")]
    for piece in pieces:
        if len(piece) >= URL_PART_MIN:
            redactor.add(piece)
    return redactor


class WebhookSender:
    """Posts signed events to playbook webhooks. Use from one worker thread."""

    def __init__(self, *, timeout_s: float, verify: ssl.SSLContext | bool = True) -> None:
        self._client = httpx2.Client(
            timeout=timeout_s, verify=verify, trust_env=False, follow_redirects=False
        )

    def send(self, event: dict[str, Any], url: str, secret: str) -> Delivery:
        """Deliver one stored webhook event (blocking, bounded by the timeout)."""
        # Whatever escapes (a traceback, a log line) is masked too, not only our errors.
        register_process_secret(url)
        register_process_secret(secret)
        problems = url_problems(url)
        if problems:
            return Delivery(DeliveryResult.REJECTED, f"the webhook url {problems[0]}")
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            return Delivery(DeliveryResult.REJECTED, "the stored webhook event has no id")
        redactor = url_redactor(url, secret)
        body = encode(event)
        try:
            response = self._client.post(
                url, content=body, headers=signed_headers(secret, body, event_id)
            )
        except httpx2.HTTPError as exc:
            return Delivery(
                DeliveryResult.RETRY, _short(f"no answer: {type(exc).__name__}", redactor)
            )
        except httpx2.InvalidURL:  # its message would repeat the URL
            return Delivery(DeliveryResult.REJECTED, "the webhook url is not a valid URL")
        status = response.status_code
        if response.is_success:
            return Delivery(DeliveryResult.SENT)
        message = _short(f"HTTP {status}: {response.text}", redactor)
        if status in RETRIED_STATUSES or status >= 500:
            return Delivery(
                DeliveryResult.RETRY, message, retry_after(response.headers.get("retry-after"))
            )
        return Delivery(DeliveryResult.REJECTED, message)

    def close(self) -> None:
        self._client.close()


def _short(text: str, redactor: Redactor) -> str:
    text = redactor.text(" ".join(text.split()))
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def webhook_key(key: str) -> str:
    """Webhook events are ordered among themselves, not behind PagerDuty events."""
    return f"webhook:{key}"


WEBHOOK_VERSION = 1


def webhook_event(
    event: NewOutboxEvent, *, resolved_summary: str | None = None, repeat: bool = False
) -> NewOutboxEvent:
    """The signed-webhook copy of a PagerDuty trigger, resolve or change event: its fields
    (`payload`, `links`, `client`, `client_url`) as they are, under what a receiver needs
    on its own — a unique `id` (kept by redeliveries: receivers dedupe on it), the action,
    the dedup key, the playbook and a one-line summary."""
    body: dict[str, Any] = {
        "version": WEBHOOK_VERSION,
        "id": uuid.uuid4().hex,
        "action": event.kind,
        "dedup_key": event.dedup_key,
        "playbook": event.playbook,
    }
    summary = event.payload.get("payload", {}).get("summary")
    if event.kind == AlertAction.RESOLVE.value:
        summary = resolved_summary or f"resolved: {event.dedup_key}"
    body["summary"] = summary or event.dedup_key
    if event.kind == AlertAction.TRIGGER.value:
        body["repeat"] = repeat
    body.update(event.payload)
    return NewOutboxEvent(
        webhook_key(event.dedup_key), AlertAction.WEBHOOK.value, event.playbook, body
    )


class WebhookChannel:
    """The signed webhook (`webhook`): a copy of every trigger, resolve and change event."""

    setting = "webhook"
    actions = (AlertAction.WEBHOOK,)

    def configured(self, playbook: PlaybookSettings) -> bool:
        return playbook.webhook is not None

    def destination(self, settings: PagerDutySettings) -> str:
        return "the playbook's webhook"

    def secrets(self, playbook: PlaybookSettings) -> list[SecretRef]:
        webhook = playbook.webhook
        return [webhook.url, webhook.secret] if webhook is not None else []

    def unreadable(self, playbook: PlaybookSettings) -> str | None:
        try:
            _target(playbook)
        except ValueError as exc:
            return f"webhook.{exc}"
        return None

    def problems(self, playbook: PlaybookSettings) -> list[str]:
        if playbook.webhook is None:
            return []
        return [f"webhook.{p}" for p in webhook_problems(playbook.webhook)]

    def events(self, notice: Notice) -> list[NewOutboxEvent]:
        return [
            webhook_event(
                notice.event, resolved_summary=notice.resolved_summary, repeat=notice.repeat
            )
        ]

    def sender(self, settings: PagerDutySettings) -> ChannelSender:
        verify = tls_verify(settings.verify, settings.ca_file)
        return _PlaybookSender(WebhookSender(timeout_s=settings.timeout, verify=verify))


class _PlaybookSender:
    def __init__(self, sender: WebhookSender) -> None:
        self._sender = sender

    def send(self, event: NewOutboxEvent | OutboxEvent, playbook: PlaybookSettings) -> Delivery:
        url, secret = _target(playbook)
        return self._sender.send(event.payload, url, secret)

    def close(self) -> None:
        self._sender.close()


def _target(playbook: PlaybookSettings) -> tuple[str, str]:
    if playbook.webhook is None:
        raise ValueError("the playbook has no webhook")
    return playbook.webhook.resolve()
