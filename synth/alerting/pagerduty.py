"""Deliver events to the PagerDuty Events API v2 through the `pagerduty` package.

The client is synchronous and sleeps in its own retries: synth turns those retries off
(the outbox retries with backoff instead, without holding a thread) and calls `send` in a
worker thread, never on the event loop. The client accepts only https:// base URLs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pagerduty

from synth.alerting.channel import (
    REJECTED_STATUSES,
    ChannelSender,
    Delivery,
    Notice,
    retry_after,
    tls_verify,
)
from synth.config import PagerDutySettings
from synth.model import AlertAction, DeliveryResult
from synth.redact import Redactor

if TYPE_CHECKING:
    from synth.config import PlaybookSettings, SecretRef
    from synth.store import NewOutboxEvent, OutboxEvent

INTEGRATION_KEY_LENGTH = 32

ERROR_MAX = 500


# The client logs its own retry bookkeeping ("exceeded maximum number of attempts (-1)")
# at error level for every failed attempt: misleading with its retries off, and the
# outbox logs each attempt itself.
logging.getLogger("pagerduty").setLevel(logging.CRITICAL)


class PagerDutySender:
    """Sends Events API v2 events; one client per routing key, reused. Not thread-safe:
    use it from one worker thread."""

    def __init__(self, settings: PagerDutySettings) -> None:
        self._settings = settings
        self._verify = tls_verify(settings.verify, settings.ca_file)
        self._clients: dict[str, pagerduty.EventsApiV2Client] = {}

    def _client(self, routing_key: str) -> pagerduty.EventsApiV2Client:
        client = self._clients.get(routing_key)
        if client is None:
            client = pagerduty.EventsApiV2Client(
                routing_key, base_url=self._settings.api_url, verify=self._verify
            )
            client.timeout = self._settings.timeout  # type: ignore[assignment]
            # One attempt per call: with a positive retry count and max_http_attempts
            # below zero the client returns the first error response instead of sleeping
            # (429 is otherwise retried without limit), and a network error is raised at
            # once. The outbox does the retrying.
            client.retry = {429: 1, 500: 1, 502: 1, 503: 1, 504: 1}
            client.max_http_attempts = -1
            client.max_network_attempts = 0
            self._clients[routing_key] = client
        return client

    def send(self, kind: str, dedup_key: str, event: dict[str, Any], routing_key: str) -> Delivery:
        """Deliver one event (blocking, bounded by the configured timeout)."""
        redactor = Redactor([routing_key])
        client = self._client(routing_key)
        try:
            if kind == AlertAction.TRIGGER.value:
                client.send_event("trigger", dedup_key=dedup_key, **event)
            elif kind == AlertAction.RESOLVE.value:
                client.send_event("resolve", dedup_key=dedup_key)
            elif kind == AlertAction.CHANGE.value:
                client.send_change_event(
                    payload=event.get("payload"), links=event.get("links") or None
                )
            else:
                return Delivery(DeliveryResult.REJECTED, f"unknown event kind {kind!r}")
        except pagerduty.Error as exc:
            return _classify(exc, redactor)
        return Delivery(DeliveryResult.SENT)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def _classify(exc: pagerduty.Error, redactor: Redactor) -> Delivery:
    response = exc.response
    if response is None:  # network error or timeout: no answer at all
        cause = exc.__cause__
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        return Delivery(DeliveryResult.RETRY, _short(f"no answer: {detail}", redactor))
    status = response.status_code
    body = response.text
    message = _short(f"HTTP {status}: {body}", redactor)
    if status in REJECTED_STATUSES:
        return Delivery(DeliveryResult.REJECTED, message)
    return Delivery(DeliveryResult.RETRY, message, retry_after(response.headers.get("retry-after")))


def _short(text: str, redactor: Redactor) -> str:
    text = redactor.text(" ".join(text.split()))
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


class PagerDutyChannel:
    """Events API v2 (`routing_key`): triggers, resolves and change events, as built."""

    setting = "routing_key"
    actions = (AlertAction.TRIGGER, AlertAction.RESOLVE, AlertAction.CHANGE)

    def configured(self, playbook: PlaybookSettings) -> bool:
        return playbook.routing_key is not None

    def destination(self, settings: PagerDutySettings) -> str:
        return settings.api_url

    def secrets(self, playbook: PlaybookSettings) -> list[SecretRef]:
        return [playbook.routing_key] if playbook.routing_key is not None else []

    def unreadable(self, playbook: PlaybookSettings) -> str | None:
        try:
            _routing_key(playbook)
        except ValueError as exc:
            return f"routing_key: {exc}"
        return None

    def problems(self, playbook: PlaybookSettings) -> list[str]:
        if playbook.routing_key is None:
            return []
        if (unreadable := self.unreadable(playbook)) is not None:
            return [unreadable]
        length = len(_routing_key(playbook))
        if length != INTEGRATION_KEY_LENGTH:
            return [
                f"routing_key: a PagerDuty integration key has {INTEGRATION_KEY_LENGTH} "
                f"characters, this one has {length}"
            ]
        return []

    def events(self, notice: Notice) -> list[NewOutboxEvent]:
        return [notice.event]

    def sender(self, settings: PagerDutySettings) -> ChannelSender:
        return _PlaybookSender(PagerDutySender(settings))


class _PlaybookSender:
    def __init__(self, sender: PagerDutySender) -> None:
        self._sender = sender

    def send(self, event: NewOutboxEvent | OutboxEvent, playbook: PlaybookSettings) -> Delivery:
        key = _routing_key(playbook)
        return self._sender.send(event.kind, event.dedup_key, event.payload, key)

    def close(self) -> None:
        self._sender.close()


def _routing_key(playbook: PlaybookSettings) -> str:
    if playbook.routing_key is None:
        raise ValueError("the playbook has no routing_key")
    return playbook.routing_key.resolve().get_secret_value()
