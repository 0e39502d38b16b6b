"""Settings: one YAML file (`synth.yaml`, `--config` or `SYNTH_CONFIG`), every field
overridable by `SYNTH_...` environment variables (nested with `__`), validated once at start
into frozen typed objects. Nothing downstream re-reads files or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from synth.alerting.silences import MaintenanceWindow
from synth.alerting.webhook_settings import WebhookSettings, require_a_channel
from synth.browser.settings import BrowserSettings
from synth.errors import SynthError
from synth.metrics_settings import MetricsSettings
from synth.model import Sensitivity, Severity
from synth.redact import register_process_secret
from synth.secret_ref import Secret
from synth.secret_ref import SecretRef as SecretRef  # re-exported: synth.config.SecretRef
from synth.secret_ref import secret_shorthand as _secret_shorthand
from synth.units import parse_duration, parse_size

DEFAULT_CONFIG_FILE = "synth.yaml"
CONFIG_ENV_VAR = "SYNTH_CONFIG"


class ConfigError(SynthError):
    """The configuration cannot be used; the message names the field path and the reason."""

    def __init__(self, problems: list[str], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + "; ".join(problems))


Seconds = Annotated[float, BeforeValidator(parse_duration)]
Bytes = Annotated[int, BeforeValidator(parse_size)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TlsSettings(_Frozen):
    """How synth verifies a target's certificate."""

    verify: bool = True
    ca_file: Path | None = None


class ServiceTarget(_Frozen):
    """Where one service lives in one environment."""

    base_url: str
    headers: dict[str, str] = Field(default_factory=dict)
    tls: TlsSettings | None = None

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")


class EnvironmentSettings(_Frozen):
    """One environment: per-service base URLs, default headers, TLS and secrets."""

    services: dict[str, ServiceTarget] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    tls: TlsSettings = TlsSettings()
    secrets: dict[str, Annotated[SecretRef, BeforeValidator(_secret_shorthand)]] = Field(
        default_factory=dict
    )
    # Whether failures here count as reaching production ("caught before production"):
    # by default every environment but the baseline's pre-prod one (`baseline.from_env`).
    production: bool | None = None


class RunnerSettings(_Frozen):
    """Limits that keep one run bounded whatever the target does."""

    request_timeout: Seconds = 10.0
    max_body_bytes: Bytes = 1024 * 1024
    excerpt_chars: int = Field(default=300, ge=0, le=10_000)
    concurrency: int = Field(default=20, ge=1, le=10_000)
    retry_delay: Seconds = 1.0
    user_agent: str = "synth/0.1"


class ServerSettings(_Frozen):
    """The agent's HTTP API."""

    host: str = "127.0.0.1"
    port: int = Field(default=8484, ge=0, le=65535)
    max_body_bytes: Bytes = 64 * 1024
    tokens: list[Annotated[SecretRef, BeforeValidator(_secret_shorthand)]] = Field(
        default_factory=list
    )
    hmac_secret: Annotated[SecretRef, BeforeValidator(_secret_shorthand)] | None = None
    replay_window: Seconds = 300.0
    public_url: str | None = None
    # Reads (`/v1/...`, `/docs`, `/openapi.json`) take the same credentials as writes;
    # `/healthz` and `/readyz` stay open for probes, `/metrics` is governed by metrics_tokens.
    read_auth: bool = False
    # Against slow and greedy clients (read at start): a complete request head within
    # header_timeout; at most max_connections_per_client open from one address (0: no bound;
    # behind a proxy or sidecar every client is the proxy's address).
    header_timeout: Seconds = Field(default=10.0, gt=0)
    max_connections_per_client: int = Field(default=100, ge=0)
    metrics_tokens: list[Annotated[SecretRef, BeforeValidator(_secret_shorthand)]] = Field(
        default_factory=list
    )


class StoreSettings(_Frozen):
    """Where run results, deploys and verdicts are kept."""

    url: str = "sqlite+aiosqlite:///synth.db"
    retention_age: Seconds = 30 * 86400.0
    retention_runs: int = Field(default=10_000, ge=1)


class SchedulerSettings(_Frozen):
    """How the agent spreads and bounds scheduled runs."""

    enabled: bool = True
    jitter: Seconds = 1.0
    misfire_grace: Seconds = 30.0
    concurrency: int = Field(default=100, ge=1, le=100_000)
    shutdown_grace: Seconds = 30.0
    # `code`: Python checks run on worker threads, declarative (YAML) checks, which run
    # only synth's own code, on the agent's loop; `all`: every run on a worker thread.
    isolation: Literal["code", "all"] = "code"
    # Run processes for scheduled declarative checks (0: none, all runs in the agent's own
    # process). One process runs ~400-500 one-request checks/s: use one per core beyond that.
    processes: int = Field(default=0, ge=0, le=64)


class DeploySettings(_Frozen):
    """Defaults and limits for deploy verification."""

    settle: Seconds = 0.0
    window: Seconds = 0.0
    interval: Seconds = 15.0
    max_window: Seconds = 3600.0
    max_settle: Seconds = 900.0
    # Agents sharing a store: a verification whose record has had no heartbeat for this
    # long is taken as orphaned (its agent died) and finished as `error` by whoever asks.
    lease: Seconds = Field(default=30.0, ge=0.5)


class ClusterSettings(_Frozen):
    """Agents sharing one PostgreSQL store and one `location` share its checks: each
    (check × environment) runs on one live member (see synth.cluster)."""

    enabled: bool = True
    # Unique per agent and stable across its restarts (a pod name): a restarted member takes
    # back the same checks. Default: the host name.
    member_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
    # A member that could not renew its lease for this long is gone; its checks move.
    lease: Seconds = Field(default=10.0, ge=1.0, le=600.0)
    # The member count the `SynthClusterMembersMissing` alert expects (0: no expectation).
    expected_members: int = Field(default=0, ge=0, le=1000)


_HOOK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class HookTarget(_Frozen):
    """The synth service and environment a CD tool's object (app, canary) maps to."""

    service: str = Field(pattern=_HOOK_NAME)
    environment: str = Field(pattern=_HOOK_NAME)


class BasicAuth(_Frozen):
    """HTTP basic credentials a CD tool sends (Argo CD notifications `basicAuth`)."""

    username: str = Field(min_length=1)
    password: Secret


class GitHubHook(_Frozen):
    """GitHub `deployment_status` webhooks, signed with the webhook secret."""

    secret: Secret
    services: dict[str, Annotated[str, Field(pattern=_HOOK_NAME)]] = Field(
        description='repository full name → synth service, e.g. {"org/repo": "shop"}'
    )
    environments: dict[str, Annotated[str, Field(pattern=_HOOK_NAME)]] = Field(
        default_factory=dict, description="GitHub environment → synth environment (default: same)"
    )


class TokenHook(_Frozen):
    """A hook authenticated by bearer tokens (default: the agent's `server.tokens`)."""

    tokens: list[Secret] = Field(default_factory=list)
    targets: dict[str, HookTarget] = Field(
        default_factory=dict, description="the tool's object name → service and environment"
    )


class ArgoCdHook(TokenHook):
    """Argo CD notifications webhooks: bearer token or basic auth."""

    basic_auth: BasicAuth | None = None


class GateHook(TokenHook):
    """Hooks that wait for the verdict and answer with it (Flagger, Argo Rollouts)."""

    wait: Seconds = Field(default=60.0, gt=0, le=600)


class HooksSettings(_Frozen):
    """CD tool adapters under `/v1/hooks/<tool>`; a tool without a section answers 404."""

    github: GitHubHook | None = None
    argocd: ArgoCdHook | None = None
    flagger: GateHook | None = None
    argo_rollouts: GateHook | None = None


class ContractPolicy(_Frozen):
    """What each kind of response-contract drift does: fail the run, warn, or nothing."""

    missing: Severity = Severity.FAIL
    type_changed: Severity = Severity.FAIL
    new_field: Severity = Severity.WARN


class BaselineOverride(_Frozen):
    """Per-check changes to the baseline comparison (unset fields keep the default)."""

    enabled: bool | None = None
    latency_factor: float | None = Field(default=None, gt=1.0)
    min_samples: int | None = Field(default=None, ge=1)
    min_increase: Seconds | None = None
    contract: ContractPolicy | None = None


class BaselineSettings(_Frozen):
    """Comparing production with the pre-prod baseline (off until `from_env` is set)."""

    from_env: str | None = None
    enabled: bool = True
    latency_factor: float = Field(default=2.0, gt=1.0)
    min_samples: int = Field(default=20, ge=1)
    min_increase: Seconds = 0.05
    window: int = Field(default=50, ge=1, le=10_000)
    window_min_samples: int = Field(default=20, ge=1)
    contract: ContractPolicy = ContractPolicy()
    checks: dict[str, BaselineOverride] = Field(default_factory=dict)

    def for_check(self, check: str) -> BaselineSettings:
        """These settings with the check's override applied."""
        override = self.checks.get(check)
        if override is None:
            return self
        changes = {k: v for k, v in override.model_dump(exclude_none=True).items()}
        if override.contract is not None:
            changes["contract"] = override.contract
        return self.model_copy(update=changes)


PageSeverity = Literal["critical", "error", "warning", "info"]


class TriggerRule(_Frozen):
    """When one location counts as failing: `consecutive` failed runs in a row,
    `failures` of the last `of_last` runs, or every run for `failing_for` (at least two)."""

    consecutive: int | None = Field(default=None, ge=1, le=1000)
    failures: int | None = Field(default=None, ge=1, le=1000)
    of_last: int | None = Field(default=None, ge=1, le=1000)
    failing_for: Seconds | None = Field(default=None, gt=0, le=86_400)

    @model_validator(mode="after")
    def _one_rule(self) -> TriggerRule:
        window = (self.failures, self.of_last)
        given = [
            self.consecutive is not None,
            window != (None, None),
            self.failing_for is not None,
        ]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of: consecutive, failures with of_last, or failing_for"
            )
        if window != (None, None):
            if None in window:
                raise ValueError("give both failures and of_last")
            assert self.failures is not None
            assert self.of_last is not None
            if self.failures > self.of_last:
                raise ValueError("failures cannot exceed of_last")
        return self


class FlakySettings(_Frozen):
    """A low-urgency notification when a check's transient failures over 24 h reach
    `notify_above` (a ratio) after at least `min_runs` runs; it resolves below half that."""

    notify_above: float = Field(default=0.05, gt=0, le=1)
    min_runs: int = Field(default=20, ge=1)


class PlaybookSettings(_Frozen):
    """How one team is paged: where (routing key, webhook), how loud, and when."""

    routing_key: Annotated[SecretRef, BeforeValidator(_secret_shorthand)] | None = None
    webhook: WebhookSettings | None = None
    severity: dict[str, PageSeverity] = Field(default_factory=dict)
    runbook_url: str | None = None
    dashboard_url: str | None = None
    trace_url_template: str | None = None
    # Unset trigger / resolve_after come from the sensitivity preset (synth.alerting.policy).
    sensitivity: Sensitivity = Sensitivity.MEDIUM
    trigger: TriggerRule | None = None
    min_locations: int = Field(default=1, ge=1, le=100)
    resolve_after: int | None = Field(default=None, ge=1, le=1000)
    reopen_after: Seconds = Field(default=300.0, ge=0)
    location_stale_after: Seconds = Field(default=900.0, gt=0)
    retrigger_after: Seconds = Field(default=1800.0, ge=0)
    slack_webhook: Annotated[SecretRef, BeforeValidator(_secret_shorthand)] | None = None
    flaky: FlakySettings | None = None
    _a_channel = model_validator(mode="after")(require_a_channel)

    @field_validator("trace_url_template")
    @classmethod
    def _has_trace_id(cls, value: str | None) -> str | None:
        if value is not None and "{trace_id}" not in value:
            raise ValueError("must contain {trace_id}")
        return value

    def severity_for(self, phase: str, environment: str) -> PageSeverity:
        """The phase's severity, else the environment's, else `default`, else critical."""
        for key in (phase, environment, "default"):
            if key in self.severity:
                return self.severity[key]
        return "critical"


class PagerDutySettings(_Frozen):
    """How synth reaches the PagerDuty Events API v2, and how its outbox retries."""

    api_url: str = "https://events.pagerduty.com"
    verify: bool = True
    ca_file: Path | None = None
    timeout: Seconds = Field(default=10.0, gt=0, le=300)
    retry_initial: Seconds = Field(default=1.0, gt=0)
    retry_max: Seconds = Field(default=300.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(
                f"must be an https:// URL (the PagerDuty client requires it), got {value!r}"
            )
        return value.rstrip("/")


class Settings(BaseSettings):
    """The whole configuration of synth."""

    model_config = SettingsConfigDict(
        env_prefix="SYNTH_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    location: str = "local"
    checks: list[str] = Field(default_factory=lambda: ["checks"])
    environments: dict[str, EnvironmentSettings] = Field(default_factory=dict)
    runner: RunnerSettings = RunnerSettings()
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    metrics: MetricsSettings = MetricsSettings()
    deploys: DeploySettings = DeploySettings()
    hooks: HooksSettings = HooksSettings()
    baseline: BaselineSettings = BaselineSettings()
    playbooks: dict[str, PlaybookSettings] = Field(default_factory=dict)
    default_playbook: str | None = None
    maintenance: list[MaintenanceWindow] = Field(default_factory=list, max_length=1000)
    pagerduty: PagerDutySettings = PagerDutySettings()
    cluster: ClusterSettings = ClusterSettings()
    browser: BrowserSettings = BrowserSettings()

    @model_validator(mode="after")
    def _known_default_playbook(self) -> Settings:
        if self.default_playbook is not None and self.default_playbook not in self.playbooks:
            known = ", ".join(sorted(self.playbooks)) or "none configured"
            raise ValueError(
                f"default_playbook: unknown playbook {self.default_playbook!r} (known: {known})"
            )
        return self

    @field_validator("location")
    @classmethod
    def _bounded_label(cls, value: str) -> str:
        if not value or len(value) > 64:
            raise ValueError("must be 1 to 64 characters (it is a metric label)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # File values arrive as init kwargs; environment variables override them.
        return (env_settings, init_settings)


@dataclass(frozen=True, slots=True)
class Environment:
    """An environment resolved for running: secrets read, ready for the runner."""

    name: str
    services: Mapping[str, ServiceTarget]
    headers: Mapping[str, str]
    tls: TlsSettings
    secrets: Mapping[str, SecretStr]


def resolve_environment(settings: Settings, name: str) -> Environment:
    """Resolve one environment's secrets; ConfigError names every missing one."""
    env = settings.environments.get(name)
    if env is None:
        known = ", ".join(sorted(settings.environments)) or "none configured"
        raise ConfigError([f"environments.{name}: unknown environment (known: {known})"])
    resolved: dict[str, SecretStr] = {}
    problems: list[str] = []
    for secret_name, ref in env.secrets.items():
        try:
            resolved[secret_name] = ref.resolve()
            register_process_secret(resolved[secret_name].get_secret_value())
        except ValueError as exc:
            problems.append(f"environments.{name}.secrets.{secret_name}: {exc}")
    if problems:
        raise ConfigError(problems)
    return Environment(
        name=name, services=env.services, headers=env.headers, tls=env.tls, secrets=resolved
    )


def find_config_file(explicit: str | None) -> Path | None:
    """The file to load: --config, then $SYNTH_CONFIG, then ./synth.yaml if present."""
    if explicit:
        return Path(explicit)
    from_env = os.environ.get(CONFIG_ENV_VAR)
    if from_env:
        return Path(from_env)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(path: Path | None) -> Settings:
    """Read, validate and freeze the configuration; raise ConfigError naming each field path."""
    data: dict[str, Any] = {}
    source = str(path) if path else None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"cannot read config file: {exc.strerror}"], source) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError([f"invalid YAML: {exc}"], where) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(["the top level must be a mapping"], source)
        data = loaded
        base = path.parent
        checks = data.get("checks")
        if isinstance(checks, list):
            data["checks"] = [
                str(base / c) if not Path(str(c)).is_absolute() else c for c in checks
            ]
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe_validation(exc), source) from None


def _describe_validation(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{path}: {message}")
    return problems
