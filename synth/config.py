"""Settings: one YAML file (`synth.yaml`, `--config` or `SYNTH_CONFIG`), every field
overridable by `SYNTH_...` environment variables (nested with `__`), validated once at start
into frozen typed objects. Nothing downstream re-reads files or the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
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

from synth.units import parse_duration, parse_size

DEFAULT_CONFIG_FILE = "synth.yaml"
CONFIG_ENV_VAR = "SYNTH_CONFIG"


class ConfigError(Exception):
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


class SecretRef(_Frozen):
    """A secret taken from an environment variable, a file (Kubernetes secret mount) or,
    for demos, an inline value. Exactly one source."""

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        given = [s for s in (self.env, self.file, self.value) if s is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of env, file or value")
        return self

    def resolve(self) -> SecretStr:
        """Read the secret now; raises ValueError saying which source is missing."""
        if self.value is not None:
            return self.value
        if self.env is not None:
            found = os.environ.get(self.env)
            if found is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return SecretStr(found)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ValueError(f"cannot read secret file {self.file}: {exc.strerror}") from None


def _secret_shorthand(value: Any) -> Any:
    # `password: ${ENV_NAME}` style shorthand is ambiguous; accept "env:NAME" and "file:/path".
    if isinstance(value, str):
        kind, sep, rest = value.partition(":")
        if sep and kind in ("env", "file"):
            return {kind: rest}
        return {"value": value}
    return value


class EnvironmentSettings(_Frozen):
    """One environment: per-service base URLs, default headers, TLS and secrets."""

    services: dict[str, ServiceTarget] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    tls: TlsSettings = TlsSettings()
    secrets: dict[str, Annotated[SecretRef, BeforeValidator(_secret_shorthand)]] = Field(
        default_factory=dict
    )


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
    deploys: DeploySettings = DeploySettings()

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
