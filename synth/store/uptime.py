"""What the uptime report reads from the store (synth.uptime): run counts per check ×
environment by outcome and failure type, counted in the database; and the incidents the
playbook paged for (trigger and resolve events of the outbox, PagerDuty's or a webhook's),
each with the start of the failure streak that led to it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.model import Status
from synth.store.schema import outbox, runs

MAX_INCIDENTS = 1000
"""Incidents a report reads (newest kept); a report over more is truncated and says so."""


@dataclass(frozen=True, slots=True)
class RunCount:
    check: str
    environment: str
    service: str
    status: str
    retried: bool
    failure_type: str | None
    count: int


@dataclass(frozen=True, slots=True)
class PageEvent:
    dedup_key: str
    kind: str
    at: datetime
    payload: Any


async def run_counts(
    connection: AsyncConnection,
    *,
    since: datetime,
    until: datetime,
    phases: Collection[str],
    service: str | None,
    environment: str | None,
) -> list[RunCount]:
    retried = (runs.c.attempts > 1).label("retried")
    query = (
        sa.select(
            runs.c.check_name,
            runs.c.environment,
            runs.c.service,
            runs.c.status,
            retried,
            runs.c.failure_type,
            sa.func.count().label("n"),
        )
        .where(runs.c.started_at >= since, runs.c.started_at < until)
        .where(runs.c.phase.in_(sorted(phases)))
        .group_by(
            runs.c.check_name,
            runs.c.environment,
            runs.c.service,
            runs.c.status,
            retried,
            runs.c.failure_type,
        )
    )
    if service is not None:
        query = query.where(runs.c.service == service)
    if environment is not None:
        query = query.where(runs.c.environment == environment)
    rows = (await connection.execute(query)).all()
    return [
        RunCount(
            check=row.check_name,
            environment=row.environment,
            service=row.service,
            status=row.status,
            retried=bool(row.retried) and row.status == Status.PASSED.value,
            failure_type=row.failure_type,
            count=int(row.n),
        )
        for row in rows
    ]


PAGE_KINDS = ("trigger", "resolve")
WEBHOOK_KIND = "webhook"
EVENTS_MAX = MAX_INCIDENTS * 4  # a trigger and a resolve, to PagerDuty and to a webhook


async def page_events(
    connection: AsyncConnection, *, since: datetime, until: datetime
) -> tuple[list[PageEvent], bool]:
    """Trigger and resolve events created in the period, oldest first — PagerDuty's and
    the webhook copies' (as the PagerDuty event they copy: a playbook may page through a
    webhook alone); and whether there were more than EVENTS_MAX (the oldest left out)."""
    query = (
        sa.select(outbox.c.dedup_key, outbox.c.kind, outbox.c.created_at, outbox.c.payload)
        .where(outbox.c.kind.in_((*PAGE_KINDS, WEBHOOK_KIND)))
        .where(outbox.c.created_at >= since, outbox.c.created_at < until)
        .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
        .limit(EVENTS_MAX + 1)
    )
    rows = (await connection.execute(query)).all()
    truncated = len(rows) > EVENTS_MAX
    events = [
        event
        for r in rows[:EVENTS_MAX]
        if (event := _page_event(r.dedup_key, r.kind, r.created_at, r.payload)) is not None
    ]
    return list(reversed(events)), truncated


def _page_event(key: str, kind: str, at: datetime, payload: Any) -> PageEvent | None:
    if kind != WEBHOOK_KIND:
        return PageEvent(key, kind, at, payload)
    if not isinstance(payload, dict) or payload.get("action") not in PAGE_KINDS:
        return None  # a deploy's change event
    return PageEvent(str(payload.get("dedup_key")), str(payload["action"]), at, payload)


async def streak_start(
    connection: AsyncConnection, *, check: str, environment: str, location: str, before: datetime
) -> datetime | None:
    """When the failure streak that ended in a page at `before` began: the first failed
    run after the last pass before it (None: no failed run found)."""
    last_pass = (
        sa.select(sa.func.max(runs.c.started_at))
        .where(runs.c.check_name == check, runs.c.environment == environment)
        .where(runs.c.location == location)
        .where(runs.c.status == Status.PASSED.value, runs.c.started_at <= before)
        .scalar_subquery()
    )
    query = (
        sa.select(sa.func.min(runs.c.started_at))
        .where(runs.c.check_name == check, runs.c.environment == environment)
        .where(runs.c.location == location)
        .where(runs.c.status == Status.FAILED.value, runs.c.started_at <= before)
        .where(sa.or_(last_pass.is_(None), runs.c.started_at > last_pass))
    )
    value = await connection.scalar(query)
    return value if isinstance(value, datetime) else None
