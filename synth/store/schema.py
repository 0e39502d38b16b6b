"""The current shape of the store's tables, as the queries see it.

`migrations.py` builds this shape step by step; a test checks that a migrated database
matches these definitions, so a change here needs a new migration step there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


def as_utc(moment: datetime) -> datetime:
    """`moment` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no time zones: it gets naive UTC text, which still sorts correctly.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = as_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class JSONText(sa.TypeDecorator[Any]):
    """A JSON value kept as text: the same bytes on every backend, and no JSONB rules
    (no NUL escapes, no NaN) to trip over. The store never queries inside it."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.Text, primary_key=True),
    sa.Column("check_name", sa.Text, nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_type", sa.Text, nullable=True),
    sa.Column("failed_step", sa.Text, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("trace_id", sa.Text, nullable=False),
    sa.Column("deploy_id", sa.Text, nullable=True),
    sa.Column("result", JSONText, nullable=False),
)
sa.Index(
    "ix_runs_check_env_started",
    runs.c.check_name,
    runs.c.environment,
    runs.c.started_at.desc(),
)
sa.Index("ix_runs_phase", runs.c.phase)
sa.Index("ix_runs_deploy_id", runs.c.deploy_id)
sa.Index("ix_runs_started_at", runs.c.started_at)

deploys = sa.Table(
    "deploys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("commit_sha", sa.Text, nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("labels", JSONText, nullable=False),
    sa.Column("tags", JSONText, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("verdict", JSONText, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("run_ids", JSONText, nullable=False),
    sa.Column("owner", sa.Text, nullable=True),
    sa.Column("request", JSONText, nullable=True),
)
sa.Index(
    "ix_deploys_service_env_created",
    deploys.c.service,
    deploys.c.environment,
    deploys.c.created_at,
)
sa.Index("ux_deploys_idempotency_key", deploys.c.idempotency_key, unique=True)

baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("check_name", sa.Text, primary_key=True),
    sa.Column("environment", sa.Text, primary_key=True),
    sa.Column("step", sa.Text, primary_key=True),
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("samples", sa.Integer, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
sa.Index(
    "ix_baselines_check_env_updated",
    baselines.c.check_name,
    baselines.c.environment,
    baselines.c.updated_at.desc(),
)


outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("dedup_key", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("playbook", sa.Text, nullable=False),
    sa.Column("payload", JSONText, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)
sa.Index("ix_outbox_origin_status_id", outbox.c.origin, outbox.c.status, outbox.c.id)
sa.Index("ix_outbox_created_at", outbox.c.created_at)

alert_state = sa.Table(
    "alert_state",
    metadata,
    sa.Column("check_name", sa.Text, primary_key=True),
    sa.Column("environment", sa.Text, primary_key=True),
    sa.Column("location", sa.Text, primary_key=True),
    sa.Column("playbook", sa.Text, nullable=False),
    sa.Column("recent", JSONText, nullable=False),
    sa.Column("consecutive_failures", sa.Integer, nullable=False),
    sa.Column("consecutive_passes", sa.Integer, nullable=False),
    sa.Column("failing", sa.Boolean, nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("last_transition_at", UTCDateTime, nullable=True),
    sa.Column("triggered_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("failing_since", UTCDateTime, nullable=True),
)

cluster_members = sa.Table(
    "cluster_members",
    metadata,
    sa.Column("location", sa.Text, primary_key=True),
    sa.Column("member_id", sa.Text, primary_key=True),
    sa.Column("instance", sa.Text, nullable=False),
    sa.Column("epoch", sa.Integer, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("joined_at", UTCDateTime, nullable=False),
    sa.Column("runs_from", UTCDateTime, nullable=False),
    sa.Column("renewed_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=False),
    sa.Column("owned_checks", sa.Integer, nullable=False),
)

run_artifacts = sa.Table(
    "run_artifacts",
    metadata,
    sa.Column(
        "run_id",
        sa.Text,
        sa.ForeignKey("runs.run_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("step", sa.Text, nullable=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

retry_requests = sa.Table(
    "retry_requests",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("check_name", sa.Text, nullable=False),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("from_location", sa.Text, nullable=False),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("deadline", UTCDateTime, nullable=False),
    sa.Column("claimed_by", sa.Text, nullable=True),
    sa.Column("claimed_location", sa.Text, nullable=True),
    sa.Column("result", JSONText, nullable=True),
    sa.Column("done_at", UTCDateTime, nullable=True),
)

silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("matchers", JSONText, nullable=False),
    sa.Column("all_checks", sa.Boolean, nullable=False),
    sa.Column("deploys", sa.Boolean, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
sa.Index("ix_silences_ends_at", silences.c.ends_at)

# Runs per check × environment × location and hour (scheduled and deploy runs): what the
# pages' uptime and status read, so that a page of 5,000 checks never counts raw runs.
run_hours = sa.Table(
    "run_hours",
    metadata,
    sa.Column("check_name", sa.Text, primary_key=True),
    sa.Column("environment", sa.Text, primary_key=True),
    sa.Column("location", sa.Text, primary_key=True),
    sa.Column("hour", UTCDateTime, primary_key=True),
    sa.Column("passed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("last_failed_at", UTCDateTime, nullable=True),
)
sa.Index("ix_run_hours_hour", run_hours.c.hour)
# Failed runs by time, for "caught before production" (a small part of all runs).
sa.Index(
    "ix_runs_failed_started",
    runs.c.started_at,
    sqlite_where=runs.c.status == "failed",
    postgresql_where=runs.c.status == "failed",
)

# The newest scheduled or deploy run of each check × environment × location, and its last
# failure: the overview's status, read for every check without touching the runs.
run_latest = sa.Table(
    "run_latest",
    metadata,
    sa.Column("check_name", sa.Text, primary_key=True),
    sa.Column("environment", sa.Text, primary_key=True),
    sa.Column("location", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("failure_type", sa.Text, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("last_failed_at", UTCDateTime, nullable=True),
)
