"""Deploy event → selection → verification runs → verdict.

A deploy event only names a service and environment: it can only run configured checks,
never an arbitrary URL. The same event (idempotency id) delivered twice runs once; a newer
deploy of the same service and environment supersedes the older verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from synth.baseline.compare import unconfirmed
from synth.config import DeploySettings
from synth.errors import SynthError
from synth.model import CheckSpec, DeployContext, Phase, RunRequest, RunResult
from synth.outputs.metrics import Metrics
from synth.store import (
    DeployRecord,
    DeployStatus,
    IdempotencyKeyConflict,
    Store,
    StoreError,
    StoreRefused,
)
from synth.units import parse_duration
from synth.verdict import Verdict, VerdictResult, decide

log = logging.getLogger("synth.deploys")

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
DURATION_PATTERN = r"^([0-9]{1,9}(\.[0-9]{1,9})?(ms|s|m|h|d))+$|^[0-9]{1,9}(\.[0-9]{1,9})?$"
OptionalSeconds = Annotated[
    float | None,
    BeforeValidator(lambda v: None if v is None else parse_duration(v)),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN, "examples": ["30s", "1m30s"]},
                {"type": "null"},
            ]
        }
    ),
]
Execute = Callable[[RunRequest], Awaitable[RunResult]]
ChecksFor = Callable[[str, str, Sequence[str]], Sequence[CheckSpec]]

_VERDICT_STATUS = {
    VerdictResult.PASS: DeployStatus.PASSED,
    VerdictResult.FAIL: DeployStatus.FAILED,
    VerdictResult.ERROR: DeployStatus.ERROR,
}
FINISHED = frozenset(
    {DeployStatus.PASSED, DeployStatus.FAILED, DeployStatus.ERROR, DeployStatus.SUPERSEDED}
)
# Extra runs a round makes of a check whose latency one run put in doubt (at most).
MAX_CONFIRMATIONS = 2
# How often a long-poll re-reads a deploy that another agent sharing the store verifies.
FOREIGN_POLL_S = 0.5


class DeployRefused(SynthError, ValueError):
    """Nothing will verify this deploy; the message says why and `status` is the API's
    answer: 404 when no configured check covers it, 422 when the store refused its record.
    Nothing of it is kept."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Plan:
    """How a deploy is verified: wait `settle`, then rounds every `interval` for `window`
    (seconds; the event's values within the configured bounds)."""

    settle: float
    window: float
    interval: float

    def to_dict(self) -> dict[str, float]:
        return {"settle": self.settle, "window": self.window, "interval": self.interval}

    @classmethod
    def from_dict(cls, data: dict[str, object] | None, settings: DeploySettings) -> Plan:
        """The plan a record stored (the configured defaults for a record without one)."""
        data = data or {}

        def value(name: str, default: float) -> float:
            raw = data.get(name)
            return float(raw) if isinstance(raw, int | float) else default

        return cls(
            settle=value("settle", settings.settle),
            window=value("window", settings.window),
            interval=max(value("interval", settings.interval), 1.0),
        )

    def remaining(self, elapsed: float) -> Plan:
        """What is left `elapsed` seconds after the deploy was accepted."""
        settle = max(self.settle - elapsed, 0.0)
        window = max(self.window - max(elapsed - self.settle, 0.0), 0.0)
        return replace(self, settle=settle, window=window)


class DeployEvent(BaseModel):
    """The generic deploy event body of `POST /v1/deploys`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: str = Field(pattern=NAME_PATTERN, description="service whose checks verify the deploy")
    environment: str = Field(
        pattern=NAME_PATTERN,
        validation_alias=AliasChoices("environment", "env"),
        description="target",
    )
    version: str = Field(min_length=1, max_length=200)
    commit: str | None = Field(default=None, max_length=100)
    url: str | None = Field(default=None, max_length=2000, description="link to the deploy")
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)
    id: str | None = Field(
        default=None, min_length=1, max_length=200, description="idempotency key"
    )
    tags: list[str] = Field(default_factory=list, max_length=32, description="narrow checks")
    settle: OptionalSeconds = Field(default=None, description="wait before verifying")
    window: OptionalSeconds = Field(default=None, description="repeat checks for this long")
    interval: OptionalSeconds = Field(default=None, description="pause between repeats")


class DeployManager:
    """Runs deploy verifications and keeps their records.

    Agents may share one store. A verification belongs to the agent that accepted it: that
    agent refreshes the record's `updated_at` (a heartbeat, every lease/3) until it is
    finished. Another agent never runs it again (the idempotency key is unique in the
    store) and leaves it alone while the heartbeat is fresh.

    In a cluster (`owner` given) the record names the member instance verifying it and
    the event's settle/window/interval: when that member dies, stops or is fenced, a
    survivor claims it (synth.agent.deploy_takeover) and `resume`s it with what is left
    of its window, so the pipeline still gets a real verdict. Outside a cluster, a record
    silent for longer than `lease` lost its agent, and is finished as `error` by
    whichever agent is asked about it (a restarted one included).
    """

    def __init__(
        self,
        *,
        settings: DeploySettings,
        store: Store | None,
        metrics: Metrics,
        checks_for: ChecksFor,
        execute: Execute,
        location: str,
        on_created: Callable[[DeployRecord], Awaitable[None]] | None = None,
        owner: Callable[[], str] | None = None,
    ) -> None:
        self._settings = settings
        self.store = store
        self._metrics = metrics
        self._checks_for = checks_for
        self._execute = execute
        self._location = location
        self._on_created = on_created
        self._owner = owner
        self._handed_over: set[str] = set()
        self._records: dict[str, DeployRecord] = {}
        self._by_key: dict[str, str] = {}
        self._active: dict[tuple[str, str], tuple[str, asyncio.Task[None]]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        # Bounded: only configured (service, environment) pairs get this far.
        self._announced: dict[tuple[str, str], str] = {}
        self._lock = asyncio.Lock()
        self._stopping = False
        self._heartbeat: asyncio.Task[None] | None = None

    async def submit(self, event: DeployEvent) -> tuple[DeployRecord, bool]:
        """Start verifying `event`; returns (record, created). A repeated idempotency id
        returns the existing record and runs nothing. DeployRefused when no configured check
        covers the service and environment (so no verdict series for names nobody
        configured) or when the store refuses the record."""
        if not self._checks_for(event.service, event.environment, event.tags):
            tags = f" with tags {list(event.tags)}" if event.tags else ""
            raise DeployRefused(
                f"no configured check covers service {event.service!r} in environment "
                f"{event.environment!r}{tags}",
                404,
            )
        async with self._lock:
            if event.id is not None:
                existing = await self._find_by_key(event.id)
                if existing is not None:
                    return existing, False
            now = datetime.now(UTC)
            record = DeployRecord(
                id=uuid.uuid4().hex,
                idempotency_key=event.id,
                service=event.service,
                environment=event.environment,
                version=event.version,
                commit=event.commit,
                url=event.url,
                labels=dict(event.labels),
                tags=tuple(event.tags),
                status=DeployStatus.PENDING,
                verdict=None,
                created_at=now,
                updated_at=now,
                finished_at=None,
                run_ids=(),
                owner=self._owner() if self._owner is not None else None,
                request=self._plan(event).to_dict(),
            )
            try:
                await self._save(record, strict=True)
            except StoreRefused as exc:
                self._forget(record)  # else a clean retry with the same id finds this one
                raise DeployRefused(str(exc), 422) from None
            except IdempotencyKeyConflict:
                # Another agent sharing the store accepted the same event a moment ago.
                self._forget(record)
                assert event.id is not None
                existing = await self._find_by_key(event.id)
                if existing is not None:
                    return existing, False
                raise
            await self._announce(record)  # before the verification can page
            self._start(record, self._plan(event), event.tags)
            return record, True

    async def resume(self, record: DeployRecord) -> None:
        """Verify a deploy this member claimed from a member that is gone, with what is
        left of its settle time and window (at least one round)."""
        async with self._lock:
            if self._stopping or record.status in FINISHED or self._verifying(record.id):
                return
            active = self._active.get((record.service, record.environment))
            newer = self._records.get(active[0]) if active is not None else None
            if newer is not None and newer.created_at > record.created_at:
                verdict = decide([], error="superseded by a newer deploy")
                await self._finish(record, DeployStatus.SUPERSEDED, verdict, [])
                return
            elapsed = max((datetime.now(UTC) - record.created_at).total_seconds(), 0.0)
            plan = Plan.from_dict(record.request, self._settings).remaining(elapsed)
            self._records[record.id] = record
            log.info(
                "resuming a deploy verification whose member is gone",
                extra={
                    "deploy_id": record.id,
                    "service": record.service,
                    "env": record.environment,
                },
            )
            self._start(record, plan, record.tags)

    def hand_over(self) -> None:
        """Stop verifying without a verdict (this member lost its lease or is stopping in a
        cluster): a live member claims the deploys and finishes them."""
        for deploy_id, task in list(self._active.values()):
            self._handed_over.add(deploy_id)
            task.cancel()
        self._active.clear()

    def _start(self, record: DeployRecord, plan: Plan, tags: Sequence[str]) -> None:
        key = (record.service, record.environment)
        previous = self._active.pop(key, None)
        if previous is not None:
            previous[1].cancel()
        task = asyncio.create_task(self._verify(record, plan, tags), name=f"deploy-{record.id}")
        self._active[key] = (record.id, task)
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="deploy-heartbeat")

    def _plan(self, event: DeployEvent) -> Plan:
        s = self._settings
        return Plan(
            settle=min(event.settle if event.settle is not None else s.settle, s.max_settle),
            window=min(event.window if event.window is not None else s.window, s.max_window),
            interval=max(event.interval if event.interval is not None else s.interval, 1.0),
        )

    async def _announce(self, record: DeployRecord) -> None:
        """One announcement (PagerDuty change event) per service, environment and version:
        a gate called every few seconds (Flagger) or a second tool reporting the same
        rollout is not a new change."""
        if self._on_created is None:
            return
        target = (record.service, record.environment)
        if self._announced.get(target) == record.version:
            return
        self._announced[target] = record.version
        try:
            await self._on_created(record)
        except Exception:  # announcing is best effort; verification goes on
            log.exception("deploy announcement failed", extra={"deploy_id": record.id})

    async def get(self, deploy_id: str) -> DeployRecord | None:
        record = self._records.get(deploy_id)
        if record is not None and (record.status in FINISHED or self._verifying(deploy_id)):
            return record
        if self.store is not None:
            try:
                stored = await self._adopt(await self.store.get_deploy(deploy_id))
            except StoreError:
                if record is None:
                    raise
            else:
                # Another member may verify it now (it was handed over): the store knows.
                return stored if stored is not None else record
        return record

    async def wait(self, deploy_id: str, timeout_s: float) -> DeployRecord | None:
        """The record once finished, or as it is after `timeout_s` (long-poll)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            record = await self.get(deploy_id)
            if record is None or record.status in FINISHED:
                return record
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return record
            if not self._verifying(deploy_id):  # another agent's: re-read it from the store
                remaining = min(remaining, FOREIGN_POLL_S)
            if self._stopping:  # answer now: the client asks again, another member then
                return await self.get(deploy_id)
            event = self._changed.setdefault(deploy_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=remaining)
            if not self._verifying(deploy_id):
                self._changed.pop(deploy_id, None)  # nothing here will ever set it

    async def shutdown(self) -> None:
        """Stop verifications in progress. In a cluster they are handed over (another
        member finishes them); alone, they end as `error` (agent stopping)."""
        self._stopping = True
        for waiting in self._changed.values():  # long-polls answer before the server stops
            waiting.set()
        tasks = [task for _, task in self._active.values()]
        if self._owner is not None:
            self.hand_over()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)

    def _verifying(self, deploy_id: str) -> bool:
        return any(active_id == deploy_id for active_id, _ in self._active.values())

    async def _beat(self) -> None:
        """Refresh `updated_at` of the verifications this agent runs, so that agents sharing
        the store see they are alive (see the class docstring)."""
        interval = self._settings.lease / 3
        while True:
            await asyncio.sleep(interval)
            ids = [deploy_id for deploy_id, _ in self._active.values()]
            if not ids or self.store is None:
                continue
            try:
                await self.store.touch_deploys(ids, datetime.now(UTC))
            except StoreError as exc:
                self._metrics.store_error("touch_deploys")
                log.warning("could not refresh deploy heartbeats: %s", exc)

    async def _find_by_key(self, key: str) -> DeployRecord | None:
        deploy_id = self._by_key.get(key)
        if deploy_id is not None:
            return self._records.get(deploy_id)
        if self.store is not None:
            try:
                return await self._adopt(await self.store.find_deploy_by_idempotency_key(key))
            except StoreError:
                log.warning("store unreachable: idempotency checked in memory only")
        return None

    async def _adopt(self, record: DeployRecord | None) -> DeployRecord | None:
        """A stored deploy this process is not verifying. Unfinished and with a fresh
        heartbeat, another agent is verifying it: leave it. Unfinished and silent for longer
        than the lease, the agent verifying it died (or restarted): finish it as `error` so
        nobody waits on it forever."""
        if record is None or record.status in FINISHED or record.owner is not None:
            return record  # a cluster member's: a survivor claims it if that one is gone
        now = datetime.now(UTC)
        if (now - record.updated_at).total_seconds() < self._settings.lease:
            return record
        verdict = decide([], error="the agent restarted before verification finished")
        orphan = replace(
            record,
            status=DeployStatus.ERROR,
            verdict=verdict.to_dict(),
            finished_at=now,
            updated_at=now,
        )
        await self._save(orphan)
        return orphan

    async def _verify(self, record: DeployRecord, plan: Plan, tags: Sequence[str]) -> None:
        results: list[RunResult] = []
        verdict: Verdict
        status: DeployStatus
        try:
            checks = self._checks_for(record.service, record.environment, tags)
            if not checks:
                verdict = decide(
                    [],
                    error=f"no checks for service {record.service!r} in environment "
                    f"{record.environment!r}" + (f" with tags {list(tags)}" if tags else ""),
                )
            else:
                record = await self._update(record, status=DeployStatus.RUNNING)
                await self._rounds(record, plan, checks, results)
                verdict = decide(results)
            status = _VERDICT_STATUS[verdict.result]
        except asyncio.CancelledError:
            if record.id in self._handed_over:
                self._handed_over.discard(record.id)
                self._records.pop(record.id, None)  # the store has the current one now
                raise
            if self._stopping:
                verdict = decide(results, error="the agent stopped before verification finished")
                status = DeployStatus.ERROR
            else:
                verdict = decide(results, error="superseded by a newer deploy")
                status = DeployStatus.SUPERSEDED
            await self._finish(record, status, verdict, results)
            raise
        except Exception as exc:  # a bug must not leave the pipeline waiting forever
            log.exception("deploy verification crashed", extra={"deploy_id": record.id})
            verdict = decide(results, error=f"verification crashed: {type(exc).__name__}")
            status = DeployStatus.ERROR
        await self._finish(record, status, verdict, results)

    async def _rounds(
        self,
        record: DeployRecord,
        plan: Plan,
        checks: Sequence[CheckSpec],
        results: list[RunResult],
    ) -> None:
        settle, window, interval = plan.settle, plan.window, plan.interval
        if settle > 0:
            await asyncio.sleep(settle)
        context = DeployContext(
            deploy_id=record.id,
            service=record.service,
            environment=record.environment,
            version=record.version,
            commit=record.commit,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window

        def request(check: CheckSpec) -> RunRequest:
            return RunRequest(
                check=check,
                environment=record.environment,
                phase=Phase.DEPLOY,
                location=self._location,
                deploy=context,
            )

        while True:
            round_results = list(
                await asyncio.gather(*(self._execute(request(check)) for check in checks))
            )
            by_name = {check.name: check for check in checks}
            latest = round_results
            for _ in range(MAX_CONFIRMATIONS):
                # A step one run above the baseline's limit is judged on one more run now,
                # not left to the next round (a default verification has only one).
                suspect = [by_name[r.check] for r in latest if unconfirmed(r)]
                if not suspect:
                    break
                latest = list(await asyncio.gather(*(self._execute(request(c)) for c in suspect)))
                round_results.extend(latest)
            results.extend(round_results)
            record = await self._update(record, run_ids=tuple(r.run_id for r in results))
            if not all(r.passed for r in round_results):
                return  # fail fast: the pipeline should roll back now, not after the window
            if loop.time() + interval > deadline:
                return
            await asyncio.sleep(interval)

    async def _finish(
        self,
        record: DeployRecord,
        status: DeployStatus,
        verdict: Verdict,
        results: Sequence[RunResult],
    ) -> None:
        now = datetime.now(UTC)
        await self._update(
            record,
            status=status,
            verdict=verdict.to_dict(),
            finished_at=now,
            run_ids=tuple(r.run_id for r in results),
        )
        self._metrics.deploy_verdict(record.service, record.environment, verdict.result.value)
        key = (record.service, record.environment)
        active = self._active.get(key)
        if active is not None and active[0] == record.id:
            del self._active[key]
        log.info(
            "deploy verdict",
            extra={
                "deploy_id": record.id,
                "service": record.service,
                "env": record.environment,
                "version": record.version,
                "verdict": verdict.result.value,
                "reason": verdict.reason,
            },
        )

    async def _update(self, record: DeployRecord, **changes: object) -> DeployRecord:
        current = self._records.get(record.id, record)
        updated = replace(current, updated_at=datetime.now(UTC), **changes)  # type: ignore[arg-type]
        await self._save(updated)
        return updated

    def _forget(self, record: DeployRecord) -> None:
        self._records.pop(record.id, None)
        if record.idempotency_key is not None:
            self._by_key.pop(record.idempotency_key, None)

    async def _save(self, record: DeployRecord, *, strict: bool = False) -> None:
        """Keep `record` and store it; a store failure is logged and counted (the agent
        goes on without it), except that `strict` raises IdempotencyKeyConflict."""
        self._records[record.id] = record
        if record.idempotency_key is not None:
            self._by_key[record.idempotency_key] = record.id
        self._trim_memory()
        event = self._changed.pop(record.id, None)
        if event is not None:
            event.set()
        if self.store is not None:
            try:
                await self.store.save_deploy(record)
            except IdempotencyKeyConflict:
                if strict:
                    raise
                self._metrics.store_error("save_deploy")
                log.warning("could not store deploy record %s: key conflict", record.id)
            except StoreRefused:
                if strict:
                    raise
                self._metrics.store_error("save_deploy")
                log.warning("the store refused deploy record %s", record.id)
            except StoreError as exc:
                self._metrics.store_error("save_deploy")
                log.warning("could not store deploy record: %s", exc)

    def _trim_memory(self, keep: int = 1000) -> None:
        if len(self._records) <= keep:
            return
        active_ids = {deploy_id for deploy_id, _ in self._active.values()}
        for deploy_id in list(self._records)[: len(self._records) - keep]:
            if deploy_id not in active_ids:
                record = self._records.pop(deploy_id)
                if record.idempotency_key is not None:
                    self._by_key.pop(record.idempotency_key, None)
