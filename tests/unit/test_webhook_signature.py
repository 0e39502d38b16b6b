"""The signed-webhook channel's pure parts: the signature against vectors computed apart
from synth (the hmac module, and a constant from `openssl dgst -sha256 -hmac`), the
headers, the event a playbook's PagerDuty event becomes, and the playbook settings."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from synth.alerting.channel import Notice
from synth.alerting.channels import notice_events, page_actions
from synth.alerting.engine import playbook_problems, redactor_for
from synth.alerting.webhook import encode, sign, signed_headers, url_redactor, webhook_event
from synth.config import ConfigError, PlaybookSettings, Settings, load_settings
from synth.model import AlertAction
from synth.store import NewOutboxEvent

SECRET = "whsec-test-0123456789abcdef"
BODY = b'{"action":"trigger","id":"0f3c"}'
# printf '%s' '1700000000.{"action":"trigger","id":"0f3c"}' \
#   | openssl dgst -sha256 -hmac 'whsec-test-0123456789abcdef'
OPENSSL_VECTOR = "8f869d41cc5bbe554ac853cf39027e75c87f8199a109a9db69c6400e5c076903"
KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    assert sign(SECRET, 1_700_000_000, BODY) == f"v1={OPENSSL_VECTOR}"
    for timestamp, body in ((1, b""), (1_800_000_000, "é ✓".encode()), (42, BODY * 100)):
        expected = hmac.new(
            SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
        ).hexdigest()
        assert sign(SECRET, timestamp, body) == f"v1={expected}"
    assert sign(SECRET, 1_700_000_001, BODY) != sign(SECRET, 1_700_000_000, BODY)
    assert sign(SECRET + "x", 1_700_000_000, BODY) != sign(SECRET, 1_700_000_000, BODY)


def test_headers_carry_the_event_id_the_timestamp_and_the_signature() -> None:
    headers = signed_headers(SECRET, BODY, "0f3c", now=1_700_000_000.9)
    assert headers == {
        "Content-Type": "application/json",
        "X-Synth-Event-Id": "0f3c",
        "X-Synth-Timestamp": "1700000000",
        "X-Synth-Signature": f"v1={OPENSSL_VECTOR}",
    }


def test_the_body_is_compact_ascii_json() -> None:
    body = encode({"summary": "checkout failed: “503”", "n": 1})
    assert body == b'{"summary":"checkout failed: \\u201c503\\u201d","n":1}'
    assert json.loads(body)["summary"] == "checkout failed: “503”"


def playbook(**fields: Any) -> PlaybookSettings:
    return PlaybookSettings.model_validate(fields)


WEBHOOK = {"url": "https://hooks.example.com/synth/t0ken-abcdef123456", "secret": SECRET}


def pagerduty_trigger() -> NewOutboxEvent:
    event = {
        "payload": {"summary": "checkout failed in production", "severity": "critical"},
        "links": [{"href": "https://runbooks.example.com/checkout", "text": "Runbook"}],
        "client": "synth",
    }
    return NewOutboxEvent("synth/production/checkout", "trigger", "oncall", event)


def test_a_webhook_event_wraps_the_pagerduty_event_with_an_id_of_its_own() -> None:
    trigger = pagerduty_trigger()
    events = notice_events(Notice(trigger), playbook(routing_key=KEY, webhook=WEBHOOK))
    assert [e.kind for e in events] == ["trigger", "webhook"]
    copy = events[1]
    assert copy.dedup_key == "webhook:synth/production/checkout"
    assert copy.playbook == "oncall"
    body = copy.payload
    assert len(body["id"]) == 32
    assert {k: v for k, v in body.items() if k != "id"} == {
        "version": 1,
        "action": "trigger",
        "dedup_key": "synth/production/checkout",
        "playbook": "oncall",
        "summary": "checkout failed in production",
        "repeat": False,
        **trigger.payload,
    }
    again = webhook_event(trigger, repeat=True)
    assert again.payload["repeat"] is True
    assert again.payload["id"] != body["id"], "every event has its own id"

    resolve = NewOutboxEvent("synth/production/checkout", "resolve", "oncall", {})
    (only,) = notice_events(
        Notice(resolve, resolved_summary="checkout passes again"), playbook(webhook=WEBHOOK)
    )
    assert only.kind == AlertAction.WEBHOOK.value
    assert {k: v for k, v in only.payload.items() if k != "id"} == {
        "version": 1,
        "action": "resolve",
        "dedup_key": "synth/production/checkout",
        "playbook": "oncall",
        "summary": "checkout passes again",
    }
    assert notice_events(Notice(resolve), playbook(routing_key=KEY)) == [resolve]


def test_the_playbook_pages_through_routing_key_webhook_or_both() -> None:
    assert playbook(webhook=WEBHOOK).routing_key is None
    assert playbook(routing_key=KEY).webhook is None
    with pytest.raises(ValueError, match="give routing_key \\(PagerDuty\\), webhook, or both"):
        playbook(runbook_url="https://runbooks.example.com")
    with pytest.raises(ValueError, match="url"):
        playbook(webhook={"secret": SECRET})
    parsed = playbook(webhook={"url": "env:HOOK_URL", "secret": "file:/run/secrets/hook"})
    assert parsed.webhook is not None
    assert parsed.webhook.url.env == "HOOK_URL"
    assert str(parsed.webhook.secret.file) == "/run/secrets/hook"
    assert page_actions(playbook(webhook=WEBHOOK)) == (AlertAction.WEBHOOK,)
    assert page_actions(playbook(routing_key=KEY, webhook=WEBHOOK)) == (
        AlertAction.TRIGGER,
        AlertAction.RESOLVE,
        AlertAction.CHANGE,
        AlertAction.WEBHOOK,
    )


def test_a_playbook_without_a_channel_is_refused_at_load(tmp_path: Any) -> None:
    path = tmp_path / "synth.yaml"
    path.write_text("playbooks: {oncall: {severity: {default: warning}}}\n")
    with pytest.raises(ConfigError, match=r"playbooks\.oncall: Value error, give routing_key"):
        load_settings(path)


def test_webhook_problems_name_the_field_and_never_the_url_or_secret() -> None:
    settings = Settings.model_validate(
        {
            "playbooks": {
                "a": {
                    "webhook": {
                        "url": "ftp://hooks.example.com/t0ken-abcdef123456",
                        "secret": SECRET,
                    }
                },
                "b": {"webhook": {"url": WEBHOOK["url"], "secret": "short-s3cret"}},
                "c": {"webhook": {"url": "env:SYNTH_TEST_UNSET_HOOK", "secret": SECRET}},
                "d": {"webhook": WEBHOOK},
            }
        }
    )
    problems = playbook_problems(settings, [])
    assert problems == [
        "playbooks.a.webhook.url: must be an absolute http:// or https:// URL",
        "playbooks.b.webhook.secret: needs at least 16 characters, this one has 12",
        "playbooks.c.webhook.url: environment variable SYNTH_TEST_UNSET_HOOK is not set",
    ]
    redactor = redactor_for(settings)
    text = redactor.text(f"posting to {WEBHOOK['url']} signed with {SECRET}")
    assert "t0ken" not in text
    assert SECRET not in text


def test_the_url_redactor_masks_the_url_and_its_token_parts() -> None:
    url = "https://bot:pa55word-xyz@hooks.example.com/services/T0KEN-abcdef123456?sig=q5ecr3t-9876"
    redactor = url_redactor(url, SECRET)
    for leak in (url, "T0KEN-abcdef123456", "q5ecr3t-9876", "pa55word-xyz", SECRET):
        assert leak not in redactor.text(f"HTTP 404: no route for {leak}")


def test_the_uptime_report_reads_a_webhook_copy_as_the_event_it_copies() -> None:
    from synth.store.uptime import _page_event

    trigger = webhook_event(pagerduty_trigger())
    at = datetime.now(UTC)
    event = _page_event(trigger.dedup_key, trigger.kind, at, trigger.payload)
    assert event is not None
    assert (event.dedup_key, event.kind) == ("synth/production/checkout", "trigger")
    change = NewOutboxEvent("synth/production/deploy:shop", "change", "oncall", {})
    assert _page_event("k", "webhook", at, webhook_event(change).payload) is None
