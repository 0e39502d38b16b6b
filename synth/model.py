"""The shared vocabulary: every trigger, the runner and every output speak these types.

Words defined here (failure types, phases, statuses) are the exact strings used in metric
labels, span attributes, reports, page summaries and the API. Add a word here first.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from synth.checks.flow import Flow


class FailureType(enum.StrEnum):
    """Why a run failed, stable across every output."""

    DNS = "dns"
    CONNECT = "connect"
    TLS = "tls"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    AUTH = "auth"
    SCHEMA = "schema"
    ASSERTION = "assertion"
    REGRESSION = "regression"
    SCRIPT_ERROR = "script_error"


class Phase(enum.StrEnum):
    """Where in the delivery pipeline a run happened."""

    PREPROD = "preprod"
    DEPLOY = "deploy"
    SCHEDULED = "scheduled"
    ADHOC = "adhoc"


class Severity(enum.StrEnum):
    """How much a baseline finding matters: `fail` fails the run, `warn` is only reported."""

    FAIL = "fail"
    WARN = "warn"
    IGNORE = "ignore"


class Sensitivity(enum.StrEnum):
    """How readily a check pages: a preset of (retries, trigger, resolve_after); see
    synth.alerting.policy."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Status(enum.StrEnum):
    """Outcome of a run or a step."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


PASSED_AFTER_RETRY = "passed_after_retry"
"""A run's outcome (not a status) when it passed only on a retry."""


class AlertAction(enum.StrEnum):
    """What the incident playbook sends: a PagerDuty trigger, resolve or change event, a
    Slack notification, or a signed webhook event (any of the three, to the playbook's
    `webhook`)."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"
    CHANGE = "change"
    SLACK = "slack"
    WEBHOOK = "webhook"


class DeliveryResult(enum.StrEnum):
    """The outcome of one delivery attempt of an alert."""

    SENT = "sent"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a check runs on its own: a fixed interval or a cron expression."""

    every_s: float | None = None
    cron: str | None = None

    def describe(self) -> str:
        if self.cron is not None:
            return f"cron {self.cron}"
        if self.every_s is not None:
            return f"every {format_seconds(self.every_s)}"
        return "manual"


CheckFunc = Callable[["Flow"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where a check was defined, for error messages and `synth list`."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """A loaded check: metadata plus the coroutine function that runs the flow.

    Python and YAML checks both compile to this.
    """

    name: str
    func: CheckFunc
    service: str
    environments: tuple[str, ...] = ()
    schedule: Schedule = Schedule(every_s=60.0)
    timeout_s: float = 30.0
    retries: int | None = None
    """Extra attempts before a run counts as failed; None: from the sensitivity preset."""
    sensitivity: Sensitivity | None = None
    follow_redirects: bool = True
    max_redirects: int = 10
    tags: tuple[str, ...] = ()
    playbook: str | None = None
    description: str = ""
    runbook_url: str | None = None
    source: SourceLocation | None = None
    kind: str = "python"
    uses_browser: bool = False
    """Drives a browser (`flow.page()` or a YAML `browser:` step): the agent runs it on a
    browser worker."""

    def applies_to(self, environment: str) -> bool:
        return not self.environments or environment in self.environments


@dataclass(frozen=True, slots=True)
class DeployContext:
    """The deploy a verification run belongs to."""

    deploy_id: str
    service: str
    environment: str
    version: str
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Everything needed to run one check against one environment, however it was started."""

    check: CheckSpec
    environment: str
    phase: Phase = Phase.ADHOC
    location: str = "local"
    deploy: DeployContext | None = None


@dataclass(frozen=True, slots=True)
class HttpTimings:
    """Phase timings of one HTTP exchange, in seconds; None where the phase did not happen
    (a reused connection has no DNS, connect or TLS time).

    Phases that end when data arrives end at the kernel's receive time of that data, and
    connect is the kernel's handshake RTT (Linux), so a busy monitor does not report its
    own queueing as the target's latency. `total_s` is the sum of the phases: time on the
    network, without the gaps between phases where the exchange waited on synth itself.
    """

    dns_s: float | None = None
    connect_s: float | None = None
    tls_s: float | None = None
    send_s: float | None = None
    first_byte_s: float | None = None
    body_s: float | None = None
    total_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        phases = {
            "dns": self.dns_s,
            "connect": self.connect_s,
            "tls": self.tls_s,
            "send": self.send_s,
            "first_byte": self.first_byte_s,
            "body": self.body_s,
        }
        return {k: v for k, v in phases.items() if v is not None}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request a step made, already redacted."""

    method: str
    url: str
    status_code: int | None
    timings: HttpTimings
    bytes_received: int = 0
    body_truncated: bool = False
    trace_id: str = ""
    span_id: str = ""
    json_shape: tuple[tuple[str, str], ...] = ()
    """The JSON body's field paths and types (`("order.total", "number")`), never values;
    empty when the body was not JSON."""


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a step failed, in the words an on-call engineer needs; already redacted."""

    type: FailureType
    message: str
    expected: str | None = None
    actual: str | None = None
    method: str | None = None
    url: str | None = None
    response_excerpt: str | None = None
    traceback: str | None = None
    in_target: bool = False
    """The target itself raised it: a `script_error` thrown by the service's page (its
    JavaScript), not by the check's code — a deploy with it fails rather than errs."""
    request_headers: tuple[tuple[str, str], ...] = ()
    """The headers the failing request was sent with (`Redactor.headers`: credentials
    masked), for the run page; the per-hop `traceparent` is not among them."""
    response_headers: tuple[tuple[str, str], ...] = ()
    """The response's headers, redacted the same way."""


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of one named step of a flow."""

    name: str
    status: Status
    duration_s: float
    started_offset_s: float = 0.0
    requests: tuple[RequestRecord, ...] = ()
    failure: Failure | None = None
    details: dict[str, Any] = field(default_factory=dict)
    facts: object | None = None
    """A probe step's typed facts (synth.probes.facts: TcpResult, DnsResult, TlsResult),
    redacted; `details` is their display form."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A difference between a run and the baseline of its check (see synth.baseline)."""

    step: str
    kind: str
    """`latency`, `missing`, `type_changed` or `new_field`."""
    type: FailureType
    """`regression` for latency, `schema` for the response contract."""
    severity: Severity
    message: str
    field: str | None = None
    baseline: str | None = None
    actual: str | None = None
    ratio: float | None = None


@dataclass(frozen=True, slots=True)
class Artifact:
    """A file a run produced for the people reading its failure: a browser step's
    screenshot, Playwright trace or console log. Already redacted and size-capped; stored
    with the run (`GET /v1/runs/{id}/artifacts/{name}`) or written beside a `synth run`."""

    name: str
    """Unique within the run, a plain file name: `screenshot.png`, `trace.zip`,
    `console.log` (a run with several browser steps: `<step-slug>-screenshot.png`)."""
    content_type: str
    data: bytes
    step: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """An attempt of a run that failed and was retried: kept so that a run which passed on
    retry is never mistaken for a clean pass."""

    attempt: int
    failure: Failure
    failed_step: str | None = None
    trace_id: str = ""


@dataclass(frozen=True, slots=True)
class RunResult:
    """The immutable outcome of one RunRequest; every output consumes this."""

    run_id: str
    check: str
    service: str
    environment: str
    phase: Phase
    location: str
    status: Status
    started_at: datetime
    duration_s: float
    steps: tuple[StepResult, ...]
    attempts: int = 1
    trace_id: str = ""
    failure: Failure | None = None
    failed_step: str | None = None
    deploy: DeployContext | None = None
    tags: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    """Differences from the baseline; the runner leaves this empty and
    `synth.baseline.compare.with_findings` returns a new result carrying them."""
    failed_attempts: tuple[FailedAttempt, ...] = ()
    """The attempts before the last one, each of which failed (oldest first)."""
    artifacts: tuple[Artifact, ...] = ()
    """Files of the last attempt (browser screenshots, traces, console logs)."""
    attempt_location: str | None = None
    """Where the last attempt ran when it was not here: a retry asked of another location
    (synth.agent.remote_retry). None: every attempt ran at `location`."""

    @property
    def passed(self) -> bool:
        return self.status is Status.PASSED

    @property
    def passed_after_retry(self) -> bool:
        """Passed, but only on a retry: a transient failure, not a clean pass."""
        return self.status is Status.PASSED and bool(self.failed_attempts)

    @property
    def outcome(self) -> str:
        """`passed`, `passed_after_retry` or `failed`: the `result` of run metrics."""
        return PASSED_AFTER_RETRY if self.passed_after_retry else self.status.value

    @property
    def failure_type(self) -> FailureType | None:
        return self.failure.type if self.failure else None


def format_seconds(seconds: float) -> str:
    """Render a duration the way people write it: 250ms, 30s, 5m, 1h30m."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m" if minutes else f"{hours}h"
