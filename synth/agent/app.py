"""The agent's wiring and lifecycle: start, reload, graceful stop.

One asyncio process: the scheduler and deploy verifications call `Agent.execute`, which
bounds concurrency, runs the check through the shared runner and hands the result to the
outputs (metrics, store). SIGTERM/SIGINT stop taking work, let in-flight runs finish
within the grace period, flush outputs and exit 0; SIGHUP reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from synth import __version__
from synth.agent import gc_tuning, malloc_tuning
from synth.agent.auth import Authenticator, ReplayCache
from synth.agent.background import alerts_catch_up, retention
from synth.agent.baselines import BaselineComparator
from synth.agent.cluster_member import cluster_membership
from synth.agent.deploy_takeover import DeployTakeover
from synth.agent.deploys import DeployEvent, DeployManager
from synth.agent.executor import RunExecutor
from synth.agent.isolation import RunWorkers
from synth.agent.lag import LagRecorder
from synth.agent.process_pools import ProcessPools
from synth.agent.remote_retry import remote_retries
from synth.agent.scheduler import CheckScheduler, interval_s, scheduled_pairs
from synth.agent.sharing import CheckSharing
from synth.agent.writer import ResultWriter
from synth.alerting.channels import page_actions
from synth.alerting.engine import AlertEngine
from synth.alerting.outbox import OutboxSender
from synth.checks.loader import load_checks
from synth.config import ConfigError, Settings, load_settings
from synth.model import CheckSpec, Phase, RunRequest, RunResult
from synth.outputs.metrics import Metrics
from synth.outputs.sinks import OutputPlan, build_sinks
from synth.outputs.tracing import Tracing, TracingConfig, start_tracing
from synth.runner import Runner
from synth.selection import select_checks
from synth.startup import startup_problems
from synth.store import DeployRecord, Store, StoreError

log = logging.getLogger("synth.agent")

STORE_RETRY_S = 5.0
PENDING_RESULTS_MAX = 10_000
PUBLISH_DRAIN_S = 5.0
TRACE_FLUSH_S = 5.0


@dataclass(frozen=True, slots=True)
class LoadedState:
    """The active configuration and checks; swapped whole on reload."""

    settings: Settings
    checks: tuple[CheckSpec, ...]
    problems: tuple[str, ...]
    loaded_at: datetime


@dataclass(slots=True)
class ReloadOutcome:
    ok: bool
    checks: int
    problems: list[str] = field(default_factory=list)


def load_state(config_path: Path | None, check_paths: Sequence[str]) -> LoadedState:
    """Load and validate config and checks; ConfigError if the config is unusable."""
    settings = load_settings(config_path)
    loaded = load_checks(list(check_paths) or settings.checks)
    problems = [str(p) for p in loaded.problems]
    problems.extend(startup_problems(settings, loaded.checks))
    return LoadedState(settings, loaded.checks, tuple(problems), datetime.now(UTC))


class Agent:
    """A running synth agent."""

    def __init__(
        self,
        state: LoadedState,
        *,
        config_path: Path | None,
        check_paths: Sequence[str],
        tracing: TracingConfig | None = None,
        api_port: int | None = None,
    ):
        self.state = state
        self.config_path = config_path
        self.check_paths = list(check_paths)
        self.metrics = Metrics(settings=state.settings.metrics)
        self.lags = LagRecorder()
        self.metrics.describe_agent(version=__version__, location=state.settings.location)
        self.tracing = _start_tracing(tracing or TracingConfig(), state.settings, self.metrics)
        self.runner = self._new_runner(state.settings)
        self.store: Store | None = None
        self.store_ok = False
        self.workers = RunWorkers(
            state.settings.scheduler.concurrency,
            on_blocked=lambda check, seconds: self.metrics.loop_was_blocked(check, seconds),
        )
        processor = self.tracing.processor
        self.pools = ProcessPools(
            config_path=config_path,
            check_paths=check_paths,
            spans=processor.submit if processor is not None else None,
            on_restart=self.metrics.run_process_restarted,
            on_browser_launch=self.metrics.browser.launched,
        )
        self.executor = RunExecutor(
            runner=lambda: self.runner,
            workers=self.workers,
            processes=lambda: self.pools.api,
            browser_processes=lambda: self.pools.browser,
            inline_declarative=lambda: self.settings.scheduler.isolation == "code",
            browser_concurrency=lambda: self.settings.browser.concurrency,
            browser_nice=lambda: self.settings.browser.nice,
            metrics=self.metrics,
            on_lag=self.lags.add,
        )
        self._in_flight: set[asyncio.Task[RunResult]] = set()
        self._publishing: set[asyncio.Task[None]] = set()  # scheduled results being stored
        self.writer = ResultWriter(
            self._save_runs,
            observe=self.metrics.observe_run,
            failed=lambda exc: self._store_failed("save_run", exc),
            recovered=self._store_recovered,
            max_pending=PENDING_RESULTS_MAX,
            retry_s=STORE_RETRY_S,
        )
        self.metrics.watch_results_pending(lambda: self.writer.pending)  # at scrape
        self._writer_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._reloading = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []
        self._warmup_freeze: asyncio.TimerHandle | None = None
        self.last_reload: ReloadOutcome = ReloadOutcome(
            True, len(state.checks), list(state.problems)
        )
        self.scheduler = CheckScheduler(state.settings.scheduler, self.metrics, self._fire)
        self.membership = cluster_membership(
            state.settings,
            lambda: self.store.cluster if self.store is not None else None,
            api_port=api_port,
            on_view=self.cluster_view_changed,
            on_lease_lost=self.lease_lost,
            owned_count=lambda: self.sharing.owned_count,
        )
        self.remote = remote_retries(self)
        self.sharing = CheckSharing(
            self.membership,
            apply=self._schedule_share,
            on_rebalance=lambda: self.metrics.cluster.rebalanced(self.settings.location),
        )
        self.baselines = BaselineComparator(
            state.settings.baseline, self.metrics, lambda: self.store if self.store_ok else None
        )
        self.deploys = DeployManager(
            settings=state.settings.deploys,
            store=None,
            metrics=self.metrics,
            checks_for=self.checks_for,
            execute=self.execute,
            location=state.settings.location,
            on_created=self._deploy_announced,
            owner=self.membership.owner_token if self.membership is not None else None,
        )
        self.takeover = (
            DeployTakeover(
                self.membership,
                lambda: self.store.cluster if self.store is not None else None,
                self.deploys.resume,
                on_claimed=lambda: self.metrics.cluster.deploy_taken_over(self.settings.location),
            )
            if self.membership is not None
            else None
        )
        self.outbox = OutboxSender(
            settings=lambda: self.settings,
            store=lambda: self.store,
            metrics=self.metrics,
            origin=state.settings.location,
        )
        self.alerts = AlertEngine(
            settings=lambda: self.settings,
            # While the store is failing, results queue in memory (as the writer's do) rather
            # than each waiting for the store's timeout.
            store=lambda: self.store if self.store_ok else None,
            check=self._check_named,
            checks_for=self.checks_for,
            metrics=self.metrics,
            origin=state.settings.location,
            wake=self.outbox.wake,
        )
        self.sinks = build_sinks(
            OutputPlan(metrics=self.metrics, log_runs=True, store=self.writer, alerts=self.alerts)
        )
        self._by_name: dict[str, CheckSpec] = {check.name: check for check in state.checks}
        # One for the agent's life: a reload (rotated secrets) must not forget used signatures.
        self._signatures_seen = ReplayCache()
        self.authenticator = _authenticator(state.settings, self._signatures_seen)
        self.started_at = time.time()

    @property
    def settings(self) -> Settings:
        return self.state.settings

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- what the CD-tool adapters may use (synth.agent.adapters.port.DeployPort) ---------

    @property
    def api_tokens(self) -> Sequence[str]:
        return self.authenticator.tokens

    async def submit_deploy(self, event: DeployEvent) -> tuple[DeployRecord, bool]:
        return await self.deploys.submit(event)

    async def wait_deploy(self, deploy_id: str, timeout_s: float) -> DeployRecord | None:
        return await self.deploys.wait(deploy_id, timeout_s)

    def hook_rejected(self, hook: str, code: str) -> None:
        self.metrics.hook_rejected(hook, code)

    # -- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store (retried in the background if unreachable) and start scheduling."""
        # CPU-bound check code holds the GIL; a 1 ms handover (default 5 ms) keeps the
        # scheduler, the API and other runs responsive next to it (measured: main-loop lag
        # ≤ ~2 ms beside a spinning check, vs ~30 ms at 5 ms).
        sys.setswitchinterval(0.001)
        gc_tuning.tune()
        malloc_tuning.fix_mmap_threshold()
        self.pools.start(self.settings, self.state.checks)  # they load the checks meanwhile
        self.metrics.watch_run_processes(self.pools.ready_count)
        await self._open_store()
        if self.store is None:
            self._background.append(asyncio.create_task(self._store_reconnect()))
        self._writer_task = asyncio.create_task(self.writer.run())
        usable = lambda: self.store if self.store_ok else None  # noqa: E731
        self._background.append(asyncio.create_task(retention(usable)))
        self._background.append(asyncio.create_task(alerts_catch_up(self.alerts, STORE_RETRY_S)))
        if self.membership is not None:
            self._background.append(asyncio.create_task(self.remote.serve()))
        self._outbox_task = asyncio.create_task(self.outbox.run())
        if self.membership is not None:
            self._background.append(asyncio.create_task(self.membership.run()))
        if self.takeover is not None:
            self._background.append(asyncio.create_task(self.takeover.run()))
        if self.store is not None:
            with contextlib.suppress(StoreError):
                await self.alerts.refresh_incidents()
        await self.runner.warm_up()
        self.metrics.cluster.declare(
            self.settings.location,
            expected=self.settings.cluster.expected_members,
            members=self.sharing.members(),
            owned=0,
        )
        self._apply(self.state)
        await self.pools.started()
        if self.settings.scheduler.enabled:
            self.scheduler.start()
        self._settle_heap()
        log.info(
            "agent started",
            extra={"checks": len(self.state.checks), "jobs": self.scheduler.job_count()},
        )

    async def stop(self) -> None:
        """Take no new work, let in-flight runs finish within the grace period, flush."""
        self._stopping.set()
        if self._warmup_freeze is not None:
            self._warmup_freeze.cancel()
        self.scheduler.shutdown()
        if self.membership is not None:
            await self.membership.leave()  # the others take this agent's checks now
        await self.deploys.shutdown()
        grace = self.settings.scheduler.shutdown_grace
        if self._in_flight:
            log.info("waiting for in-flight runs", extra={"runs": len(self._in_flight)})
            _done, still = await asyncio.wait(set(self._in_flight), timeout=grace)
            for run in still:
                run.cancel()
            if still:
                log.warning("cancelled runs after the grace period", extra={"runs": len(still)})
        await self.pools.close()
        if self._writer_task is not None:
            self._writer_task.cancel()
            await asyncio.gather(self._writer_task, return_exceptions=True)
        await self.writer.flush()
        if self._publishing:  # stored or buffered by the flush: only alerting is left
            _published, stuck = await asyncio.wait(set(self._publishing), timeout=PUBLISH_DRAIN_S)
            for publishing in stuck:
                publishing.cancel()
        await self.sinks.close()  # the writer (flushed above, now a no-op), then alerting
        await self.outbox.stop()
        self._outbox_task.cancel()
        await asyncio.gather(self._outbox_task, return_exceptions=True)
        await asyncio.to_thread(self.tracing.shutdown, TRACE_FLUSH_S)
        await self.workers.close()
        await self.executor.close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.store is not None:
            await self.store.close()
        log.info("agent stopped")

    async def reload(self) -> ReloadOutcome:
        """Reload config and checks; with errors, keep the previous set running. Reloads
        run one at a time, in the order asked."""
        async with self._reloading:
            return await self._reload()

    async def _reload(self) -> ReloadOutcome:
        # Run processes load the new checks (while they keep running the old ones) at the
        # same time as the agent: everything switches together below, or, if the agent
        # rejects them, the generation they loaded is never used.
        preparing = asyncio.ensure_future(self.pools.prepare_reload())
        try:
            # On a thread: loading thousands of checks takes seconds, and the loop keeps
            # scheduling, serving and publishing meanwhile (measured at 5,000 checks: lag
            # p99 4.5 s after a reload on the loop).
            state = await asyncio.to_thread(load_state, self.config_path, self.check_paths)
        except ConfigError as exc:
            outcome = ReloadOutcome(False, len(self.state.checks), list(exc.problems))
        else:
            if state.problems:
                outcome = ReloadOutcome(False, len(self.state.checks), list(state.problems))
            else:
                generations = await preparing
                runner = self._new_runner(state.settings)
                await runner.warm_up()  # before the switch: no await between it and runs
                self.state = state
                # Rotated API tokens and HMAC secrets take effect on reload, like the hooks
                # (read per request from `settings`).
                self.authenticator = _authenticator(state.settings, self._signatures_seen)
                self.runner = runner
                self.baselines.reconfigure(state.settings.baseline)
                self._apply(state)
                self.pools.commit(generations)
                self.pools.start(state.settings, state.checks)  # the first browser check
                self._settle_heap()
                outcome = ReloadOutcome(True, len(state.checks))
        finally:
            await preparing  # bounded (RunProcesses.prepare_reload): reloads stay in order
        self.last_reload = outcome
        self.metrics.reloaded(outcome.ok)
        if outcome.ok:
            log.info("reloaded", extra={"checks": outcome.checks})
        else:
            log.error(
                "reload rejected; previous checks keep running",
                extra={"problems": outcome.problems},
            )
        return outcome

    def _apply(self, state: LoadedState) -> None:
        # Looked up for every result (alerting): a scan of thousands of checks per run
        # was a measurable share of the agent's CPU.
        self._by_name = {check.name: check for check in state.checks}
        self.metrics.checks_in_set(len(state.checks))
        scheduled = state.settings.scheduler.enabled
        self.sharing.set_pairs(scheduled_pairs(state.checks, state.settings) if scheduled else [])
        self.metrics.declare_deploy_targets(
            (svc, env) for env, e in state.settings.environments.items() for svc in e.services
        )
        self.metrics.declare_playbooks(
            {name: page_actions(p) for name, p in state.settings.playbooks.items()}
        )

    def _schedule_share(self, pairs: Sequence[tuple[CheckSpec, str]]) -> None:
        """Schedule the pairs this agent runs (all, or its cluster share), and export
        their per-check series."""
        self.scheduler.replace(pairs)
        self.alerts.checks_moved([(check.name, env) for check, env in pairs])
        scheduled = self.settings.scheduler.enabled
        intervals = {(c.name, env): interval_s(c) for c, env in pairs} if scheduled else {}
        self.metrics.set_schedule(intervals, self.settings.location)
        self.metrics.cluster.seen(
            self.settings.location, members=self.sharing.members(), owned=len(pairs)
        )

    def cluster_view_changed(self) -> None:
        """The membership read the cluster (or lost its lease): recompute the share."""
        self.sharing.refresh()
        self.metrics.cluster.seen(
            self.settings.location,
            members=self.sharing.members(),
            owned=self.sharing.owned_count,
        )

    def lease_lost(self) -> None:
        """Fenced: the checks stop through the share; deploys go to a live member."""
        self.metrics.cluster.lease_lost(self.settings.location)
        self.deploys.hand_over()

    def _settle_heap(self) -> None:
        """Freeze the loaded heap now, and what the first runs add (metric series) once
        every check has run: see synth.agent.gc_tuning."""
        gc_tuning.freeze(full=True)
        if self._warmup_freeze is not None:
            self._warmup_freeze.cancel()
        pairs = scheduled_pairs(self.state.checks, self.settings)
        delay = gc_tuning.warmup_s(
            (interval_s(c) for c, _ in pairs), self.settings.scheduler.jitter
        )
        self._warmup_freeze = asyncio.get_running_loop().call_later(
            delay, lambda: gc_tuning.freeze(full=False)
        )

    # -- running ------------------------------------------------------------------------

    def checks_for(self, service: str, env: str, tags: Sequence[str]) -> Sequence[CheckSpec]:
        """Configured checks of a service in an environment (deploy selection)."""
        return select_checks(
            self.state.checks, self.settings, env, tags=tags, service=service
        ).checks

    async def execute(self, request: RunRequest, *, due: float | None = None) -> RunResult:
        """Run one check with bounded concurrency, then publish the result. The run is
        shielded: a caller that goes away (scheduler stopping, client disconnecting) does not
        cut it short, and a graceful stop waits for it. `due` (unix time) is when a
        scheduled run should have started: its lag is measured as it really starts."""
        task = asyncio.create_task(self._run_and_publish(request, due))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return await asyncio.shield(task)

    async def _run_and_publish(self, request: RunRequest, due: float | None) -> RunResult:
        result = await self.executor.run(request, due)
        result = await self.baselines.apply(result)
        if due is not None and len(self._publishing) < PENDING_RESULTS_MAX:
            # A scheduled run ends here; storing and alerting go on in the background, so a
            # store that lags behind is not taken for the check overlapping itself. Past
            # the bound, runs wait for their results to be stored (backpressure).
            publishing = asyncio.create_task(self._publish_logged(result))
            self._publishing.add(publishing)
            publishing.add_done_callback(self._publishing.discard)
        else:
            await self._publish(result)
        return result

    async def _publish_logged(self, result: RunResult) -> None:
        try:
            await self._publish(result)
        except Exception:  # a background task: nobody else would see it
            log.exception("publishing a run result failed", extra={"check": result.check})

    async def _fire(self, check: CheckSpec, env: str, due: float) -> None:
        if self.stopping or not self.sharing.may_run(check.name, env):
            return
        await self.execute(
            RunRequest(
                check=check, environment=env, phase=Phase.SCHEDULED, location=self.settings.location
            ),
            due=due,
        )

    async def _publish(self, result: RunResult) -> None:
        # The log line; the store, before /metrics counts it while the store answers (so a
        # counted run survives a SIGKILL), buffered and counted at once while it does not;
        # alerting, whatever the store did (synth.outputs.sinks).
        await self.sinks.publish(result)

    async def _save_runs(self, results: Sequence[RunResult]) -> None:
        if self.store is None:
            raise StoreError("the store is not open yet")
        await self.store.save_runs(results)

    def _check_named(self, name: str) -> CheckSpec | None:
        return self._by_name.get(name)

    async def _deploy_announced(self, record: DeployRecord) -> None:
        await self.alerts.announce_deploy(record)

    # -- store --------------------------------------------------------------------------

    async def _open_store(self) -> None:
        try:
            self.store = await Store.open(
                self.settings.store.url,
                max_age_s=self.settings.store.retention_age,
                max_runs_per_check=self.settings.store.retention_runs,
            )
            self.store_ok = True
            self.deploys.store = self.store
        except StoreError as exc:
            self._store_failed("open", exc)

    def _store_failed(self, operation: str, exc: Exception) -> None:
        self.store_ok = False
        self.metrics.store_error(operation)
        log.warning("store unavailable: %s", exc, extra={"operation": operation})

    def _store_recovered(self) -> None:
        self.store_ok = True
        log.info("store reachable again; buffered results written")

    def _new_runner(self, settings: Settings) -> Runner:
        return Runner(settings, tracer=self.tracing.tracer, retry_elsewhere=self._retry)

    async def _retry(self, request: RunRequest, failed: RunResult) -> RunResult | None:
        return await self.remote.retry(request, failed)

    async def _store_reconnect(self) -> None:
        while self.store is None:
            await asyncio.sleep(STORE_RETRY_S)
            await self._open_store()

    async def ready(self) -> dict[str, bool]:
        """Readiness parts: config and checks loaded, scheduler running, store reachable
        and taking writes (a full disk answers SELECT 1 but stores nothing)."""
        store_ok = False
        if self.store is not None:
            store_ok = await self.store.ping()
            self.store_ok = store_ok
        cluster = {} if self.membership is None else {"cluster_joined": self.membership.joined}
        return {
            "config_loaded": True,
            "checks_loaded": bool(self.state.checks),
            "scheduler_running": self.scheduler.running or not self.settings.scheduler.enabled,
            "store_reachable": store_ok,
            "store_writable": self.writer.healthy,
            "stopping": self.stopping,
        } | cluster

    # -- process ------------------------------------------------------------------------

    async def serve(self, listen: socket.socket) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads."""
        from synth.agent.server import ApiServer

        server = ApiServer(self, listen)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stopping.set)
        loop.add_signal_handler(signal.SIGINT, self._stopping.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        await self.start()
        server_task = asyncio.create_task(server.serve())
        try:
            await self._stopping.wait()
            log.info("stopping: no new work, finishing in-flight runs")
            await self.stop()
        finally:
            await server.shutdown()
            server_task.cancel()
            await asyncio.gather(server_task, return_exceptions=True)


def _start_tracing(config: TracingConfig, settings: Settings, metrics: Metrics) -> Tracing:
    if config.enabled:
        metrics.watch_exporter(config.exporter_name)
    # The resource names an environment only when the agent watches just one.
    envs = list(settings.environments)
    return start_tracing(
        config,
        location=settings.location,
        environment=envs[0] if len(envs) == 1 else None,
        counters=metrics,
    )


def _authenticator(settings: Settings, seen: ReplayCache) -> Authenticator:
    server = settings.server
    tokens = [ref.resolve().get_secret_value() for ref in server.tokens]
    secret = server.hmac_secret.resolve().get_secret_value() if server.hmac_secret else None
    return Authenticator(
        tokens=tokens,
        hmac_secret=secret,
        replay_window_s=server.replay_window,
        seen=seen,
        metrics_tokens=[ref.resolve().get_secret_value() for ref in server.metrics_tokens],
    )
