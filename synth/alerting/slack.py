"""Optional Slack incoming-webhook notifications: best effort, delivered through the same
outbox as PagerDuty events (the webhook URL is a secret, resolved at send time)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx2

from synth.alerting.pagerduty import REJECTED_STATUSES, Delivery, retry_after
from synth.model import DeliveryResult
from synth.redact import Redactor

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
