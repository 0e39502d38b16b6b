"""The agent's store: run results, deploys and their verdicts, in SQLite or PostgreSQL.

One code path for both backends (SQLAlchemy Core, async); the URL picks the database.
Every public method raises StoreError when the database fails, so the agent can report
itself unready and try again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import synth.store.alerts as alerts
import synth.store.artifacts as artifacts
import synth.store.flaky_history as flaky_history
import synth.store.rows as table_rows
from synth.alerting.playbook import IncidentState, LocationState
from synth.baseline.record import StepBaseline
from synth.codec import run_from_dict
from synth.model import Phase, RunResult, Status
from synth.store.cluster import ClusterTable
from synth.store.engine import (
    create_engine,
    describe_error,
    display_url,
    parse_url,
    refuses_the_data,
    transaction,
)
from synth.store.migrations import migrate
from synth.store.records import (
    AlertUpdate,
    ArtifactInfo,
    DeployRecord,
    DeployStatus,
    IdempotencyKeyConflict,
    NewOutboxEvent,
    OutboxEvent,
    OutboxStatus,
    RunSummary,
    StoreError,
    StoreRefused,
)
from synth.store.remote_retries import RetryTable
from synth.store.retention import Pruner
from synth.store.schema import (
    alert_state,
    as_utc,
    baselines,
    deploys,
    outbox,
    run_artifacts,
    runs,
)
from synth.store.silences import SilenceTable

log = logging.getLogger("synth.store")

PING_TIMEOUT_S = 2.0
MAX_LIST_LIMIT = 1000
# Versions of one check × environment × step kept; older ones are dropped as new arrive.
MAX_BASELINE_VERSIONS = 10
MAX_BASELINE_ROWS = 2000


class Store:
    """Run results and deploys, kept for `max_age_s` and at most `max_runs_per_check` runs
    per check × environment (see `prune`). Open with `await Store.open(url)`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_age_s: float,
        max_runs_per_check: int,
        prune_batch_size: int,
        op_timeout_s: float,
    ) -> None:
        self._engine = engine
        self._password = engine.url.password
        self._max_age = timedelta(seconds=max_age_s)
        self._max_runs = max_runs_per_check
        self._batch = prune_batch_size
        self._op_timeout_s = op_timeout_s
        self._closed = False
        # SQLite has one writer at a time: queue our own writers here rather than in
        # SQLite's busy handler, which polls with sleeps.
        self._write_lock: AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self.url = display_url(engine.url)
        self.cluster = ClusterTable(self._transaction)
        self.retries = RetryTable(self._transaction)
        self.silences = SilenceTable(self._transaction)

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        max_age_s: float = 30 * 86400,
        max_runs_per_check: int = 10_000,
        prune_batch_size: int = 500,
        op_timeout_s: float = 30.0,
    ) -> Store:
        """Connect to `url` and migrate its schema to this synth's version.

        Raises StoreError when the database is unreachable (within about 5 s), cannot be
        migrated, or was written by a newer synth.
        """
        if max_age_s <= 0 or max_runs_per_check < 1 or prune_batch_size < 1 or op_timeout_s <= 0:
            raise ValueError(
                "max_age_s and op_timeout_s must be positive, "
                "max_runs_per_check and prune_batch_size at least 1"
            )
        engine = create_engine(parse_url(url))
        store = cls(
            engine,
            max_age_s=max_age_s,
            max_runs_per_check=max_runs_per_check,
            prune_batch_size=prune_batch_size,
            op_timeout_s=op_timeout_s,
        )
        try:
            async with store._guard("open the store"):
                version = await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        log.info("store ready: %s (schema version %d)", store.url, version)
        return store

    @property
    def shared(self) -> bool:
        """Whether several agents may share this store (PostgreSQL: a cluster)."""
        return bool(self._engine.dialect.name == "postgresql")

    async def close(self) -> None:
        """Close every connection; later calls raise StoreError. Closing twice is fine."""
        if not self._closed:
            self._closed = True
            await self._engine.dispose()

    async def ping(self) -> bool:
        """True when a trivial query answers within 2 s (for readiness); never raises."""
        if self._closed:
            return False
        try:
            async with asyncio.timeout(PING_TIMEOUT_S), self._engine.connect() as connection:
                await connection.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as error:
            log.warning("store ping failed: %s", describe_error(error, self._password))
            return False
        return True

    # -- runs ------------------------------------------------------------------------------

    async def save_run(self, result: RunResult) -> None:
        """Store a run; saving the same run_id again changes nothing."""
        await self.save_runs([result])

    async def save_runs(self, results: Sequence[RunResult]) -> None:
        """Store runs in one transaction; run_ids stored already are left as they are."""
        if not results:
            return
        statement = self._insert(runs).on_conflict_do_nothing()
        rows = [table_rows.run_row(result) for result in results]
        async with self._transaction("save runs", write=True) as connection:
            if not any(result.artifacts for result in results):
                await connection.execute(statement, rows)
                return
            # Artifacts go with the runs this transaction inserted, not with ones stored before.
            inserted = await connection.execute(statement.returning(runs.c.run_id), rows)
            files = artifacts.rows(results, set(inserted.scalars().all()))
            if files:
                insert_files = self._insert(run_artifacts).on_conflict_do_nothing()
                await connection.execute(insert_files, files)

    async def get_run(self, run_id: str) -> RunResult | None:
        """The full result of one run, or None when there is no such run."""
        query = sa.select(runs.c.result).where(runs.c.run_id == run_id)
        async with self._transaction("read a run", write=False) as connection:
            data = await connection.scalar(query)
        if data is None:
            return None
        try:
            return run_from_dict(data)
        except ValueError as error:
            raise StoreError(
                f"run {run_id} is stored in a form this synth cannot read: {error}"
            ) from error

    async def flaky_history(
        self, *, location: str, pairs: Collection[tuple[str, str]], now: datetime
    ) -> dict[tuple[str, str], flaky_history.PairHistory]:
        """The last 24 h of transient failures of these check × environment pairs."""
        async with self._transaction("read flakiness", write=False) as connection:
            return await flaky_history.read(connection, location=location, now=now, pairs=pairs)

    def reading(self, action: str) -> AbstractAsyncContextManager[AsyncConnection]:
        """A read transaction for queries kept in their own modules (synth.store.uptime)."""
        return self._transaction(action, write=False)

    async def list_artifacts(self, run_id: str) -> list[ArtifactInfo]:
        """Metadata of a run's stored artifacts, by name; empty for a run without any."""
        async with self._transaction("list artifacts", write=False) as connection:
            return await artifacts.list_for(connection, run_id)

    async def get_artifact(self, run_id: str, name: str) -> tuple[str, bytes] | None:
        """(content type, bytes) of one artifact of a run, or None when there is none."""
        async with self._transaction("read an artifact", write=False) as connection:
            return await artifacts.read(connection, run_id, name)

    async def list_runs(
        self,
        *,
        check: str | None = None,
        env: str | None = None,
        phase: Phase | None = None,
        deploy_id: str | None = None,
        limit: int = 50,
        before: datetime | None = None,
        status: Status | None = None,
    ) -> list[RunSummary]:
        """Runs matching every filter given, newest first; `before` (exclusive) pages back."""
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}")
        query = sa.select(*table_rows.SUMMARY_COLUMNS)
        if check is not None:
            query = query.where(runs.c.check_name == check)
        if env is not None:
            query = query.where(runs.c.environment == env)
        if phase is not None:
            query = query.where(runs.c.phase == Phase(phase).value)
        if deploy_id is not None:
            query = query.where(runs.c.deploy_id == deploy_id)
        if status is not None:
            query = query.where(runs.c.status == Status(status).value)
        if before is not None:
            query = query.where(runs.c.started_at < before)
        query = query.order_by(runs.c.started_at.desc(), runs.c.run_id.desc()).limit(limit)
        async with self._transaction("list runs", write=False) as connection:
            rows = (await connection.execute(query)).all()
        return [table_rows.summary(row._mapping) for row in rows]

    # -- deploys ---------------------------------------------------------------------------

    async def save_deploy(self, deploy: DeployRecord) -> DeployRecord:
        """Insert the deploy, or replace the stored one with the same id; returns it as
        stored. Raises IdempotencyKeyConflict when another deploy holds its key."""
        row = {
            "id": deploy.id,
            "idempotency_key": deploy.idempotency_key,
            "service": deploy.service,
            "environment": deploy.environment,
            "version": deploy.version,
            "commit_sha": deploy.commit,
            "url": deploy.url,
            "labels": dict(deploy.labels),
            "tags": list(deploy.tags),
            "status": DeployStatus(deploy.status).value,
            "verdict": deploy.verdict,
            "created_at": deploy.created_at,
            "updated_at": deploy.updated_at,
            "finished_at": deploy.finished_at,
            "run_ids": list(deploy.run_ids),
            "owner": deploy.owner,
            "request": deploy.request,
        }
        insert = self._insert(deploys).values(row)
        statement = insert.on_conflict_do_update(
            index_elements=[deploys.c.id],
            set_={name: insert.excluded[name] for name in row if name != "id"},
            # A member that lost a deploy to a survivor (its lease ran out) writes no more.
            where=deploys.c.owner.is_(None) | (deploys.c.owner == insert.excluded.owner),
        )
        async with self._transaction("save a deploy", write=True) as connection:
            try:
                await connection.execute(statement)
            except IntegrityError as error:
                if "idempotency_key" not in str(error.orig):
                    raise
                raise IdempotencyKeyConflict(
                    f"deploy {deploy.id}: idempotency key is already used by another deploy"
                ) from None
            stored = await table_rows.get_deploy(connection, deploys.c.id == deploy.id)
        if stored is None:  # pragma: no cover - the row was written in this transaction
            raise StoreError(f"deploy {deploy.id} vanished while it was being saved")
        return stored

    async def touch_deploys(self, deploy_ids: Sequence[str], at: datetime) -> None:
        """Set `updated_at` of the unfinished deploys among `deploy_ids` (a verification's
        heartbeat); finished ones are left alone, whoever finished them."""
        if not deploy_ids:
            return
        statement = (
            sa.update(deploys)
            .where(deploys.c.id.in_(list(deploy_ids)), deploys.c.finished_at.is_(None))
            .values(updated_at=at)
        )
        async with self._transaction("touch deploys", write=True) as connection:
            await connection.execute(statement)

    async def get_deploy(self, deploy_id: str) -> DeployRecord | None:
        """One deploy by id, or None."""
        async with self._transaction("read a deploy", write=False) as connection:
            return await table_rows.get_deploy(connection, deploys.c.id == deploy_id)

    async def find_deploy_by_idempotency_key(self, key: str) -> DeployRecord | None:
        """The deploy saved with this idempotency key, or None."""
        async with self._transaction("find a deploy", write=False) as connection:
            return await table_rows.get_deploy(connection, deploys.c.idempotency_key == key)

    # -- baselines -------------------------------------------------------------------------

    async def merge_baselines(self, fragments: list[StepBaseline]) -> int:
        """Merge each fragment into the stored baseline of its check × environment × step
        × version (created when new); returns how many were merged. Keeps the newest
        MAX_BASELINE_VERSIONS versions of each step."""
        if not fragments:
            return 0
        merged: dict[tuple[str, str, str, str], StepBaseline] = {}
        for fragment in fragments:  # merge duplicates of the batch first: one row each
            key = fragment.key
            if key in merged:
                merged[key].merge(fragment)
            else:
                merged[key] = StepBaseline.from_dict(fragment.to_dict())
        now = datetime.now(UTC)
        async with self._transaction("merge baselines", write=True) as connection:
            for (check, env, step, version), fragment in merged.items():
                where = sa.and_(
                    baselines.c.check_name == check,
                    baselines.c.environment == env,
                    baselines.c.step == step,
                    baselines.c.version == version,
                )
                # An empty row first, so that there is always a row to lock: concurrent
                # writers of a new key then merge one after the other, not over each other.
                empty = StepBaseline(check, env, step, version, updated_at=now)
                placeholder = {
                    "check_name": check,
                    "environment": env,
                    "step": step,
                    "version": version,
                    "samples": 0,
                    "data": empty.to_dict(),
                    "updated_at": now,
                }
                await connection.execute(
                    self._insert(baselines).values(placeholder).on_conflict_do_nothing()
                )
                query = sa.select(baselines.c.data).where(where)
                if self._engine.dialect.name == "postgresql":
                    query = query.with_for_update()
                stored = await connection.scalar(query)
                if stored is None:  # pragma: no cover - inserted above in this transaction
                    raise StoreError(f"baseline {check}/{step} vanished while being merged")
                combined = StepBaseline.from_dict(stored)
                combined.merge(fragment)
                combined.updated_at = now
                await connection.execute(
                    sa.update(baselines)
                    .where(where)
                    .values(samples=combined.latency.count, data=combined.to_dict(), updated_at=now)
                )
                await self._trim_versions(connection, check, env, step)
        return len(fragments)

    async def _trim_versions(
        self, connection: AsyncConnection, check: str, env: str, step: str
    ) -> None:
        same_step = sa.and_(
            baselines.c.check_name == check,
            baselines.c.environment == env,
            baselines.c.step == step,
        )
        keep = (
            sa.select(baselines.c.version)
            .where(same_step)
            .order_by(baselines.c.updated_at.desc(), baselines.c.version.desc())
            .limit(MAX_BASELINE_VERSIONS)
        )
        await connection.execute(
            sa.delete(baselines).where(same_step, baselines.c.version.not_in(keep))
        )

    async def list_baselines(
        self, *, check: str | None = None, env: str | None = None
    ) -> list[StepBaseline]:
        """Stored baselines matching the filters, most recently updated first."""
        query = sa.select(baselines.c.data)
        if check is not None:
            query = query.where(baselines.c.check_name == check)
        if env is not None:
            query = query.where(baselines.c.environment == env)
        query = query.order_by(
            baselines.c.updated_at.desc(), baselines.c.check_name, baselines.c.step
        ).limit(MAX_BASELINE_ROWS)
        async with self._transaction("read baselines", write=False) as connection:
            rows = (await connection.execute(query)).scalars().all()
        found = []
        for data in rows:
            try:
                found.append(StepBaseline.from_dict(data))
            except ValueError as error:
                raise StoreError(f"a stored baseline cannot be read: {error}") from error
        return found

    # -- alerting --------------------------------------------------------------------------

    async def update_alert(
        self,
        *,
        check: str,
        env: str,
        playbook: str,
        origin: str,
        apply: Callable[[IncidentState | None, list[LocationState]], AlertUpdate],
    ) -> AlertUpdate:
        """Read the alert state of check × env, let `apply` (pure) decide, and write its
        location and incident states and its outbox events in one transaction."""
        now = datetime.now(UTC)
        async with self._transaction("update alert state", write=True) as connection:
            await alerts.lock_alert(connection, check, env)
            incident, locations = await alerts.read_alert(connection, check, env)
            update = apply(incident, locations)
            rows = [
                alerts.location_row(check, env, playbook, update.location, now),
                alerts.incident_row(check, env, playbook, update.incident, now),
            ]
            insert = self._insert(alert_state).values(rows)
            keys = {"check_name", "environment", "location"}
            await connection.execute(
                insert.on_conflict_do_update(
                    index_elements=[
                        alert_state.c.check_name,
                        alert_state.c.environment,
                        alert_state.c.location,
                    ],
                    set_={
                        c.name: insert.excluded[c.name] for c in alert_state.c if c.name not in keys
                    },
                )
            )
            if update.events:
                await connection.execute(
                    sa.insert(outbox), alerts.outbox_rows(update.events, origin, now)
                )
        return update

    async def open_incidents(self) -> dict[str, int]:
        """Open incidents by playbook."""
        query = (
            sa.select(alert_state.c.playbook, sa.func.count())
            .where(alert_state.c.location == alerts.INCIDENT_ROW, alert_state.c.open.is_(True))
            .group_by(alert_state.c.playbook)
        )
        async with self._transaction("count open incidents", write=False) as connection:
            rows = (await connection.execute(query)).all()
        return {str(playbook): int(count) for playbook, count in rows}

    async def add_outbox(self, events: Sequence[NewOutboxEvent], *, origin: str) -> None:
        """Store events to deliver (deploy change events, CLI pages)."""
        if not events:
            return
        rows = alerts.outbox_rows(events, origin, datetime.now(UTC))
        async with self._transaction("add to the outbox", write=True) as connection:
            await connection.execute(sa.insert(outbox), rows)

    async def due_outbox(
        self, *, origin: str, now: datetime | None = None, limit: int = 50, claim_s: float = 0
    ) -> list[OutboxEvent]:
        """The events `origin` should send now: per dedup key its oldest pending event,
        when that one's next attempt is due; oldest first. With `claim_s`, they are not
        due again for that long (the sender records the outcome before then)."""
        at = as_utc(now or datetime.now(UTC))
        query = alerts.due_query(origin, at, limit)
        if self.shared:
            query = query.with_for_update(skip_locked=True)
        async with self._transaction("read the outbox", write=True) as connection:
            rows = (await connection.execute(query)).all()
            if rows and claim_s > 0:
                # Claimed for this sender: other agents of the origin (a cluster) skip
                # them until the send has had time to finish; an agent that dies
                # mid-send leaves them to be sent again after that.
                ids = [row._mapping["id"] for row in rows]
                await connection.execute(
                    sa.update(outbox)
                    .where(outbox.c.id.in_(ids))
                    .values(next_attempt_at=at + timedelta(seconds=claim_s))
                )
        return [alerts.outbox_event(row._mapping) for row in rows]

    async def list_outbox(self, *, origin: str | None = None) -> list[OutboxEvent]:
        """Every stored outbox event (of `origin`), oldest first."""
        query = sa.select(outbox).order_by(outbox.c.id)
        if origin is not None:
            query = query.where(outbox.c.origin == origin)
        async with self._transaction("read the outbox", write=False) as connection:
            rows = (await connection.execute(query)).all()
        return [alerts.outbox_event(row._mapping) for row in rows]

    async def outbox_done(
        self, event_id: int, *, status: OutboxStatus, attempts: int, error: str | None = None
    ) -> None:
        """Record that an event was sent, or dropped (rejected for good)."""
        values = {
            "status": OutboxStatus(status).value,
            "attempts": attempts,
            "sent_at": datetime.now(UTC),
            "last_error": error,
        }
        async with self._transaction("update the outbox", write=True) as connection:
            await connection.execute(
                sa.update(outbox).where(outbox.c.id == event_id).values(values)
            )

    async def outbox_retry(
        self, event_id: int, *, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        """Record a failed attempt and when to try again."""
        values = {"attempts": attempts, "next_attempt_at": next_attempt_at, "last_error": error}
        async with self._transaction("update the outbox", write=True) as connection:
            await connection.execute(
                sa.update(outbox).where(outbox.c.id == event_id).values(values)
            )

    async def outbox_backlog(self, *, origin: str) -> tuple[int, datetime | None]:
        """(pending events, creation time of the oldest) for `origin`."""
        query = sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(
            outbox.c.origin == origin, outbox.c.status == OutboxStatus.PENDING.value
        )
        async with self._transaction("read the outbox", write=False) as connection:
            row = (await connection.execute(query)).one()
        oldest = row[1]
        if oldest is not None and not isinstance(oldest, datetime):
            oldest = datetime.fromisoformat(str(oldest))  # SQLite aggregate: plain text
        return int(row[0]), as_utc(oldest) if oldest is not None else None

    # -- retention -------------------------------------------------------------------------

    async def prune(self, *, now: datetime | None = None) -> int:
        """Apply retention and return the number of rows deleted (see `Pruner.prune`)."""
        pruner = Pruner(
            self._transaction,
            max_age=self._max_age,
            max_runs=self._max_runs,
            batch=self._batch,
        )
        return await pruner.prune(now=now)

    # -- plumbing --------------------------------------------------------------------------

    def _insert(self, table: sa.Table) -> Any:
        """An INSERT that supports ON CONFLICT: SQLite and PostgreSQL spell it alike."""
        dialect = sqlite if self._engine.dialect.name == "sqlite" else postgresql
        return dialect.insert(table)

    @asynccontextmanager
    async def _transaction(self, action: str, *, write: bool) -> AsyncIterator[AsyncConnection]:
        async with self._guard(action):
            lock = self._write_lock if write else contextlib.nullcontext()
            async with lock, transaction(self._engine, write=write) as connection:
                yield connection

    @asynccontextmanager
    async def _guard(self, action: str) -> AsyncIterator[None]:
        """Turn database failures into StoreError, and bound how long any call can take."""
        if self._closed:
            raise StoreError(f"cannot {action}: the store is closed")
        try:
            async with asyncio.timeout(self._op_timeout_s):
                yield
        except StoreError:
            raise
        except TimeoutError:
            raise StoreError(
                f"cannot {action} at {self.url}: no answer within {self._op_timeout_s:g}s"
            ) from None
        except (SQLAlchemyError, ValueError, OSError) as error:
            if refuses_the_data(error):
                raise self._refused(action, error) from error
            detail = describe_error(error, self._password)
            raise StoreError(f"cannot {action} at {self.url}: {detail}") from error

    def _refused(self, action: str, error: BaseException) -> StoreRefused:
        detail = describe_error(error, self._password)
        printable = detail.encode("utf-8", "backslashreplace").decode("utf-8")
        return StoreRefused(f"cannot {action}: the store refused the data: {printable}")
