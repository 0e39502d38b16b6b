"""Every metric synth exports, defined in one place.

Names follow Prometheus conventions (`synth_<noun>_<unit>`); labels are bounded — check,
env, phase, location, step, result, failure_type (plus service for deploy verdicts,
http_phase, exporter) — never URLs, ids or free text. Duration histograms carry the run's
trace id as an exemplar, exposed when the scraper asks for OpenMetrics.

A check costs Prometheus what `metrics.detail` asks (synth.metrics_settings): by default
at most 25 series for a one-step HTTP check, about what a blackbox_exporter probe exports.

The series alerts and `increase()` need are exported at 0 before their first event:
agent-wide families when the agent starts (`describe_agent`), a scheduled check's run
counters by result and state when the schedule is set, paging ones per configured
playbook. Rarer per-check series — a failure type (unless `detail: [failure_types]`), a
skipped overlap, a blocked loop, a folded step name — appear with their first event. No
family has `_created` samples (the lean families cannot have them; the rule is one for all).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from synth.metrics_settings import MetricsSettings
from synth.model import (
    PASSED_AFTER_RETRY,
    AlertAction,
    DeliveryResult,
    FailureType,
    Phase,
    RunResult,
    Status,
    StepResult,
)
from synth.outputs.browser_metrics import BrowserMetrics
from synth.outputs.cluster_metrics import ClusterMetrics
from synth.outputs.lean_histogram import LeanHistogram
from synth.outputs.lean_scalars import LeanScalars
from synth.outputs.step_metrics import StepMetrics
from synth.probes.tls import TlsResult
from synth.verdict import VerdictResult

RUN_LABELS = ("check", "env", "phase", "location")
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
STORE_OPERATIONS = (
    "open",
    "save_run",
    "save_deploy",
    "touch_deploys",
    "list_baselines",
    "update_alert",
    "add_outbox",
    "outbox",
)
"""The `operation` values of synth_store_errors_total (one per store call site)."""
RELOAD_RESULTS = ("ok", "error")
HOOKS = ("github", "argocd", "flagger", "argo_rollouts")
HOOK_REJECTION_CODES = ("400", "401", "404", "413", "422", "503")
"""The `code` values of synth_hook_rejections_total (any other 4xx/5xx counts as `other`)."""
PAGE_ACTIONS = (AlertAction.TRIGGER, AlertAction.RESOLVE, AlertAction.CHANGE)
RUN_RESULTS = (Status.PASSED.value, Status.FAILED.value, PASSED_AFTER_RETRY)
"""The `result` values of synth_check_runs_total."""
FAILURE_TYPES = tuple(failure.value for failure in FailureType)
"""The `failure_type` values of synth_check_failures_total."""

MAX_STEP_LABELS = 50
"""Distinct `step` label values one check may export; later new names fold into one."""
OTHER_STEPS = "_other"

disable_created_metrics()  # type: ignore[no-untyped-call]

log = logging.getLogger(__name__)


class StepLabels:
    """The `step` label of a check's step: its name for the first MAX_STEP_LABELS names
    the check uses, then OTHER_STEPS, so a step named after an id or a timestamp cannot
    add a series per run. Each fold is counted, and logged once per check."""

    def __init__(self, on_fold: Callable[[str], None], limit: int = MAX_STEP_LABELS) -> None:
        self._names: dict[str, set[str]] = {}
        self._warned: set[str] = set()
        self._limit = limit
        self._on_fold = on_fold

    def label(self, check: str, step: str) -> str:
        names = self._names.setdefault(check, set())
        if step in names:
            return step
        if len(names) < self._limit:
            names.add(step)
            return step
        if check not in self._warned:
            self._warned.add(check)
            log.warning(
                "check %s has more than %d distinct step names; later new ones are "
                "exported as step=%r (a step named after an id or a time?)",
                check,
                self._limit,
                OTHER_STEPS,
                extra={"check": check},
            )
        self._on_fold(check)
        return OTHER_STEPS

    def forget(self, check: str) -> None:
        self._names.pop(check, None)


class Metrics:
    """The metric families of one synth process, on their own registry."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        settings: MetricsSettings | None = None,
    ) -> None:
        settings = settings or MetricsSettings()
        self._zero_failure_types = "failure_types" in settings.detail
        # `registry` holds every metric (Pushgateway pushes, queries); the per-check
        # families are lean, exposed by their own fast writer, and everything else lives
        # in `_others` for prometheus-client's.
        self.registry = registry or CollectorRegistry()
        self._others = CollectorRegistry()
        self.registry.register(_Delegate(self._others))
        # The per-check families are lean (synth.outputs.lean_histogram, lean_scalars): a
        # dict lookup per update instead of prometheus-client's labels() (~10 µs a call),
        # and a few hundred bytes per check instead of ~4 KB of child objects and locks.
        r, lean = self._others, self.registry
        self.runs = LeanScalars(
            "synth_check_runs",
            "Check runs by result (passed, failed, passed_after_retry).",
            (*RUN_LABELS, "result"),
            kind="counter",
            registry=lean,
        )
        self.failures = LeanScalars(
            "synth_check_failures",
            "Failed runs, and runs that passed only on a retry, by the type of the failure "
            "(for a retried run, its first failed attempt's).",
            (*RUN_LABELS, "failure_type"),
            kind="counter",
            registry=lean,
        )
        self.run_duration = LeanHistogram(
            "synth_check_run_duration_seconds",
            "Wall time of a whole check run (all attempts' last).",
            RUN_LABELS,
            buckets=settings.run_duration_buckets,
            registry=lean,
        )
        self.steps = StepMetrics(
            lean, detail=settings.detail, phase_buckets=settings.http_phase_buckets
        )
        self.up = LeanScalars(
            "synth_check_up",
            "1 if the last run of the check passed, 0 if it failed.",
            RUN_LABELS,
            kind="gauge",
            registry=lean,
        )
        self.last_run = LeanScalars(
            "synth_check_last_run_timestamp_seconds",
            "Unix time the last run of the check started.",
            RUN_LABELS,
            kind="gauge",
            registry=lean,
        )
        self.consecutive_failures = LeanScalars(
            "synth_check_consecutive_failures",
            "Failed runs in a row (0 after a pass).",
            RUN_LABELS,
            kind="gauge",
            registry=lean,
        )
        self.flaky_ratio = LeanScalars(
            "synth_check_flaky_ratio",
            "Share of the last 24 h's runs that failed transiently (passed on retry, or one "
            "failed run between passes).",
            ("check", "env", "location"),
            kind="gauge",
            registry=lean,
        )
        self.silenced = LeanScalars(
            "synth_check_silenced",
            "1 while a silence or maintenance window covers the check (no pages).",
            ("check", "env", "location"),
            kind="gauge",
            registry=lean,
        )
        self.deploy_verdicts = Counter(
            "synth_deploy_verdicts",
            "Deploy verifications by verdict.",
            ("service", "env", "result"),
            registry=r,
        )
        self.schedule_lag = Histogram(
            "synth_scheduler_lag_seconds",
            "Actual start of a scheduled run minus its due time.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("synth_runs_in_flight", "Check runs executing now.", registry=r)
        self.browser = BrowserMetrics(lean, r)
        self.results_pending = Gauge(
            "synth_results_pending",
            "Finished run results not yet stored (a store falling behind the runs).",
            registry=r,
        )
        self.run_processes_ready = Gauge(
            "synth_run_processes_ready",
            "Run processes up with the checks loaded (scheduler.processes).",
            registry=r,
        )
        self.run_process_restarts = Counter(
            "synth_run_process_restarts",
            "Run processes restarted after they exited unexpectedly.",
            registry=r,
        )
        self.skipped_overlaps = LeanScalars(
            "synth_scheduler_skipped_overlaps",
            "Scheduled runs skipped because the previous run of the check was still going.",
            ("check", "env"),
            kind="counter",
            registry=lean,
        )
        self.store_errors = Counter(
            "synth_store_errors",
            "Store operations that failed (they are retried).",
            ("operation",),
            registry=r,
        )
        self.loop_blocked = LeanScalars(
            "synth_event_loop_blocked_seconds",
            "Time the agent's event loop was blocked, by the check found running.",
            ("check",),
            kind="counter",
            registry=lean,
        )
        self.steps_folded = LeanScalars(
            "synth_check_steps_folded",
            f"Steps recorded as step={OTHER_STEPS!r} because their check already exports "
            f"{MAX_STEP_LABELS} distinct step names.",
            ("check",),
            kind="counter",
            registry=lean,
        )
        self._step_labels = StepLabels(lambda check: self.steps_folded.inc((check,)))
        self.checks_loaded = Gauge("synth_checks_loaded", "Checks in the active set.", registry=r)
        self.reloads = Counter(
            "synth_reloads", "Reloads of config and checks by result.", ("result",), registry=r
        )
        self.hook_rejections = Counter(
            "synth_hook_rejections",
            "CD-tool webhook calls refused (the deploy they announced is not verified).",
            ("hook", "code"),
            registry=r,
        )
        self.check_interval = LeanScalars(
            "synth_check_interval_seconds",
            "Interval between scheduled runs of the check (cron: gap between its next two).",
            ("check", "env", "location"),
            kind="gauge",
            registry=lean,
        )
        self._scheduled: set[tuple[str, str, str]] = set()
        self.baseline_latency_ratio = Gauge(
            "synth_step_baseline_latency_ratio",
            "Recent production p95 of a step divided by its pre-prod baseline p95.",
            ("check", "env", "location", "step"),
            registry=r,
        )
        self.baseline_samples = Gauge(
            "synth_step_baseline_samples",
            "Latency samples in the pre-prod baseline a step is compared with; below "
            "baseline.min_samples (default 20) the step is not judged.",
            ("check", "env", "location", "step"),
            registry=r,
        )

        self.tls_cert_expiry = Gauge(
            "synth_tls_cert_expiry_timestamp_seconds",
            "Unix time the certificate seen by a TLS probe step stops being valid.",
            ("check", "env", "location", "step"),
            registry=r,
        )
        self.telemetry_spans_dropped = Counter(
            "synth_telemetry_spans_dropped",
            "Spans not delivered to the trace collector (queue full, export failed, stop).",
            ("exporter",),
            registry=r,
        )
        self.telemetry_export_errors = Counter(
            "synth_telemetry_export_errors",
            "Span batches the trace collector did not accept (down, timeout, refused).",
            ("exporter",),
            registry=r,
        )

        self.pages = Counter(
            "synth_pages",
            "Alert delivery attempts by playbook, action (trigger, resolve, change, slack) "
            "and result (sent, retry, rejected).",
            ("playbook", "action", "result"),
            registry=r,
        )
        self.outbox_depth = Gauge(
            "synth_outbox_depth", "Alerts stored and not yet delivered.", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "synth_outbox_oldest_age_seconds",
            "Age of the oldest undelivered alert (0 when none waits).",
            registry=r,
        )
        self.incidents_open = Gauge(
            "synth_incidents_open",
            "Incidents synth has triggered and not yet resolved, by playbook.",
            ("playbook",),
            registry=r,
        )
        self.cluster = ClusterMetrics(r)
        # What the fast writer renders: every lean family above, whichever gets added.
        families = [*vars(self).values(), *vars(self.browser).values(), *self.steps.families()]
        self._lean = tuple(v for v in families if isinstance(v, LeanHistogram | LeanScalars))

    def describe_agent(self, *, version: str, location: str) -> None:
        """Agent self-metrics: synth_agent_info{version,location} and process_* metrics."""
        Info("synth_agent", "The running synth agent.", registry=self._others).info(
            {"version": version, "location": location}
        )
        ProcessCollector(registry=self._others)
        PlatformCollector(registry=self._others)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        for operation in STORE_OPERATIONS:
            self.store_errors.labels(operation)
        for hook in HOOKS:
            for code in (*HOOK_REJECTION_CODES, "other"):
                self.hook_rejections.labels(hook, code)

    # -- trace export (synth.outputs.span_export.ExportCounters) ------------------------------

    def watch_exporter(self, exporter: str) -> None:
        """Expose the exporter's counters at 0 before anything goes wrong."""
        self.telemetry_spans_dropped.labels(exporter)
        self.telemetry_export_errors.labels(exporter)

    def spans_dropped(self, exporter: str, count: int) -> None:
        self.telemetry_spans_dropped.labels(exporter).inc(count)

    def export_failed(self, exporter: str) -> None:
        self.telemetry_export_errors.labels(exporter).inc()

    def observe_run(self, result: RunResult) -> None:
        """Record one finished run."""
        labels = (result.check, result.environment, result.phase.value, result.location)
        failure_type = result.failure_type
        if result.passed_after_retry:  # which failure the retry hid
            failure_type = result.failed_attempts[0].failure.type
        self.runs.inc((*labels, result.outcome))
        if failure_type is not None:
            self.failures.inc((*labels, failure_type.value))
        exemplar = {"trace_id": result.trace_id} if result.trace_id else None
        self.run_duration.observe(labels, result.duration_s, exemplar)
        for step in result.steps:
            step_labels = (*labels, self.step_label(result.check, step.name))
            self.steps.observe(step_labels, step, exemplar)
            self._observe_certificate(result, step)
            self.browser.observe_step(step_labels, step)
        if result.phase is Phase.SCHEDULED and (labels[0], labels[1], labels[3]) not in (
            self._scheduled
        ):
            return  # finished after its check left this agent's schedule (set_schedule)
        self.up.set(labels, 1.0 if result.passed else 0.0)
        self.last_run.set(labels, round(result.started_at.timestamp(), 3))
        if result.passed:
            self.consecutive_failures.set(labels, 0.0)
        else:
            self.consecutive_failures.inc(labels)

    def step_label(self, check: str, step: str) -> str:
        """The bounded `step` label of a step of `check` (see StepLabels)."""
        return self._step_labels.label(check, step)

    def set_schedule(self, intervals: Mapping[tuple[str, str], float], location: str) -> None:
        """Make synth_check_interval_seconds exactly the scheduled (check, env) pairs, so
        a check taken off the schedule does not look overdue (SynthCheckNotRunning), and
        export every scheduled pair's counters (and flaky ratio) at 0."""
        wanted = {(check, env, location): s for (check, env), s in intervals.items()}
        for gone in self._scheduled - wanted.keys():
            self.check_interval.remove(gone)
            self.flaky_ratio.remove(gone)
            self.silenced.remove(gone)
            self.skipped_overlaps.remove(gone[:2])
            # Its state gauges go too: a check removed, or run by another cluster member
            # now, must not keep alerting (SynthCheckFailing) from here.
            last_state = (gone[0], gone[1], Phase.SCHEDULED.value, gone[2])
            for gauge in (self.up, self.last_run, self.consecutive_failures):
                gauge.remove(last_state)
        checks = {check for check, _, _ in wanted}
        for gone_check in {check for check, _, _ in self._scheduled} - checks:
            self.loop_blocked.remove((gone_check,))
            self.steps_folded.remove((gone_check,))
            self._step_labels.forget(gone_check)
        scheduled = Phase.SCHEDULED.value
        for labels, seconds in wanted.items():
            self.check_interval.set(labels, seconds)
            if self.flaky_ratio.value(labels) is None:  # a reload keeps a measured ratio
                self.flaky_ratio.set(labels, 0.0)
            if self.silenced.value(labels) is None:
                self.silenced.set(labels, 0.0)
            check, env, _ = labels
            for result in RUN_RESULTS:
                self.runs.inc((check, env, scheduled, location, result), 0.0)
            for failure_type in FAILURE_TYPES if self._zero_failure_types else ():
                self.failures.inc((check, env, scheduled, location, failure_type), 0.0)
        self._scheduled = set(wanted)

    def declare_playbooks(self, playbooks: Mapping[str, Iterable[AlertAction]]) -> None:
        """Export every synth_pages_total series of these playbooks (name → the actions it
        can send: PAGE_ACTIONS with a routing key, slack, webhook) at 0 before anything is
        paged."""
        for playbook, actions in playbooks.items():
            for action in actions:
                for result in DeliveryResult:
                    self.pages.labels(playbook, action.value, result.value)

    def declare_deploy_targets(self, targets: Iterable[tuple[str, str]]) -> None:
        """Export every verdict series of these (service, env) pairs at 0 before any
        deploy, so the first failed verdict is an increase Prometheus can see."""
        for service, env in targets:
            for result in VerdictResult:
                self.deploy_verdicts.labels(service, env, result.value)

    def _observe_certificate(self, result: RunResult, step: StepResult) -> None:
        if not isinstance(step.facts, TlsResult):
            return
        expiry = step.facts.not_after.timestamp()
        self.tls_cert_expiry.labels(
            result.check,
            result.environment,
            result.location,
            self.step_label(result.check, step.name),
        ).set(expiry)

    # -- named updates: the only way other modules change a family ------------------------

    def store_error(self, operation: str) -> None:
        """A store operation failed (one of STORE_OPERATIONS)."""
        self.store_errors.labels(operation).inc()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Count a run as in flight while the block runs."""
        self.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight.dec()

    def scheduled_late(self, lag_s: float) -> None:
        """A scheduled run started `lag_s` after its due time."""
        self.schedule_lag.observe(lag_s)

    def overlap_skipped(self, check: str, env: str) -> None:
        self.skipped_overlaps.inc((check, env))

    def loop_was_blocked(self, check: str, seconds: float) -> None:
        self.loop_blocked.inc((check,), seconds)

    def reloaded(self, ok: bool) -> None:
        self.reloads.labels("ok" if ok else "error").inc()

    def checks_in_set(self, count: int) -> None:
        self.checks_loaded.set(count)

    def watch_results_pending(self, pending: Callable[[], float]) -> None:
        """Read the results not yet stored at each scrape."""
        self.results_pending.set_function(pending)

    def watch_run_processes(self, ready: Callable[[], float]) -> None:
        """Read the run processes up at each scrape."""
        self.run_processes_ready.set_function(ready)

    def run_process_restarted(self) -> None:
        self.run_process_restarts.inc()

    def hook_rejected(self, hook: str, code: str) -> None:
        self.hook_rejections.labels(hook, code).inc()

    def deploy_verdict(self, service: str, env: str, result: str) -> None:
        self.deploy_verdicts.labels(service, env, result).inc()

    def baseline_compared(
        self, labels: tuple[str, str, str, str], samples: int, ratio: float | None
    ) -> None:
        """A step (check, env, location, step label) compared with a baseline of
        `samples` samples; `ratio` when its latency was judged."""
        self.baseline_samples.labels(*labels).set(samples)
        if ratio is not None:
            self.baseline_latency_ratio.labels(*labels).set(ratio)

    def flakiness(self, labels: tuple[str, str, str], ratio: float) -> None:
        """The transient-failure ratio of a check (check, env, location) over 24 h."""
        self.flaky_ratio.set(labels, ratio)

    def silence(self, labels: tuple[str, str, str], silenced: bool) -> None:
        """Whether a silence covers a scheduled check (check, env, location) now."""
        if labels in self._scheduled:
            self.silenced.set(labels, 1.0 if silenced else 0.0)

    def incidents(self, playbook: str, count: int) -> None:
        self.incidents_open.labels(playbook).set(count)

    def page_delivery(self, playbook: str, action: str, result: str) -> None:
        self.pages.labels(playbook, action, result).inc()

    def outbox_state(self, depth: int, oldest_age_s: float) -> None:
        self.outbox_depth.set(depth)
        self.outbox_oldest_age.set(max(oldest_age_s, 0.0))

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return self.negotiate(None)[0]

    def negotiate(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) for a scrape: OpenMetrics, with exemplars, when the
        `Accept` header asks for application/openmetrics-text; else the text format."""
        chunks, content_type = self.stream(accept)
        return b"".join(chunks), content_type

    def stream(self, accept: str | None) -> tuple[Iterator[bytes], str]:
        """`negotiate`'s body as chunks of about `chunk_bytes`, rendered as they are
        read: at 5,000 checks the page is ~70 MB, and built whole it tripled the agent's
        peak memory (~515 MB against ~200 MB steady)."""
        encoder, content_type = choose_encoder(accept or "")
        openmetrics = content_type.startswith("application/openmetrics-text")
        return self._chunks(encoder, openmetrics), content_type

    def _chunks(
        self, encoder: Callable[[CollectorRegistry], bytes], openmetrics: bool
    ) -> Iterator[bytes]:
        others = encoder(self._others)
        eof = openmetrics and others.endswith(_EOF)
        yield others[: -len(_EOF)] if eof else others
        lines: list[str] = []
        size = 0
        for family in self._lean:
            for line in family.render(openmetrics=openmetrics):
                lines.append(line)
                size += len(line)
                if size >= CHUNK_CHARS:
                    yield "".join(lines).encode()
                    lines, size = [], 0
        yield "".join(lines).encode()
        if eof:
            yield _EOF


_EOF = b"# EOF\n"


CHUNK_CHARS = 1 << 20  # each chunk is a hop to a thread and back: fewer, larger ones


class _Delegate(Collector):
    """Every metric of another registry, collected as part of this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()
