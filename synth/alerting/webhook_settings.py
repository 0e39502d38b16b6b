"""`playbooks.<name>.webhook` in synth.yaml: a generic signed-webhook incident channel
(Opsgenie, Teams, Alertmanager receivers, an in-house bot), and the rule that a playbook
has at least one channel that pages (PagerDuty's `routing_key`, a `webhook`, or both)."""

from __future__ import annotations

from typing import Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from synth.redact import register_process_secret
from synth.secret_ref import Secret

SECRET_MIN = 16


class WebhookSettings(BaseModel):
    """Where the playbook's events are POSTed, and the secret that signs them. Both are
    secrets (a URL often carries a token): read at send time, never stored or logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: Secret
    secret: Secret

    def resolve(self) -> tuple[str, str]:
        """(url, secret) read now; ValueError naming the source that cannot be read."""
        try:
            url = self.url.resolve().get_secret_value()
        except ValueError as exc:
            raise ValueError(f"url: {exc}") from None
        try:
            secret = self.secret.resolve().get_secret_value()
        except ValueError as exc:
            raise ValueError(f"secret: {exc}") from None
        return url, secret


def webhook_problems(webhook: WebhookSettings) -> list[str]:
    """What makes the webhook unusable (unreadable secrets, not an http(s) URL, a short
    secret), each starting with the field; never the URL or the secret themselves. What
    it reads is masked in this process's output from now on (start-up runs this)."""
    problems = []
    try:
        url = webhook.url.resolve().get_secret_value()
    except ValueError as exc:
        problems.append(f"url: {exc}")
    else:
        register_process_secret(url)
        problems += [f"url: {p}" for p in url_problems(url)]
    try:
        secret = webhook.secret.resolve().get_secret_value()
    except ValueError as exc:
        problems.append(f"secret: {exc}")
    else:
        register_process_secret(secret)
        if len(secret) < SECRET_MIN:
            problems.append(
                f"secret: needs at least {SECRET_MIN} characters, this one has {len(secret)}"
            )
    return problems


def url_problems(url: str) -> list[str]:
    """Why `url` cannot be posted to (said without repeating it: it is a secret)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number in range
    except ValueError:
        return ["is not a valid URL"]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ["must be an absolute http:// or https:// URL"]
    return []


class _Channels(Protocol):
    @property
    def routing_key(self) -> object | None: ...

    @property
    def webhook(self) -> WebhookSettings | None: ...


_P = TypeVar("_P", bound=_Channels)


def require_a_channel(playbook: _P) -> _P:
    """A playbook pages through PagerDuty (`routing_key`), a webhook, or both: one with
    neither would page nobody (Slack alone is a best-effort notification, not a page)."""
    if playbook.routing_key is None and playbook.webhook is None:
        raise ValueError("give routing_key (PagerDuty), webhook, or both")
    return playbook
