"""When to page and when to resolve: a pure state machine per check × environment.

Each location keeps its own counters (`LocationState`): it turns *failing* when its trigger
rule is met (N consecutive failed runs, N of the last M, or every run for a time span —
at least two — since the first failure of the current streak) and stops failing after K
consecutive passes (`resolve_after`). The incident (`IncidentState`, one per check ×
environment, the PagerDuty dedup key) is open exactly while at least `min_locations`
fresh locations are failing: it triggers when that count is reached and resolves when it
drops below. A location whose last run is older than the stale window no longer counts,
so a replica that died does not hold an incident open. After a resolve, the incident does
not re-open for `reopen_after` seconds (a flapping target pages once); if it is still
failing when that time has passed, the next run triggers it.

While the incident stays open and failing, the trigger is sent again every
`retrigger_after` seconds. PagerDuty appends a repeated trigger to the open alert (no new
notification), so this is harmless — and it re-opens the incident should another replica
with its own store have resolved it while this location still fails.

No I/O here: the store loads and saves these values around `observe` and `decide`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

RECENT_MAX = 100


@dataclass(frozen=True, slots=True)
class Rule:
    """A playbook's thresholds, in plain numbers."""

    consecutive: int | None = 2
    failures: int = 0
    of_last: int = 0
    failing_for_s: float | None = None
    min_locations: int = 1
    resolve_after: int = 2
    reopen_after_s: float = 300.0
    stale_after_s: float = 900.0
    retrigger_after_s: float = 1800.0  # 0: never

    def window(self) -> int:
        """How many recent outcomes a location needs to remember."""
        return min(max(self.of_last, self.consecutive or 0, 2), RECENT_MAX)


@dataclass(frozen=True, slots=True)
class LocationState:
    """One location's view of one check × environment."""

    location: str
    recent: tuple[bool, ...] = ()  # newest last; True = the run failed
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    failing: bool = False
    updated_at: datetime | None = None
    failing_since: datetime | None = None  # the first failed run of the current streak


@dataclass(frozen=True, slots=True)
class IncidentState:
    """The incident of one check × environment, shared by every location."""

    open: bool = False
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    last_transition_at: datetime | None = None
    triggered_at: datetime | None = None  # the last trigger sent (first or repeated)


class Decision(enum.StrEnum):
    """What `decide` asks for."""

    NONE = "none"
    TRIGGER = "trigger"
    RESOLVE = "resolve"
    SUPPRESSED = "suppressed"  # would trigger, but it resolved less than reopen_after ago
    RETRIGGER = "retrigger"  # still failing: send the trigger again (see `decide`)
    SILENCED = "silenced"  # would trigger or re-trigger, but a silence covers it


def observe(
    state: LocationState | None, location: str, failed: bool, now: datetime, rule: Rule
) -> LocationState:
    """The location's state after one more run outcome."""
    current = state or LocationState(location=location)
    recent = (*current.recent, failed)[-rule.window() :]
    failures = current.consecutive_failures + 1 if failed else 0
    passes = 0 if failed else current.consecutive_passes + 1
    since = (current.failing_since or now) if failed else None
    failing = current.failing
    if not failing and _threshold_met(recent, failures, now - since if since else None, rule):
        failing = True
    elif failing and passes >= rule.resolve_after:
        failing = False
    return replace(
        current,
        recent=recent,
        consecutive_failures=failures,
        consecutive_passes=passes,
        failing=failing,
        updated_at=now,
        failing_since=since,
    )


def _threshold_met(
    recent: tuple[bool, ...], failures: int, streak: timedelta | None, rule: Rule
) -> bool:
    if rule.failing_for_s is not None:
        return failures >= 2 and streak is not None and streak.total_seconds() >= rule.failing_for_s
    if rule.consecutive is not None:
        return failures >= rule.consecutive
    return sum(recent[-rule.of_last :]) >= rule.failures


def failing_locations(locations: Iterable[LocationState], now: datetime, rule: Rule) -> list[str]:
    """The fresh locations that are failing now, sorted."""
    return sorted(
        loc.location
        for loc in locations
        if loc.failing
        and loc.updated_at is not None
        and (now - loc.updated_at).total_seconds() <= rule.stale_after_s
    )


def decide(
    incident: IncidentState | None,
    locations: Iterable[LocationState],
    now: datetime,
    rule: Rule,
    *,
    silenced: bool = False,
) -> tuple[IncidentState, Decision]:
    """The incident after looking at every location's state, and what to send.

    `silenced` (a silence or maintenance window covers the check × environment): no
    trigger and no repeated trigger; the incident stays as it was (a closed one is not
    opened), so the first run after the silence that still fails triggers it — once.
    A resolve still goes through."""
    current = incident or IncidentState()
    failing = len(failing_locations(locations, now, rule))
    would_page = not current.open or _retrigger_due(current, now, rule)
    if silenced and failing >= rule.min_locations and would_page:
        return current, Decision.SILENCED
    if not current.open and failing >= rule.min_locations:
        if (
            current.resolved_at is not None
            and (now - current.resolved_at).total_seconds() < rule.reopen_after_s
        ):
            return current, Decision.SUPPRESSED
        opened = replace(
            current, open=True, opened_at=now, last_transition_at=now, triggered_at=now
        )
        return opened, Decision.TRIGGER
    if current.open and failing < rule.min_locations:
        resolved = replace(current, open=False, resolved_at=now, last_transition_at=now)
        return resolved, Decision.RESOLVE
    if current.open and _retrigger_due(current, now, rule):
        return replace(current, triggered_at=now), Decision.RETRIGGER
    return current, Decision.NONE


def _retrigger_due(incident: IncidentState, now: datetime, rule: Rule) -> bool:
    if rule.retrigger_after_s <= 0:
        return False
    last = incident.triggered_at or incident.opened_at
    return last is None or (now - last).total_seconds() >= rule.retrigger_after_s
