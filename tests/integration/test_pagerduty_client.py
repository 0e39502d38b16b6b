"""synth's PagerDuty sender with the real `pagerduty` client against the stand-in over
HTTPS: what is accepted, what is rejected for good, what is retried, and that a hung
PagerDuty costs one timeout, not the client's own sleeping retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pagerduty_standin import ROUTING_KEY, PagerDutyStandIn

from synth.alerting.pagerduty import PagerDutySender
from synth.config import PagerDutySettings
from synth.model import DeliveryResult

TRIGGER = {"payload": {"summary": "checkout failed", "source": "synth/eu", "severity": "error"}}


@pytest.fixture
def sender(tmp_path: Path, pagerduty: PagerDutyStandIn) -> Any:
    settings = PagerDutySettings(
        api_url=pagerduty.url, ca_file=tmp_path / "pagerduty-ca.pem", timeout=1.0
    )
    client = PagerDutySender(settings)
    yield client
    client.close()


def test_trigger_resolve_and_change_are_accepted(
    sender: PagerDutySender, pagerduty: PagerDutyStandIn
) -> None:
    assert sender.send("trigger", "k", TRIGGER, ROUTING_KEY).result is DeliveryResult.SENT
    assert sender.send("resolve", "k", {}, ROUTING_KEY).result is DeliveryResult.SENT
    change = {"payload": {"summary": "deploy 1.2"}, "links": [{"href": "https://x", "text": "x"}]}
    assert sender.send("change", "d", change, ROUTING_KEY).result is DeliveryResult.SENT
    assert [e.action for e in pagerduty.accepted()] == ["trigger", "resolve", "change"]
    assert pagerduty.accepted()[0].body["routing_key"] == ROUTING_KEY


@pytest.mark.parametrize(
    ("dedup_key", "event", "routing_key", "error"),
    [
        ("k", {"payload": {**TRIGGER["payload"], "summary": "x" * 1025}}, ROUTING_KEY, "summary"),
        ("k", {"payload": {**TRIGGER["payload"], "severity": "sev1"}}, ROUTING_KEY, "severity"),
        ("k", {"payload": {"summary": "s", "severity": "info"}}, ROUTING_KEY, "source"),
        ("k" * 256, TRIGGER, ROUTING_KEY, "dedup_key"),
        ("k", TRIGGER, ROUTING_KEY[:31], "routing_key"),
    ],
)
def test_an_invalid_event_is_rejected_not_retried(
    sender: PagerDutySender,
    pagerduty: PagerDutyStandIn,
    dedup_key: str,
    event: dict[str, Any],
    routing_key: str,
    error: str,
) -> None:
    delivery = sender.send("trigger", dedup_key, event, routing_key)
    assert delivery.result is DeliveryResult.REJECTED
    assert delivery.error is not None
    assert "HTTP 400" in delivery.error
    assert error in delivery.error
    assert pagerduty.attempts == 1
    assert pagerduty.accepted() == []
    if routing_key != ROUTING_KEY:
        assert routing_key not in delivery.error


@pytest.mark.parametrize("mode", ["429", "500"])
def test_throttling_and_server_errors_are_retried_by_the_outbox_not_the_client(
    sender: PagerDutySender, pagerduty: PagerDutyStandIn, mode: str
) -> None:
    pagerduty.set_mode(mode)
    started = time.monotonic()
    delivery = sender.send("trigger", "k", TRIGGER, ROUTING_KEY)
    assert delivery.result is DeliveryResult.RETRY
    assert delivery.error is not None
    assert f"HTTP {mode}" in delivery.error
    assert pagerduty.attempts == 1, "the client did not retry (and sleep) on its own"
    assert time.monotonic() - started < 1.0


def test_a_hung_pagerduty_costs_one_timeout(
    sender: PagerDutySender, pagerduty: PagerDutyStandIn
) -> None:
    pagerduty.set_mode("hang")
    started = time.monotonic()
    delivery = sender.send("trigger", "k", TRIGGER, ROUTING_KEY)
    elapsed = time.monotonic() - started
    assert delivery.result is DeliveryResult.RETRY
    assert delivery.error is not None
    assert "Timeout" in delivery.error
    assert 0.9 <= elapsed < 2.5, elapsed
    assert pagerduty.attempts == 1


def test_the_test_ca_is_required(tmp_path: Path, pagerduty: PagerDutyStandIn) -> None:
    untrusting = PagerDutySender(PagerDutySettings(api_url=pagerduty.url, timeout=1.0))
    try:
        delivery = untrusting.send("trigger", "k", TRIGGER, ROUTING_KEY)
    finally:
        untrusting.close()
    assert delivery.result is DeliveryResult.RETRY
    assert delivery.error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
    assert pagerduty.accepted() == []
