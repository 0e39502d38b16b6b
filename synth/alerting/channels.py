"""The playbooks' incident channels, and what the rest of synth asks of all of them at
once. Adding a channel is its module (a `Channel`, see channel.py), its setting on
`PlaybookSettings`, and one line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth.alerting.channel import Channel, Notice
from synth.alerting.pagerduty import PagerDutyChannel
from synth.alerting.slack import SlackChannel
from synth.alerting.webhook import WebhookChannel

if TYPE_CHECKING:
    from synth.config import PlaybookSettings, SecretRef
    from synth.model import AlertAction
    from synth.store import NewOutboxEvent

# The order events of one notice are stored in.
CHANNELS: tuple[Channel, ...] = (PagerDutyChannel(), WebhookChannel(), SlackChannel())

_BY_KIND = {action.value: channel for channel in CHANNELS for action in channel.actions}


def channel_for(kind: str) -> Channel | None:
    """The channel that delivers stored events of this kind."""
    return _BY_KIND.get(kind)


def configured(playbook: PlaybookSettings) -> list[Channel]:
    return [channel for channel in CHANNELS if channel.configured(playbook)]


def notice_events(notice: Notice, playbook: PlaybookSettings) -> list[NewOutboxEvent]:
    """The outbox events of a notice: each configured channel's copy of it."""
    return [event for channel in configured(playbook) for event in channel.events(notice)]


def page_actions(playbook: PlaybookSettings) -> tuple[AlertAction, ...]:
    """The `action` values of synth_pages_total this playbook can send."""
    return tuple(action for channel in configured(playbook) for action in channel.actions)


def channel_secrets(playbook: PlaybookSettings) -> list[SecretRef]:
    return [ref for channel in CHANNELS for ref in channel.secrets(playbook)]


def channel_problems(playbook: PlaybookSettings) -> list[str]:
    """What is wrong with the playbook's channels (relative to `playbooks.<name>.`)."""
    return [problem for channel in configured(playbook) for problem in channel.problems(playbook)]


def readable_channels(playbook: PlaybookSettings) -> tuple[PlaybookSettings, list[str]]:
    """The playbook without the channels whose secrets cannot be read now (a laptop
    without the variable), and why each was left out."""
    problems: list[str] = []
    update: dict[str, None] = {}
    for channel in configured(playbook):
        if (unreadable := channel.unreadable(playbook)) is not None:
            problems.append(unreadable)
            update[channel.setting] = None
    return playbook.model_copy(update=update), problems
