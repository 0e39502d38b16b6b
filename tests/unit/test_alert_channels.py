"""The incident-channel seam: every channel is reached only through `Channel`, so what one
gets (events, secrets, problems, delivery) is decided in its own module."""

from __future__ import annotations

from typing import Any

from synth.alerting.channel import Notice
from synth.alerting.channels import (
    CHANNELS,
    channel_for,
    channel_problems,
    notice_events,
    page_actions,
    readable_channels,
)
from synth.alerting.engine import redactor_for
from synth.alerting.outbox import Dispatcher
from synth.config import PagerDutySettings, PlaybookSettings, Settings
from synth.model import AlertAction, DeliveryResult
from synth.store import NewOutboxEvent

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SLACK = "https://hooks.slack.example/services/T0/B0/slack-secret-1234"
WEBHOOK = {"url": "https://hooks.example.com/synth/t0ken-abcdef123456", "secret": "s" * 32}


def playbook(**fields: Any) -> PlaybookSettings:
    return PlaybookSettings.model_validate(fields)


def trigger(key: str = "synth/production/checkout") -> NewOutboxEvent:
    body = {"payload": {"summary": "checkout failed", "severity": "critical"}, "links": []}
    return NewOutboxEvent(key, AlertAction.TRIGGER.value, "oncall", body)


def test_every_event_kind_has_exactly_one_channel_and_every_setting_is_a_playbook_field() -> None:
    kinds = [action for channel in CHANNELS for action in channel.actions]
    assert sorted(kinds) == sorted(AlertAction)
    for channel in CHANNELS:
        assert channel.setting in PlaybookSettings.model_fields
        for action in channel.actions:
            assert channel_for(action.value) is channel
    assert channel_for("fax") is None


def test_a_notice_goes_to_each_configured_channel_in_its_own_words() -> None:
    everything = playbook(routing_key=KEY, webhook=WEBHOOK, slack_webhook=SLACK)
    events = notice_events(Notice(trigger()), everything)
    assert [e.kind for e in events] == ["trigger", "webhook", "slack"]
    assert [e.dedup_key for e in events] == [
        "synth/production/checkout",
        "webhook:synth/production/checkout",
        "slack:synth/production/checkout",
    ]
    assert page_actions(everything) == (
        AlertAction.TRIGGER,
        AlertAction.RESOLVE,
        AlertAction.CHANGE,
        AlertAction.WEBHOOK,
        AlertAction.SLACK,
    )
    # Chat hears of an incident once: not of a re-trigger, not of change events.
    repeat = notice_events(Notice(trigger(), repeat=True), everything)
    assert [e.kind for e in repeat] == ["trigger", "webhook"]
    change = NewOutboxEvent("synth-change/production/shop", "change", "oncall", {})
    assert [e.kind for e in notice_events(Notice(change), everything)] == ["change", "webhook"]
    resolve = NewOutboxEvent("synth/production/checkout", "resolve", "oncall", {})
    (slack,) = notice_events(
        Notice(resolve, resolved_summary="checkout passes again"),
        playbook(webhook=WEBHOOK, slack_webhook=SLACK),
    )[1:]
    assert slack.payload == {"text": ":white_check_mark: resolved: checkout passes again"}


def test_every_channels_secrets_are_redacted_and_checked() -> None:
    settings = Settings.model_validate(
        {"playbooks": {"oncall": {"routing_key": KEY, "webhook": WEBHOOK, "slack_webhook": SLACK}}}
    )
    text = redactor_for(settings).text(f"{KEY} {SLACK} {WEBHOOK['url']} {WEBHOOK['secret']}")
    assert KEY not in text
    assert SLACK not in text
    assert WEBHOOK["url"] not in text
    assert WEBHOOK["secret"] not in text

    broken = playbook(
        routing_key="short",
        webhook={"url": "ftp://x", "secret": "s" * 32},
        slack_webhook={"env": "SYNTH_TEST_UNSET_SLACK_URL"},
    )
    assert channel_problems(broken) == [
        "routing_key: a PagerDuty integration key has 32 characters, this one has 5",
        "webhook.url: must be an absolute http:// or https:// URL",
        "slack_webhook: environment variable SYNTH_TEST_UNSET_SLACK_URL is not set",
    ]
    readable, unreadable = readable_channels(broken)
    assert unreadable == [
        "slack_webhook: environment variable SYNTH_TEST_UNSET_SLACK_URL is not set"
    ]
    assert readable.slack_webhook is None
    assert readable.routing_key is not None


def test_the_dispatcher_refuses_what_no_channel_of_the_playbook_delivers() -> None:
    settings = Settings.model_validate(
        {
            "playbooks": {
                "oncall": {"routing_key": KEY},
                "lost": {"routing_key": KEY, "slack_webhook": {"env": "SYNTH_TEST_UNSET"}},
            }
        }
    )
    dispatcher = Dispatcher(PagerDutySettings())
    try:
        slack = NewOutboxEvent("slack:k", "slack", "oncall", {"text": "x"})
        refused = dispatcher.send(settings, slack)
        assert (refused.result, refused.error) == (
            DeliveryResult.REJECTED,
            "the playbook has no slack_webhook",
        )
        fax = dispatcher.send(settings, NewOutboxEvent("k", "fax", "oncall", {}))
        assert (fax.result, fax.error) == (DeliveryResult.REJECTED, "unknown event kind 'fax'")
        gone = dispatcher.send(settings, NewOutboxEvent("k", "trigger", "removed", {}))
        assert gone.result is DeliveryResult.REJECTED
        # A secret that went missing may come back: retried, not dropped.
        later = dispatcher.send(settings, NewOutboxEvent("slack:k", "slack", "lost", {}))
        assert later.result is DeliveryResult.RETRY
        assert "SYNTH_TEST_UNSET is not set" in (later.error or "")
    finally:
        dispatcher.close()
