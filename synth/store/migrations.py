"""Schema migrations: an ordered list of steps, each applied once in its own transaction.

Step N brings the database to schema version N; `schema_version` records each step applied.
Steps are frozen once released: define the tables a step creates inside the step (not by
reference to `schema.py`, which always describes the newest version), and change the
schema only by appending a step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from synth.store.engine import transaction
from synth.store.records import StoreError
from synth.store.schema import JSONText, UTCDateTime, schema_version

Migration = Callable[[sa.Connection], None]

# Any constant will do: it only has to be the same in every synth process sharing a
# PostgreSQL database, so that two agents starting together migrate one at a time.
_PG_LOCK_KEY = 0x73796E7468


def _v1_initial(connection: sa.Connection) -> None:
    md = sa.MetaData()
    runs = sa.Table(
        "runs",
        md,
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
        "ix_runs_check_env_started", runs.c.check_name, runs.c.environment, runs.c.started_at.desc()
    )
    sa.Index("ix_runs_phase", runs.c.phase)
    sa.Index("ix_runs_deploy_id", runs.c.deploy_id)
    sa.Index("ix_runs_started_at", runs.c.started_at)
    deploys = sa.Table(
        "deploys",
        md,
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
    )
    sa.Index(
        "ix_deploys_service_env_created",
        deploys.c.service,
        deploys.c.environment,
        deploys.c.created_at,
    )
    sa.Index("ux_deploys_idempotency_key", deploys.c.idempotency_key, unique=True)
    md.create_all(connection)


def _v2_alerting(connection: sa.Connection) -> None:
    md = sa.MetaData()
    outbox = sa.Table(
        "outbox",
        md,
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
    sa.Table(
        "alert_state",
        md,
        sa.Column("check_name", sa.Text, primary_key=True),
        sa.Column("environment", sa.Text, primary_key=True),
        # "" is the incident row of the check × environment; others are locations.
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
    )
    md.create_all(connection)


def _v3_baselines(connection: sa.Connection) -> None:
    md = sa.MetaData()
    baselines = sa.Table(
        "baselines",
        md,
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
    md.create_all(connection)


def _v4_failing_since(connection: sa.Connection) -> None:
    # For `trigger: {failing_for: ...}`: when the location's current failure streak began.
    column_type = UTCDateTime().compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE alert_state ADD COLUMN failing_since {column_type}"))


def _v5_cluster(connection: sa.Connection) -> None:
    # Cluster membership (synth.cluster.membership): one row per agent, lease times from the
    # database's clock; and which member verifies a deploy, with what its event asked for,
    # so that a survivor can run it again when that member dies.
    md = sa.MetaData()
    sa.Table(
        "cluster_members",
        md,
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
    md.create_all(connection)
    json_type = JSONText().compile(dialect=connection.dialect)
    connection.execute(sa.text("ALTER TABLE deploys ADD COLUMN owner TEXT"))
    connection.execute(sa.text(f"ALTER TABLE deploys ADD COLUMN request {json_type}"))


def _v6_run_artifacts(connection: sa.Connection) -> None:
    # The files of a run (browser screenshots, Playwright traces, console logs), written
    # with the run in one transaction and deleted with it (retention deletes them first;
    # the cascade keeps any other delete of a run from leaving them behind).
    md = sa.MetaData()
    sa.Table("runs", md, sa.Column("run_id", sa.Text, primary_key=True))
    sa.Table(
        "run_artifacts",
        md,
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
    md.tables["run_artifacts"].create(connection)


def _v7_retry_requests(connection: sa.Connection) -> None:
    # A failed run's retry asked of another location (synth.agent.remote_retry): claimed
    # by a live member there, answered with its run, withdrawn by the asker.
    md = sa.MetaData()
    sa.Table(
        "retry_requests",
        md,
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
    md.create_all(connection)


def _v8_silences(connection: sa.Connection) -> None:
    # Silences from `POST /v1/silences` (synth.store.silences): kept so that they survive
    # restarts and every agent sharing the store honours them.
    md = sa.MetaData()
    silences = sa.Table(
        "silences",
        md,
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
    md.create_all(connection)


def _v9_run_hours(connection: sa.Connection) -> None:
    # Hourly run counts per check × environment × location and each pair's newest run
    # (synth.store.rollups), kept by a trigger on `runs` and filled from the runs already
    # stored; and an index of failed runs by time.
    md = sa.MetaData()
    hours = sa.Table(
        "run_hours",
        md,
        sa.Column("check_name", sa.Text, primary_key=True),
        sa.Column("environment", sa.Text, primary_key=True),
        sa.Column("location", sa.Text, primary_key=True),
        sa.Column("hour", UTCDateTime, primary_key=True),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("duration_s", sa.Float, nullable=False),
        sa.Column("last_failed_at", UTCDateTime, nullable=True),
    )
    sa.Index("ix_run_hours_hour", hours.c.hour)
    latest = sa.Table(
        "run_latest",
        md,
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
    md.create_all(connection)
    runs = sa.table(
        "runs",
        *(sa.column(name, sa.Text) for name in ("run_id", "check_name", "environment")),
        *(sa.column(name, sa.Text) for name in ("location", "phase", "status", "failure_type")),
        sa.column("started_at", UTCDateTime),
        sa.column("duration_s", sa.Float),
    )
    sa.Index(
        "ix_runs_failed_started",
        sa.Table("runs", sa.MetaData(), sa.Column("started_at"), sa.Column("status")).c.started_at,
        sqlite_where=sa.text("status = 'failed'"),
        postgresql_where=sa.text("status = 'failed'"),
    ).create(connection)
    if connection.dialect.name == "sqlite":
        # UTCDateTime keeps naive UTC text ("YYYY-MM-DD HH:MM:SS.ffffff") on SQLite.
        hour: sa.ColumnElement[Any] = sa.func.substr(runs.c.started_at, 1, 13).concat(
            ":00:00.000000"
        )
    else:
        # In UTC whatever the session's time zone (an hour starts at :30 in some zones).
        utc = sa.func.timezone("UTC", runs.c.started_at)
        hour = sa.func.timezone("UTC", sa.func.date_trunc("hour", utc))
    failed = runs.c.status == "failed"
    backfill = (
        sa.select(
            runs.c.check_name,
            runs.c.environment,
            runs.c.location,
            hour.label("hour"),
            sa.func.sum(sa.case((failed, 0), else_=1)),
            sa.func.sum(sa.case((failed, 1), else_=0)),
            sa.func.sum(runs.c.duration_s),
            sa.func.max(sa.case((failed, runs.c.started_at), else_=None)),
        )
        .where(runs.c.phase.in_(("scheduled", "deploy")))
        .group_by(runs.c.check_name, runs.c.environment, runs.c.location, hour)
    )
    connection.execute(
        hours.insert().from_select(
            [
                "check_name",
                "environment",
                "location",
                "hour",
                "passed",
                "failed",
                "duration_s",
                "last_failed_at",
            ],
            backfill,
        )
    )
    _backfill_latest(connection, runs, hours, latest)
    for statement in _ROLLUP_TRIGGER[connection.dialect.name]:
        connection.exec_driver_sql(statement)


# The rollups follow every run inserted, in its statement, whoever inserts it: no round trip
# of its own, and a run inserted twice (ON CONFLICT DO NOTHING) is not counted twice.
_LATEST_SET = """
    run_id = CASE WHEN excluded.started_at >= run_latest.started_at
                  THEN excluded.run_id ELSE run_latest.run_id END,
    status = CASE WHEN excluded.started_at >= run_latest.started_at
                  THEN excluded.status ELSE run_latest.status END,
    failure_type = CASE WHEN excluded.started_at >= run_latest.started_at
                  THEN excluded.failure_type ELSE run_latest.failure_type END,
    duration_s = CASE WHEN excluded.started_at >= run_latest.started_at
                  THEN excluded.duration_s ELSE run_latest.duration_s END,
    started_at = CASE WHEN excluded.started_at >= run_latest.started_at
                  THEN excluded.started_at ELSE run_latest.started_at END,
    last_failed_at = CASE WHEN excluded.last_failed_at IS NOT NULL
                  AND (run_latest.last_failed_at IS NULL
                       OR excluded.last_failed_at > run_latest.last_failed_at)
                  THEN excluded.last_failed_at ELSE run_latest.last_failed_at END"""
_HOURS_SET = """
    passed = run_hours.passed + excluded.passed,
    failed = run_hours.failed + excluded.failed,
    duration_s = run_hours.duration_s + excluded.duration_s,
    last_failed_at = CASE WHEN excluded.last_failed_at IS NOT NULL
                  AND (run_hours.last_failed_at IS NULL
                       OR excluded.last_failed_at > run_hours.last_failed_at)
                  THEN excluded.last_failed_at ELSE run_hours.last_failed_at END"""


def _rollup_inserts(hour: str) -> str:
    failed_at = "CASE WHEN NEW.status = 'passed' THEN NULL ELSE NEW.started_at END"
    return f"""
    INSERT INTO run_hours (check_name, environment, location, hour, passed, failed,
                           duration_s, last_failed_at)
    VALUES (NEW.check_name, NEW.environment, NEW.location, {hour},
            CASE WHEN NEW.status = 'passed' THEN 1 ELSE 0 END,
            CASE WHEN NEW.status = 'passed' THEN 0 ELSE 1 END,
            NEW.duration_s, {failed_at})
    ON CONFLICT (check_name, environment, location, hour) DO UPDATE SET {_HOURS_SET};
    INSERT INTO run_latest (check_name, environment, location, run_id, status, failure_type,
                            started_at, duration_s, last_failed_at)
    VALUES (NEW.check_name, NEW.environment, NEW.location, NEW.run_id, NEW.status,
            NEW.failure_type, NEW.started_at, NEW.duration_s, {failed_at})
    ON CONFLICT (check_name, environment, location) DO UPDATE SET {_LATEST_SET};"""  # noqa: S608 (constant SQL)


_COUNTED = "NEW.phase IN ('scheduled', 'deploy')"
_ROLLUP_TRIGGER = {
    # UTCDateTime keeps naive UTC text on SQLite: the hour is a prefix of it.
    "sqlite": [
        f"""CREATE TRIGGER runs_rollups AFTER INSERT ON runs WHEN {_COUNTED} BEGIN
        {_rollup_inserts("substr(NEW.started_at, 1, 13) || ':00:00.000000'")}
        END"""
    ],
    "postgresql": [
        f"""CREATE FUNCTION synth_runs_rollups() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
        {_rollup_inserts("timezone('UTC', date_trunc('hour', timezone('UTC', NEW.started_at)))")}
        RETURN NULL;
        END $$""",
        f"""CREATE TRIGGER runs_rollups AFTER INSERT ON runs FOR EACH ROW WHEN ({_COUNTED})
        EXECUTE FUNCTION synth_runs_rollups()""",
    ],
}


def _backfill_latest(
    connection: sa.Connection, runs: sa.TableClause, hours: sa.Table, latest: sa.Table
) -> None:
    """The newest counted run of each pair the hourly counts know, one indexed query each."""
    counted = runs.c.phase.in_(("scheduled", "deploy"))
    pairs = connection.execute(
        sa.select(hours.c.check_name, hours.c.environment, hours.c.location).distinct()
    ).all()
    for check, env, location in pairs:
        pair = sa.and_(
            runs.c.check_name == check,
            runs.c.environment == env,
            runs.c.location == location,
            counted,
        )
        newest = connection.execute(
            sa.select(runs.c.run_id, runs.c.status, runs.c.failure_type, runs.c.started_at)
            .add_columns(runs.c.duration_s)
            .where(pair)
            .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
            .limit(1)
        ).first()
        if newest is None:
            continue
        failed_at = connection.scalar(
            sa.select(sa.func.max(hours.c.last_failed_at)).where(
                hours.c.check_name == check,
                hours.c.environment == env,
                hours.c.location == location,
            )
        )
        connection.execute(
            latest.insert().values(
                check_name=check,
                environment=env,
                location=location,
                run_id=newest.run_id,
                status=newest.status,
                failure_type=newest.failure_type,
                started_at=newest.started_at,
                duration_s=newest.duration_s,
                last_failed_at=failed_at,
            )
        )


MIGRATIONS: tuple[Migration, ...] = (
    _v1_initial,
    _v2_alerting,
    _v3_baselines,
    _v4_failing_since,
    _v5_cluster,
    _v6_run_artifacts,
    _v7_retry_requests,
    _v8_silences,
    _v9_run_hours,
)
LATEST_VERSION = len(MIGRATIONS)


async def migrate(engine: AsyncEngine) -> int:
    """Bring the database to LATEST_VERSION and return it; a no-op when it is there already.

    Raises StoreError for a database written by a newer synth (a higher version than this
    one knows): running on would misread it.
    """
    async with _locked(engine) as connection:
        await connection.run_sync(schema_version.create, checkfirst=True)
        version = await _current_version(connection)
    if version > LATEST_VERSION:
        raise StoreError(
            f"the database has schema version {version}, newer than this synth knows "
            f"({LATEST_VERSION}); it was written by a newer synth: upgrade synth"
        )
    for target in range(version + 1, LATEST_VERSION + 1):
        async with _locked(engine) as connection:
            if await _current_version(connection) >= target:
                continue  # another process applied it meanwhile
            await connection.run_sync(MIGRATIONS[target - 1])
            await connection.execute(
                sa.insert(schema_version).values(version=target, applied_at=datetime.now(UTC))
            )
    return LATEST_VERSION


async def _current_version(connection: AsyncConnection) -> int:
    value = await connection.scalar(sa.select(sa.func.max(schema_version.c.version)))
    return int(value or 0)


@asynccontextmanager
async def _locked(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction that no other synth process migrates alongside (SQLite: BEGIN
    IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock)."""
    async with transaction(engine, write=True) as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.literal(_PG_LOCK_KEY)))
            )
        yield connection
