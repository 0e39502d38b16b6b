"""The store's alerting tables: alert state per check × environment × location, and the
outbox of events waiting to be delivered. Queries only; `Store` wraps them in
transactions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.alerting.playbook import IncidentState, LocationState
from synth.store.records import NewOutboxEvent, OutboxEvent, OutboxStatus
from synth.store.schema import alert_state, outbox

INCIDENT_ROW = ""  # the location value of the incident row (a real location is never empty)


async def lock_alert(connection: AsyncConnection, check: str, env: str) -> None:
    """Serialise alert updates of one check × environment across processes (PostgreSQL;
    SQLite's BEGIN IMMEDIATE already does)."""
    if connection.dialect.name == "postgresql":
        key = sa.func.hashtext(sa.literal(f"synth-alert/{env}/{check}"))
        await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


async def read_alert(
    connection: AsyncConnection, check: str, env: str
) -> tuple[IncidentState | None, list[LocationState]]:
    rows = (
        await connection.execute(
            sa.select(alert_state).where(
                alert_state.c.check_name == check, alert_state.c.environment == env
            )
        )
    ).all()
    incident: IncidentState | None = None
    locations: list[LocationState] = []
    for row in rows:
        m = row._mapping
        if m["location"] == INCIDENT_ROW:
            incident = IncidentState(
                open=bool(m["open"]),
                opened_at=m["opened_at"],
                resolved_at=m["resolved_at"],
                last_transition_at=m["last_transition_at"],
                triggered_at=m["triggered_at"],
            )
        else:
            locations.append(
                LocationState(
                    location=m["location"],
                    recent=tuple(bool(x) for x in m["recent"]),
                    consecutive_failures=m["consecutive_failures"],
                    consecutive_passes=m["consecutive_passes"],
                    failing=bool(m["failing"]),
                    updated_at=m["updated_at"],
                    failing_since=m["failing_since"],
                )
            )
    return incident, locations


def location_row(
    check: str, env: str, playbook: str, state: LocationState, now: datetime
) -> dict[str, Any]:
    return {
        "check_name": check,
        "environment": env,
        "location": state.location,
        "playbook": playbook,
        "recent": list(state.recent),
        "consecutive_failures": state.consecutive_failures,
        "consecutive_passes": state.consecutive_passes,
        "failing": state.failing,
        "open": False,
        "opened_at": None,
        "resolved_at": None,
        "last_transition_at": None,
        "triggered_at": None,
        "updated_at": state.updated_at or now,
        "failing_since": state.failing_since,
    }


def incident_row(
    check: str, env: str, playbook: str, state: IncidentState, now: datetime
) -> dict[str, Any]:
    return {
        "check_name": check,
        "environment": env,
        "location": INCIDENT_ROW,
        "playbook": playbook,
        "recent": [],
        "consecutive_failures": 0,
        "consecutive_passes": 0,
        "failing": state.open,
        "open": state.open,
        "opened_at": state.opened_at,
        "resolved_at": state.resolved_at,
        "last_transition_at": state.last_transition_at,
        "triggered_at": state.triggered_at,
        "updated_at": now,
        "failing_since": None,
    }


def outbox_rows(
    events: Sequence[NewOutboxEvent], origin: str, now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "origin": origin,
            "dedup_key": e.dedup_key,
            "kind": e.kind,
            "playbook": e.playbook,
            "payload": e.payload,
            "status": OutboxStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "sent_at": None,
            "last_error": None,
        }
        for e in events
    ]


def due_query(origin: str, now: datetime, limit: int) -> sa.Select[Any]:
    """The oldest pending event of each dedup key, if it is due: later events of a key wait
    for it, so each key's events go out in order."""
    head = outbox.alias("head")
    first_pending = (
        sa.select(sa.func.min(head.c.id))
        .where(
            head.c.origin == origin,
            head.c.status == OutboxStatus.PENDING.value,
            head.c.dedup_key == outbox.c.dedup_key,
        )
        .scalar_subquery()
    )
    return (
        sa.select(outbox)
        .where(
            outbox.c.origin == origin,
            outbox.c.status == OutboxStatus.PENDING.value,
            outbox.c.id == first_pending,
            outbox.c.next_attempt_at <= now,
        )
        .order_by(outbox.c.id)
        .limit(limit)
    )


def outbox_event(m: sa.RowMapping) -> OutboxEvent:
    return OutboxEvent(
        id=m["id"],
        origin=m["origin"],
        dedup_key=m["dedup_key"],
        kind=m["kind"],
        playbook=m["playbook"],
        payload=m["payload"],
        status=OutboxStatus(m["status"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        created_at=m["created_at"],
        sent_at=m["sent_at"],
        last_error=m["last_error"],
    )
