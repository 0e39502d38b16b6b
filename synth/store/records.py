"""What the store hands back: run summaries, deploy records and its one error type."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from synth.alerting.playbook import IncidentState, LocationState
from synth.errors import SynthError
from synth.model import FailureType, Phase, Status


class StoreError(SynthError):
    """The store could not do what was asked (database unreachable, locked, corrupt, or
    from a newer synth). The message never contains the database password."""


class StoreRefused(StoreError):
    """The database refused this data (text it cannot encode, such as a lone surrogate, or
    NUL in PostgreSQL): retrying the same record can never succeed."""


class IdempotencyKeyConflict(StoreError):
    """A different deploy already holds this idempotency key."""


class DeployStatus(enum.StrEnum):
    """Where a deploy's verification stands."""

    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The indexed columns of a stored run: enough for lists, without loading its steps."""

    run_id: str
    check: str
    service: str
    environment: str
    phase: Phase
    location: str
    status: Status
    failure_type: FailureType | None
    failed_step: str | None
    started_at: datetime
    duration_s: float
    attempts: int
    trace_id: str
    deploy_id: str | None


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What the store knows of one stored artifact of a run, without its bytes."""

    run_id: str
    name: str
    content_type: str
    size: int
    step: str | None = None


@dataclass(frozen=True, slots=True)
class DeployRecord:
    """A deploy the agent was told about, its verification runs and its verdict.

    Datetimes come back timezone-aware in UTC; a naive datetime given to the store is taken
    to be UTC already.
    """

    id: str
    service: str
    environment: str
    version: str
    created_at: datetime
    updated_at: datetime
    status: DeployStatus = DeployStatus.PENDING
    idempotency_key: str | None = None
    commit: str | None = None
    url: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    verdict: dict[str, Any] | None = None
    finished_at: datetime | None = None
    run_ids: tuple[str, ...] = ()
    # The cluster member verifying it, and the event's own settle/window/interval, so that
    # a survivor can verify it again if that member dies (None before schema version 5).
    owner: str | None = None
    request: dict[str, Any] | None = None


def deploy_to_dict(record: DeployRecord) -> dict[str, Any]:
    """The API shape of a deploy record (`GET /v1/deploys/{id}`, the CD hooks)."""
    return {
        "id": record.id,
        "idempotency_key": record.idempotency_key,
        "service": record.service,
        "environment": record.environment,
        "version": record.version,
        "commit": record.commit,
        "url": record.url,
        "labels": dict(record.labels),
        "tags": list(record.tags),
        "status": record.status.value,
        "verdict": record.verdict,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "run_ids": list(record.run_ids),
        # The cluster member verifying it (its id; None outside a cluster).
        "verified_by": record.owner.rsplit("/", 1)[0] if record.owner else None,
        "links": {"self": f"/v1/deploys/{record.id}"},
    }


class OutboxStatus(enum.StrEnum):
    """Where an outbox event stands."""

    PENDING = "pending"
    SENT = "sent"
    DROPPED = "dropped"


@dataclass(frozen=True, slots=True)
class NewOutboxEvent:
    """An alert to deliver: a PagerDuty event or a Slack message, without any secret (the
    routing key or webhook URL is looked up from `playbook` when it is sent)."""

    dedup_key: str
    kind: str
    playbook: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A stored outbox event, waiting or done."""

    id: int
    origin: str
    dedup_key: str
    kind: str
    playbook: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class AlertUpdate:
    """What one run outcome changes: its location's state, the incident, and the events
    to deliver (written in the same transaction, so none is lost or sent without it)."""

    location: LocationState
    incident: IncidentState
    events: tuple[NewOutboxEvent, ...] = ()
