"""The store's alerting tables against SQLite and PostgreSQL: alert state round trips, the
outbox's per-key order and backoff, backlog figures, concurrent replicas, retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from postgres import postgres_server  # noqa: F401
from test_store import Backend, backend, store  # noqa: F401 - the SQLite/PostgreSQL fixtures

from synth.alerting.playbook import (
    Decision,
    IncidentState,
    LocationState,
    Rule,
    decide,
    observe,
)
from synth.store import AlertUpdate, NewOutboxEvent, OutboxStatus, Store

RULE = Rule(consecutive=1, resolve_after=1, reopen_after_s=0, retrigger_after_s=0)


def event(key: str, kind: str = "trigger", n: int = 0) -> NewOutboxEvent:
    return NewOutboxEvent(key, kind, "oncall", {"payload": {"summary": f"{key} #{n}"}})


async def feed(
    target: Store, location: str, failed: bool, decisions: list[Decision], *, origin: str = "o"
) -> AlertUpdate:
    def apply(incident: IncidentState | None, locations: list[LocationState]) -> AlertUpdate:
        now = datetime.now(UTC)
        own = next((s for s in locations if s.location == location), None)
        updated = observe(own, location, failed, now, RULE)
        others = [s for s in locations if s.location != location]
        new_incident, decision = decide(incident, [*others, updated], now, RULE)
        decisions.append(decision)
        events = (event("k", decision.value),) if decision is not Decision.NONE else ()
        return AlertUpdate(updated, new_incident, events)

    return await target.update_alert(
        check="checkout", env="prod", playbook="oncall", origin=origin, apply=apply
    )


async def test_alert_state_round_trips_and_events_are_stored_with_it(store: Store) -> None:  # noqa: F811
    decisions: list[Decision] = []
    await feed(store, "eu", True, decisions)
    await feed(store, "eu", True, decisions)
    assert decisions == [Decision.TRIGGER, Decision.NONE]
    assert await store.open_incidents() == {"oncall": 1}
    await feed(store, "eu", False, decisions)
    assert decisions[-1] is Decision.RESOLVE
    assert await store.open_incidents() == {}
    stored = await store.list_outbox()
    assert [(e.kind, e.status, e.origin) for e in stored] == [
        ("trigger", OutboxStatus.PENDING, "o"),
        ("resolve", OutboxStatus.PENDING, "o"),
    ]


async def test_outbox_sends_each_key_in_order_and_keys_independently(store: Store) -> None:  # noqa: F811
    await store.add_outbox([event("a", n=1), event("b", n=1), event("a", "resolve", 2)], origin="o")
    await store.add_outbox([event("c")], origin="elsewhere")
    due = await store.due_outbox(origin="o")
    assert [(e.dedup_key, e.kind) for e in due] == [("a", "trigger"), ("b", "trigger")]
    first_a, first_b = due

    # a's head backs off: a's later event waits behind it, b is not held up.
    later = datetime.now(UTC) + timedelta(seconds=60)
    await store.outbox_retry(first_a.id, attempts=1, next_attempt_at=later, error="HTTP 500")
    await store.outbox_done(first_b.id, status=OutboxStatus.SENT, attempts=1)
    assert await store.due_outbox(origin="o") == []
    depth, oldest = await store.outbox_backlog(origin="o")
    assert depth == 2
    assert oldest is not None
    assert oldest.tzinfo is not None
    assert datetime.now(UTC) - oldest < timedelta(seconds=30)

    due = await store.due_outbox(origin="o", now=later + timedelta(seconds=1))
    assert [(e.id, e.attempts, e.last_error) for e in due] == [(first_a.id, 1, "HTTP 500")]
    await store.outbox_done(first_a.id, status=OutboxStatus.DROPPED, attempts=2, error="HTTP 400")
    due = await store.due_outbox(origin="o")
    assert [(e.dedup_key, e.kind) for e in due] == [("a", "resolve")]
    assert await store.outbox_backlog(origin="elsewhere") == (
        1,
        (await store.list_outbox(origin="elsewhere"))[0].created_at,
    )


async def test_replicas_updating_at_once_trigger_once(backend: Backend) -> None:  # noqa: F811
    url = backend.new_url()
    stores = [await Store.open(url) for _ in range(4)]
    try:
        decisions: list[Decision] = []
        await asyncio.gather(
            *(feed(s, f"loc-{i}", True, decisions, origin=f"loc-{i}") for i, s in enumerate(stores))
        )
        assert sorted(decisions) == sorted([Decision.TRIGGER] + [Decision.NONE] * 3)
        assert len(await stores[0].list_outbox()) == 1
    finally:
        for s in stores:
            await s.close()


async def test_prune_drops_delivered_events_but_keeps_pending_ones(backend: Backend) -> None:  # noqa: F811
    url = backend.new_url()
    opened = await Store.open(url, max_age_s=3600)
    try:
        await opened.add_outbox([event("a"), event("b")], origin="o")
        sent = (await opened.due_outbox(origin="o"))[0]
        await opened.outbox_done(sent.id, status=OutboxStatus.SENT, attempts=1)
        await opened.prune(now=datetime.now(UTC) + timedelta(hours=2))
        left = await opened.list_outbox()
        assert [(e.dedup_key, e.status) for e in left] == [("b", OutboxStatus.PENDING)]
    finally:
        await opened.close()
