"""The agent's alerting output: each run result goes through its check's playbook, and the
resulting triggers, resolves and change events go to the outbox.

The state machine is `playbook.py` (pure); the store applies it to the check ×
environment's stored state and writes the new state and its events in one transaction.

Several locations: each agent updates its own location's state and reads the others' from
the store. With replicas sharing one store (PostgreSQL), `min_locations` counts failing
locations across replicas and the incident resolves when fewer than `min_locations`
locations are still failing — not when the first one recovers. With a store per agent,
each agent sees only itself: it pages from its own view and PagerDuty's dedup key makes
one incident of the replicas' triggers (keep `min_locations: 1` then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime

from synth.alerting import payloads
from synth.alerting.channel import Notice
from synth.alerting.channels import channel_problems, channel_secrets, notice_events
from synth.alerting.flaky import FlakyTracker
from synth.alerting.playbook import (
    Decision,
    IncidentState,
    LocationState,
    decide,
    failing_locations,
    observe,
)
from synth.alerting.policy import playbook_name, rule_for
from synth.alerting.silence_book import SilenceBook
from synth.alerting.silences import Target
from synth.config import ConfigError, PlaybookSettings, Settings, resolve_environment
from synth.model import AlertAction, CheckSpec, Phase, RunResult
from synth.outputs.metrics import Metrics
from synth.redact import Redactor
from synth.store import AlertUpdate, DeployRecord, NewOutboxEvent, RunSummary, Store, StoreError

log = logging.getLogger("synth.alerting")

PENDING_MAX = 10_000
RECENT_LIMIT = 10


def playbook_problems(settings: Settings, checks: Iterable[CheckSpec]) -> list[str]:
    """Checks naming an unknown playbook, and what is wrong with the playbooks' channels
    (secrets that cannot be read, a routing key of the wrong length, a webhook URL that
    cannot be posted to)."""
    problems: list[str] = []
    for name, playbook in settings.playbooks.items():
        problems += [f"playbooks.{name}.{p}" for p in channel_problems(playbook)]
    if settings.playbooks:
        known = ", ".join(sorted(settings.playbooks))
        for check in checks:
            if check.playbook and check.playbook not in settings.playbooks:
                where = f"{check.source}: " if check.source else ""
                problems.append(
                    f"{where}check {check.name!r} names unknown playbook {check.playbook!r} "
                    f"(known: {known})"
                )
    return problems


def redactor_for(settings: Settings) -> Redactor:
    """A redactor that knows every secret the configuration holds: environment secrets,
    routing keys, webhook URLs and secrets, and API tokens."""
    redactor = Redactor()
    for env_name in settings.environments:
        try:
            env = resolve_environment(settings, env_name)
        except ConfigError:
            continue
        for value in env.secrets.values():
            redactor.add(value.get_secret_value())
    refs = [ref for p in settings.playbooks.values() for ref in channel_secrets(p)]
    refs += list(settings.server.tokens)
    if settings.server.hmac_secret is not None:
        refs.append(settings.server.hmac_secret)
    for ref in refs:
        try:
            redactor.add(ref.resolve().get_secret_value())
        except ValueError:
            continue
    return redactor


class AlertEngine:
    """Feeds run results and deploys into the playbooks and the outbox."""

    def __init__(
        self,
        *,
        settings: Callable[[], Settings],
        store: Callable[[], Store | None],
        check: Callable[[str], CheckSpec | None],
        checks_for: Callable[[str, str, Sequence[str]], Sequence[CheckSpec]],
        metrics: Metrics,
        origin: str,
        wake: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._check = check
        self._checks_for = checks_for
        self._metrics = metrics
        self._origin = origin
        self._wake = wake
        self._pending: deque[RunResult] = deque(maxlen=PENDING_MAX)
        self._flushing = asyncio.Lock()
        self._redactor: tuple[Settings, Redactor] | None = None
        # Check × env pairs whose last update left nothing failing or open: a passing run
        # of these changes nothing and skips the store (until the stale window passes, so
        # a dead replica's failing state is still noticed).
        self._quiet: dict[tuple[str, str], datetime] = {}
        self.flaky = FlakyTracker()
        self._flaky_notified: set[tuple[str, str]] = set()
        self._owned: set[tuple[str, str]] = set()
        self._to_seed: set[tuple[str, str]] = set()  # owned, flakiness not read back yet
        self._seeding: asyncio.Task[None] | None = None
        self._notices: deque[NewOutboxEvent] = deque(maxlen=PENDING_MAX)
        self._silence_logged: dict[tuple[str, str], str] = {}
        self.silences = SilenceBook(lambda: self._settings().maintenance, store)

    def checks_moved(self, pairs: Collection[tuple[str, str]] | None = None) -> None:
        """The set of checks this agent runs changed (a start, a reload, a cluster
        rebalance): what it knew of quiet pairs may be stale, since another member ran them
        meanwhile; the flakiness of pairs new to it is read back from the stored runs."""
        self._quiet.clear()
        if pairs is None:
            return
        owned = set(pairs)
        self._to_seed = (self._to_seed | (owned - self._owned)) & owned
        self._owned = owned
        if self._to_seed and (self._seeding is None or self._seeding.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: the retry loop seeds
                self._seeding = asyncio.get_running_loop().create_task(self.seed_flakiness())

    async def seed_flakiness(self) -> None:
        """Read back the 24 h flakiness of the pairs that need it; kept for later when the
        store is away."""
        store = self._store()
        if store is None or not self._to_seed:
            return
        pairs = set(self._to_seed)
        location = self._settings().location
        try:
            history = await store.flaky_history(
                location=location, pairs=pairs, now=datetime.now(UTC)
            )
        except StoreError as exc:
            log.warning("flakiness not read back from the store (will retry): %s", exc)
            return
        for pair in pairs & self._to_seed:
            flakiness = self.flaky.seed(pair, history.get(pair))
            self._metrics.flakiness((pair[0], pair[1], location), flakiness.ratio)
        self._to_seed -= pairs

    def redactor(self) -> Redactor:
        settings = self._settings()
        if self._redactor is None or self._redactor[0] is not settings:
            self._redactor = (settings, redactor_for(settings))
        return self._redactor[1]

    async def observe(self, result: RunResult) -> None:
        """Apply one run result to its playbook; queued in memory while the store is down.
        While another call is applying results, this one only queues: that call applies
        it, in order (so one slow store update does not hold up every run behind it)."""
        self._count_flaky(result)
        self._pending.append(result)
        if not self._flushing.locked():
            await self.flush()

    async def flush(self) -> None:
        """Apply queued results in order, each once; stop at the first store failure."""
        async with self._flushing:
            if not await self._send_notices():
                return
            while self._pending:
                # Taken off first: a full queue drops from the left while this awaits.
                result = self._pending.popleft()
                try:
                    await self._apply(result)
                except StoreError as exc:
                    self._pending.appendleft(result)
                    self._metrics.store_error("update_alert")
                    log.warning("alert state not updated (will retry): %s", exc)
                    return
                except Exception:  # a bug must not stop the runs or block later results
                    log.exception("alerting failed for a run result; skipping it")

    async def _apply(self, result: RunResult) -> None:
        settings = self._settings()
        check = self._check(result.check)
        name = playbook_name(check, settings)
        if name is None:
            return
        store = self._store()
        if store is None:
            raise StoreError("the store is not open yet")
        playbook = settings.playbooks[name]
        rule = rule_for(playbook, check)
        pair = (result.check, result.environment)
        now = datetime.now(UTC)
        quiet_since = self._quiet.get(pair)
        if (
            result.passed
            and quiet_since is not None
            and (now - quiet_since).total_seconds() < rule.stale_after_s
        ):
            return
        await self.silences.refresh(now)
        silence = self.silences.covering(_target(result, check), now)
        recent = (
            await store.list_runs(check=result.check, env=result.environment, limit=RECENT_LIMIT)
            if not result.passed
            else []
        )
        outcome: list[Decision] = []
        failing: list[str] = []

        def apply(incident: IncidentState | None, locations: list[LocationState]) -> AlertUpdate:
            at = datetime.now(UTC)
            own = next((s for s in locations if s.location == result.location), None)
            updated = observe(own, result.location, not result.passed, at, rule)
            everyone = [s for s in locations if s.location != result.location] + [updated]
            new_incident, decision = decide(
                incident, everyone, at, rule, silenced=silence is not None
            )
            failing.extend(failing_locations(everyone, at, rule))
            outcome.append(decision)
            events = self._events(decision, result, name, playbook, check, recent, failing)
            if not any(s.failing or any(s.recent) for s in everyone) and not new_incident.open:
                self._quiet[pair] = at
            else:
                self._quiet.pop(pair, None)
            return AlertUpdate(updated, new_incident, tuple(events))

        update = await store.update_alert(
            check=result.check,
            env=result.environment,
            playbook=name,
            origin=self._origin,
            apply=apply,
        )
        decision = outcome[-1] if outcome else Decision.NONE
        context = {
            "check": result.check,
            "env": result.environment,
            "location": result.location,
            "playbook": name,
            "failing_locations": failing,
        }
        if decision is Decision.TRIGGER:
            summary = self.redactor().text(payloads.summary_of(result, failing))
            log.warning("paging: %s", summary, extra=context)
        elif decision is Decision.RESOLVE:
            log.info("resolving the incident: the check recovered", extra=context)
        elif decision is Decision.RETRIGGER:
            log.info("still failing: sending the trigger again", extra=context)
        elif decision is Decision.SILENCED and silence is not None:
            # Once per check × environment and silence, not at every run it covers.
            occurrence = f"{silence.id}@{silence.start.isoformat()}"
            if self._silence_logged.get(pair) != occurrence:
                self._silence_logged[pair] = occurrence
                log.info(
                    "silenced: not paging (%s, until %s): %s",
                    silence.id,
                    silence.end.isoformat(),
                    self.redactor().text(silence.reason),
                    extra=context,
                )
        elif decision is Decision.SUPPRESSED:
            log.info("not re-opening yet (reopen_after): the check fails again", extra=context)
        if update.events:
            self._wake()
        if decision in (Decision.TRIGGER, Decision.RESOLVE):
            # The update is committed: a failure here must not make `flush` apply the
            # result twice. The gauge catches up at the next transition.
            with contextlib.suppress(StoreError):
                await self.refresh_incidents(store)

    def _count_flaky(self, result: RunResult) -> None:
        """Count the run's transient failures; queue the flaky notification on crossing
        the playbook's threshold (once) and its resolve below half of it."""
        flakiness = self.flaky.observe(result)
        labels = (result.check, result.environment, result.location)
        self._metrics.flakiness(labels, flakiness.ratio)
        settings = self._settings()
        check = self._check(result.check)
        name = playbook_name(check, settings)
        playbook = settings.playbooks[name] if name is not None else None
        if name is None or playbook is None or playbook.flaky is None:
            return
        pair = (result.check, result.environment)
        limits = playbook.flaky
        if pair not in self._flaky_notified:
            crossed = flakiness.runs >= limits.min_runs and flakiness.ratio >= limits.notify_above
            # A silence holds the notification too; it goes once the silence is over.
            if crossed and self.silences.covering(_target(result, check), _utc_now()) is None:
                self._flaky_notified.add(pair)
                event = payloads.flaky_event(
                    result,
                    flakiness,
                    playbook_name=name,
                    playbook=playbook,
                    check=check,
                    redactor=self.redactor(),
                )
                self._notices.extend(notice_events(Notice(event), playbook))
                log.warning(
                    "flaky check: %s",
                    flakiness.describe(result.check),
                    extra={"check": result.check, "env": result.environment, "playbook": name},
                )
        elif flakiness.ratio < limits.notify_above / 2:
            self._flaky_notified.discard(pair)
            key = payloads.flaky_key(result.environment, result.check)
            resolve = NewOutboxEvent(key, AlertAction.RESOLVE.value, name, {})
            summary = f"{result.check} in {result.environment} is no longer flaky"
            notice = Notice(resolve, resolved_summary=summary)
            self._notices.extend(notice_events(notice, playbook))

    async def _send_notices(self) -> bool:
        """Store queued notifications in the outbox; False when the store failed."""
        if not self._notices:
            return True
        store = self._store()
        if store is None:
            return False
        events = list(self._notices)
        try:
            await store.add_outbox(events, origin=self._origin)
        except StoreError as exc:
            self._metrics.store_error("add_outbox")
            log.warning("flaky-check notification not stored (will retry): %s", exc)
            return False
        for _ in events:
            self._notices.popleft()
        self._wake()
        return True

    def _events(
        self,
        decision: Decision,
        result: RunResult,
        name: str,
        playbook: PlaybookSettings,
        check: CheckSpec | None,
        recent: Sequence[RunSummary],
        failing: Sequence[str],
    ) -> list[NewOutboxEvent]:
        if decision in (Decision.TRIGGER, Decision.RETRIGGER):
            event = payloads.trigger_event(
                result,
                playbook_name=name,
                playbook=playbook,
                check=check,
                recent=recent,
                failing_locations=failing,
                redactor=self.redactor(),
                public_url=self._settings().server.public_url,
            )
        elif decision is Decision.RESOLVE:
            event = payloads.resolve_event(result, playbook_name=name)
        else:
            return []
        summary = f"{result.check} in {result.environment} passes again"
        repeat = decision is Decision.RETRIGGER
        return notice_events(Notice(event, resolved_summary=summary, repeat=repeat), playbook)

    async def refresh_silences(self, *, force: bool = True) -> None:
        """Read the silences again and set synth_check_silenced of the pairs this agent
        runs."""
        now = datetime.now(UTC)
        await self.silences.refresh(now, force=force)
        location = self._settings().location
        for check_name, env in self._owned:
            target = _target_of(check_name, env, self._check(check_name))
            covered = self.silences.covering(target, now) is not None
            self._metrics.silence((check_name, env, location), covered)

    async def refresh_incidents(self, store: Store | None = None) -> None:
        """Set synth_incidents_open from the store."""
        store = store or self._store()
        if store is None:
            return
        counts = await store.open_incidents()
        for name in set(self._settings().playbooks) | set(counts):
            self._metrics.incidents(name, counts.get(name, 0))

    async def announce_deploy(self, record: DeployRecord) -> None:
        """Send a change event for a deploy to every playbook of the service's checks."""
        settings = self._settings()
        if not settings.playbooks:
            return
        checks = self._checks_for(record.service, record.environment, record.tags)
        names = sorted({n for c in checks if (n := playbook_name(c, settings)) is not None})
        if not names and settings.default_playbook is not None:
            names = [settings.default_playbook]
        events = [
            channel_event
            for n in names
            for channel_event in notice_events(
                Notice(
                    payloads.change_event(
                        record,
                        playbook_name=n,
                        location=self._origin,
                        redactor=self.redactor(),
                        public_url=settings.server.public_url,
                    )
                ),
                settings.playbooks[n],
            )
        ]
        store = self._store()
        if store is None or not events:
            return
        try:
            await store.add_outbox(events, origin=self._origin)
        except StoreError as exc:
            self._metrics.store_error("add_outbox")
            log.warning("deploy change event not stored: %s", exc)
            return
        self._wake()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _target_of(check_name: str, env: str, check: CheckSpec | None, deploy: bool = False) -> Target:
    service = check.service if check is not None else None
    tags = tuple(check.tags) if check is not None else ()
    return Target(check=check_name, env=env, service=service, tags=tags, deploy=deploy)


def _target(result: RunResult, check: CheckSpec | None) -> Target:
    deploy = result.phase is Phase.DEPLOY
    return _target_of(result.check, result.environment, check, deploy)
