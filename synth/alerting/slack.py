"""Optional Slack incoming-webhook notifications (`slack_webhook`): best effort, delivered
through the same outbox as PagerDuty events (the webhook URL is a secret, resolved at send
time). A message says that an incident opened (not again for a re-trigger) and that it
resolved; change events are not sent to chat."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

import httpx2

from synth.alerting.channel import (
    REJECTED_STATUSES,
    ChannelSender,
    Delivery,
    Notice,
    retry_after,
    tls_verify,
)
from synth.model import AlertAction, DeliveryResult
from synth.redact import Redactor
from synth.store.records import NewOutboxEvent

if TYPE_CHECKING:
    from synth.config import PagerDutySettings, PlaybookSettings, SecretRef
    from synth.store import OutboxEvent

ERROR_MAX = 300
# Slack answers 403/404 (invalid_token, no_service) for a revoked or wrong webhook; the
# message will never get through, so it is dropped rather than retried for ever.
SLACK_REJECTED = REJECTED_STATUSES | {403, 404, 410}


class SlackSender:
    """Posts messages to incoming webhooks. Use from one worker thread."""

    def __init__(self, *, timeout_s: float, verify: ssl.SSLContext | bool = True) -> None:
        self._client = httpx2.Client(timeout=timeout_s, verify=verify, trust_env=False)

    def send(self, payload: dict[str, Any], webhook_url: str) -> Delivery:
        redactor = Redactor([webhook_url])
        try:
            response = self._client.post(webhook_url, json=payload)
        except httpx2.HTTPError as exc:
            return Delivery(
                DeliveryResult.RETRY, _short(f"no answer: {type(exc).__name__}", redactor)
            )
        if response.is_success:
            return Delivery(DeliveryResult.SENT)
        message = _short(f"HTTP {response.status_code}: {response.text}", redactor)
        if response.status_code in SLACK_REJECTED:
            return Delivery(DeliveryResult.REJECTED, message)
        return Delivery(
            DeliveryResult.RETRY, message, retry_after(response.headers.get("retry-after"))
        )

    def close(self) -> None:
        self._client.close()


def _short(text: str, redactor: Redactor) -> str:
    text = redactor.text(" ".join(text.split()))
    return text if len(text) <= ERROR_MAX else text[: ERROR_MAX - 1] + "…"


def slack_key(key: str) -> str:
    """Slack messages are ordered among themselves, not behind PagerDuty events."""
    return f"slack:{key}"


def slack_message(event: NewOutboxEvent, *, resolved_summary: str | None = None) -> NewOutboxEvent:
    """The Slack notification that goes with a trigger or resolve."""
    if event.kind == AlertAction.TRIGGER.value:
        payload = event.payload["payload"]
        lines = [f":rotating_light: *{payload['summary']}* ({payload['severity']})"]
        for link in event.payload.get("links", []):
            lines.append(f"<{link['href']}|{link['text']}>")
        text = "\n".join(lines)
    else:
        text = f":white_check_mark: resolved: {resolved_summary or event.dedup_key}"
    return NewOutboxEvent(
        slack_key(event.dedup_key), AlertAction.SLACK.value, event.playbook, {"text": text}
    )


CARRIED = frozenset({AlertAction.TRIGGER.value, AlertAction.RESOLVE.value})


class SlackChannel:
    """Slack incoming webhook (`slack_webhook`): a message per trigger and resolve."""

    setting = "slack_webhook"
    actions = (AlertAction.SLACK,)

    def configured(self, playbook: PlaybookSettings) -> bool:
        return playbook.slack_webhook is not None

    def destination(self, settings: PagerDutySettings) -> str:
        return "Slack"

    def secrets(self, playbook: PlaybookSettings) -> list[SecretRef]:
        return [playbook.slack_webhook] if playbook.slack_webhook is not None else []

    def unreadable(self, playbook: PlaybookSettings) -> str | None:
        try:
            _webhook_url(playbook)
        except ValueError as exc:
            return f"slack_webhook: {exc}"
        return None

    def problems(self, playbook: PlaybookSettings) -> list[str]:
        if playbook.slack_webhook is None:
            return []
        unreadable = self.unreadable(playbook)
        return [unreadable] if unreadable is not None else []

    def events(self, notice: Notice) -> list[NewOutboxEvent]:
        if notice.repeat or notice.event.kind not in CARRIED:
            return []
        return [slack_message(notice.event, resolved_summary=notice.resolved_summary)]

    def sender(self, settings: PagerDutySettings) -> ChannelSender:
        verify = tls_verify(settings.verify, settings.ca_file)
        return _PlaybookSender(SlackSender(timeout_s=settings.timeout, verify=verify))


class _PlaybookSender:
    def __init__(self, sender: SlackSender) -> None:
        self._sender = sender

    def send(self, event: NewOutboxEvent | OutboxEvent, playbook: PlaybookSettings) -> Delivery:
        return self._sender.send(event.payload, _webhook_url(playbook))

    def close(self) -> None:
        self._sender.close()


def _webhook_url(playbook: PlaybookSettings) -> str:
    if playbook.slack_webhook is None:
        raise ValueError("the playbook has no slack_webhook")
    return playbook.slack_webhook.resolve().get_secret_value()
