"""What an incident channel is to the rest of synth: the seam PagerDuty, Slack and the
signed webhook plug into.

A channel is one module in `alerting/` with one `Channel` (registered in
`alerting/channels.py`) and its setting on `PlaybookSettings`. It says which of the
playbook's notices it carries and in what shape (the outbox events it adds), which secrets
it holds (so every output redacts them), what is wrong with its settings, and how one of
its stored events is delivered. The engine, the outbox, `synth run` and `synth page test`
know channels only through this interface.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from synth.model import DeliveryResult

if TYPE_CHECKING:
    from synth.config import PagerDutySettings, PlaybookSettings, SecretRef
    from synth.model import AlertAction
    from synth.store import NewOutboxEvent, OutboxEvent

# Statuses that say the event itself is wrong: sending it again cannot help.
REJECTED_STATUSES = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class Delivery:
    """The outcome of one attempt to deliver an event."""

    result: DeliveryResult
    error: str | None = None
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """What a playbook tells its channels: a PagerDuty-shaped trigger, resolve or change
    event (`event`; its payload is redacted already) and how to word it elsewhere."""

    event: NewOutboxEvent
    resolved_summary: str | None = None
    """One line for a resolve ("checkout in production passes again")."""
    repeat: bool = False
    """A re-trigger of an incident that is still open (PagerDuty dedupes it; a chat
    channel would say it twice)."""


class ChannelSender(Protocol):
    """Delivers a channel's stored events. Blocking: used from one worker thread."""

    def send(self, event: NewOutboxEvent | OutboxEvent, playbook: PlaybookSettings) -> Delivery:
        """One attempt; the playbook's secrets are resolved now (ValueError when one cannot
        be read: the outbox retries later)."""
        ...

    def close(self) -> None: ...


class Channel(Protocol):
    """An incident channel of the playbooks."""

    @property
    def setting(self) -> str:
        """The `PlaybookSettings` field that configures it (`routing_key`, ...)."""
        ...

    @property
    def actions(self) -> tuple[AlertAction, ...]:
        """The outbox event kinds it delivers (`action` of synth_pages_total)."""
        ...

    def configured(self, playbook: PlaybookSettings) -> bool: ...

    def destination(self, settings: PagerDutySettings) -> str:
        """Where it sends, for a person (no secret: `synth page test` prints it)."""
        ...

    def secrets(self, playbook: PlaybookSettings) -> list[SecretRef]:
        """Every secret of its settings in this playbook (the redactor learns them)."""
        ...

    def unreadable(self, playbook: PlaybookSettings) -> str | None:
        """Why its secrets cannot be read now (relative to `playbooks.<name>.`), or None."""
        ...

    def problems(self, playbook: PlaybookSettings) -> list[str]:
        """What is wrong with its settings (relative to `playbooks.<name>.`)."""
        ...

    def events(self, notice: Notice) -> list[NewOutboxEvent]:
        """The outbox events it sends for a notice (none for what it does not carry)."""
        ...

    def sender(self, settings: PagerDutySettings) -> ChannelSender: ...


def tls_verify(verify: bool, ca_file: Any) -> ssl.SSLContext | bool:
    """What to pass as `verify=`: an SSL context trusting `ca_file`, or the flag."""
    if ca_file is not None:
        return ssl.create_default_context(cafile=str(ca_file))
    return verify


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
