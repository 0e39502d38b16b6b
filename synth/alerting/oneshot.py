"""Paging without an agent: `synth run` in CI and `synth page test`.

These have no durable outbox (nothing runs after the command exits): events are sent at
once, in order, each retried with backoff within one overall deadline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TextIO

from synth.alerting import payloads
from synth.alerting.channel import Delivery, Notice
from synth.alerting.channels import configured, notice_events, readable_channels
from synth.alerting.engine import redactor_for
from synth.alerting.outbox import deliver_now
from synth.alerting.policy import playbook_name
from synth.config import ConfigError, Settings
from synth.model import CheckSpec, DeliveryResult, Phase, RunResult
from synth.store import NewOutboxEvent

DEADLINE_S = 60.0


def page_failures(
    settings: Settings,
    checks: Sequence[CheckSpec],
    results: Sequence[RunResult],
    out: TextIO,
    *,
    deadline_s: float = DEADLINE_S,
) -> bool:
    """Trigger the playbook of every failed run, with the playbook's pre-prod severity;
    True when every page was accepted. A one-off run has no history, so the trigger
    thresholds do not apply and nothing is resolved."""
    by_name = {c.name: c for c in checks}
    redactor = redactor_for(settings)
    events: list[NewOutboxEvent] = []
    for result in results:
        if result.passed:
            continue
        check = by_name.get(result.check)
        name = playbook_name(check, settings)
        if name is None:
            continue
        playbook, unreadable = readable_channels(settings.playbooks[name])
        for problem in unreadable:
            print(f"synth: not paging for {result.check}: playbooks.{name}.{problem}", file=out)
        severity = playbook.severity_for(Phase.PREPROD.value, result.environment)
        preprod = playbook.model_copy(update={"severity": {"default": severity}})
        trigger = payloads.trigger_event(
            result, playbook_name=name, playbook=preprod, check=check, redactor=redactor
        )
        events += notice_events(Notice(trigger), playbook)
    if not events:
        return True

    def report(event: NewOutboxEvent, delivery: Delivery) -> None:
        print(_describe(event, delivery), file=out)

    deliveries = deliver_now(settings, events, deadline_s=deadline_s, report=report)
    return all(d.result is DeliveryResult.SENT for d in deliveries)


def page_test(
    settings: Settings, name: str, out: TextIO, *, deadline_s: float = DEADLINE_S
) -> bool:
    """`synth page test`: send a test trigger and its resolve through playbook `name`."""
    if name not in settings.playbooks:
        known = ", ".join(sorted(settings.playbooks)) or "none configured"
        raise ConfigError([f"unknown playbook {name!r} (known: {known})"])
    playbook, unreadable = readable_channels(settings.playbooks[name])
    if unreadable:
        raise ConfigError([f"playbooks.{name}.{problem}" for problem in unreadable])
    tests = payloads.routing_test_events(
        name, location=settings.location, nonce=uuid.uuid4().hex[:12]
    )
    summary = f"synth test page for playbook {name} resolved"
    events = [
        e for t in tests for e in notice_events(Notice(t, resolved_summary=summary), playbook)
    ]
    channels = [channel.destination(settings.pagerduty) for channel in configured(playbook)]
    print(
        f"Sending a test trigger and its resolve through playbook {name} "
        f"(dedup key {tests[0].dedup_key}) to {' and '.join(channels)}",
        file=out,
    )

    def report(event: NewOutboxEvent, delivery: Delivery) -> None:
        print(_describe(event, delivery), file=out)

    deliveries = deliver_now(settings, events, deadline_s=deadline_s, report=report)
    return all(d.result is DeliveryResult.SENT for d in deliveries)


def _describe(event: NewOutboxEvent, delivery: Delivery) -> str:
    action = event.payload.get("action")  # a copy of a PagerDuty event says which
    what = f"{event.kind} {action}" if isinstance(action, str) else event.kind
    key = event.payload.get("dedup_key", event.dedup_key)
    if delivery.result is DeliveryResult.SENT:
        return f"  {what} sent ({key})"
    verb = "rejected" if delivery.result is DeliveryResult.REJECTED else "not delivered"
    return f"  {what} {verb} ({key}): {delivery.error}"
