"""Silences and maintenance windows: while one matches a check × environment, its failures
are still run, stored and counted, but do not page (the playbook's decision is
`Decision.SILENCED` instead of a trigger; see `synth.alerting.playbook.decide`).

A silence's `reason` and `author` are free text from an authenticated writer (or the
config): they are stored, logged and shown only through `Silence.redacted` with the
agent's known secrets, and never become a metric label.

Two sources, one shape (`Silence`):
- `maintenance:` in synth.yaml (`MaintenanceWindow`): recurring (`schedule` cron +
  `duration` in a `timezone`) or one-off (`start` + `end`);
- `POST /v1/silences` (`SilenceRequest`), kept in the store so they survive restarts and
  every agent sharing the store sees them.

A silence names what it covers with `matchers` (check, service, env, tag: all must match)
or `all: true`; an empty silence is refused, so silencing everything is always explicit.
Deploy verifications are never silenced unless the silence says `deploys: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from synth.alerting.cron import Cron
from synth.redact import Redactor
from synth.units import parse_duration

MATCHER_KEYS = ("check", "service", "env", "tag")
MAX_WINDOW_S = 30 * 86_400.0
"""The longest a silence or one maintenance window may last (30 days)."""

_Name = Annotated[str, Field(min_length=1, max_length=200)]
_Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Matchers(BaseModel):
    """What a silence covers: every given key must match (a check carries `tag` among its
    tags)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: _Name | None = None
    service: _Name | None = None
    env: _Name | None = None
    tag: _Name | None = None

    def given(self) -> dict[str, str]:
        return {k: v for k in MATCHER_KEYS if (v := getattr(self, k)) is not None}


@dataclass(frozen=True, slots=True)
class Target:
    """A check × environment as a silence sees it."""

    check: str
    env: str
    service: str | None = None
    tags: tuple[str, ...] = ()
    deploy: bool = False  # a deploy verification's run


@dataclass(frozen=True, slots=True)
class Silence:
    """One silence (or one occurrence of a maintenance window): [start, end)."""

    id: str
    start: datetime
    end: datetime
    matchers: Mapping[str, str] = field(default_factory=dict)
    all: bool = False
    deploys: bool = False
    reason: str = ""
    author: str = ""
    source: str = "api"  # api | config
    created_at: datetime | None = None

    def active_at(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def matches(self, target: Target) -> bool:
        if target.deploy and not self.deploys:
            return False
        if self.all:
            return True
        for key, value in self.matchers.items():
            if key == "check" and target.check != value:
                return False
            if key == "env" and target.env != value:
                return False
            if key == "service" and target.service != value:
                return False
            if key == "tag" and value not in target.tags:
                return False
        return bool(self.matchers)

    def redacted(self, redactor: Redactor) -> Silence:
        """This silence with its free text (`reason`, `author`) through `redactor`: what
        is stored, logged or shown, as its writer gave it but for the secrets the agent
        knows."""
        return replace(self, reason=redactor.text(self.reason), author=redactor.text(self.author))

    def to_dict(self) -> dict[str, Any]:
        """The API's shape; shown to people only as `redacted(...).to_dict()`."""
        return {
            "id": self.id,
            "matchers": dict(self.matchers),
            "all": self.all,
            "deploys": self.deploys,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "reason": self.reason,
            "author": self.author,
            "source": self.source,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def _covers_something(matchers: Matchers, everything: bool) -> None:
    if everything and matchers.given():
        raise ValueError("all: true silences everything: give it no matchers")
    if not everything and not matchers.given():
        raise ValueError(
            f"matchers: give at least one of {', '.join(MATCHER_KEYS)} "
            "(to silence every check, say all: true)"
        )


def _bounded(start: datetime, end: datetime) -> None:
    if end <= start:
        raise ValueError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if (end - start).total_seconds() > MAX_WINDOW_S:
        raise ValueError(
            f"the window lasts {end - start}, longer than the {MAX_WINDOW_S / 86_400:g} days "
            "a silence may last"
        )


def _aware(moment: datetime, zone: ZoneInfo | None = None) -> datetime:
    """`moment` in UTC; a naive one is read in `zone` (UTC when none)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is out of range") from None


class SilenceRequest(BaseModel):
    """Body of `POST /v1/silences`. `start` defaults to now; times without an offset are
    UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    matchers: Matchers = Matchers()
    all: bool = False
    deploys: bool = False
    start: datetime | None = None
    end: datetime
    reason: str = Field(min_length=1, max_length=1000)
    author: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _covers_something(self.matchers, self.all)
        if self.start is not None:
            _bounded(_aware(self.start), _aware(self.end))
        return self

    def silence(self, silence_id: str, now: datetime) -> Silence:
        """The silence this asks for; ValueError when it would already be over or last
        too long."""
        start = _aware(self.start) if self.start is not None else now
        end = _aware(self.end)
        if end <= now:
            raise ValueError(f"end ({end.isoformat()}) is in the past")
        _bounded(start, end)
        return Silence(
            id=silence_id,
            start=start,
            end=end,
            matchers=self.matchers.given(),
            all=self.all,
            deploys=self.deploys,
            reason=self.reason,
            author=self.author,
            created_at=now,
        )


class MaintenanceWindow(BaseModel):
    """One entry of `maintenance:` in synth.yaml: recurring (`schedule`, `duration`,
    `timezone`) or one-off (`start`, `end`; read in `timezone` when they carry no
    offset)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    schedule: str | None = None
    duration: _Seconds | None = None
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    matchers: Matchers = Matchers()
    all: bool = False
    deploys: bool = False
    reason: str = Field(default="maintenance window", max_length=1000)

    @model_validator(mode="after")
    def _valid(self) -> Self:
        _covers_something(self.matchers, self.all)
        zone = self.zone()
        if self.schedule is not None:
            if self.start is not None or self.end is not None:
                raise ValueError("give either schedule + duration or start + end, not both")
            Cron.parse(self.schedule)
            if self.duration is None or self.duration <= 0:
                raise ValueError("a schedule needs a duration (e.g. duration: 2h)")
            if self.duration > MAX_WINDOW_S:
                raise ValueError(
                    f"duration: {self.duration:g}s is longer than the "
                    f"{MAX_WINDOW_S / 86_400:g} days a window may last"
                )
        elif self.start is not None and self.end is not None:
            if self.duration is not None:
                raise ValueError("a one-off window takes start + end, not a duration")
            _bounded(_aware(self.start, zone), _aware(self.end, zone))
        else:
            raise ValueError("give schedule + duration (recurring) or start + end (one-off)")
        return self

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone: unknown time zone {self.timezone!r} (use an IANA name such as "
                "Europe/Berlin or UTC)"
            ) from None

    def _silence(self, index: int, start: datetime, end: datetime) -> Silence:
        return Silence(
            id=f"config:{self.name or index}",
            start=start,
            end=end,
            matchers=self.matchers.given(),
            all=self.all,
            deploys=self.deploys,
            reason=self.reason,
            source="config",
        )

    def at(self, index: int, moment: datetime) -> Silence | None:
        """The occurrence active at `moment`, if any."""
        zone = self.zone()
        if self.schedule is None:
            assert self.start is not None
            assert self.end is not None
            start, end = _aware(self.start, zone), _aware(self.end, zone)
            return self._silence(index, start, end) if start <= moment < end else None
        assert self.duration is not None
        length = timedelta(seconds=self.duration)
        began = Cron.parse(self.schedule).latest_start(moment, length, zone)
        return None if began is None else self._silence(index, began, began + length)

    def current_or_next(self, index: int, moment: datetime) -> Silence | None:
        """The occurrence active at `moment`, else the next one; None when all are over."""
        active = self.at(index, moment)
        if active is not None:
            return active
        zone = self.zone()
        if self.schedule is None:
            assert self.start is not None
            assert self.end is not None
            start, end = _aware(self.start, zone), _aware(self.end, zone)
            return self._silence(index, start, end) if start > moment else None
        assert self.duration is not None
        began = Cron.parse(self.schedule).next_start(moment, zone)
        length = timedelta(seconds=self.duration)
        return None if began is None else self._silence(index, began, began + length)
