"""Silences and maintenance windows as pure functions: the cron schedule read in a time
zone (fixed datetimes, across both daylight-saving changes of Europe/Berlin), the
matchers, the refusals, and the playbook's decision under a silence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from synth.alerting.cron import Cron
from synth.alerting.playbook import Decision, IncidentState, LocationState, Rule, decide
from synth.alerting.silences import MaintenanceWindow, Silence, SilenceRequest, Target
from synth.config import ConfigError, Settings

SHOP = Target(check="checkout", env="production", service="shop", tags=("critical",))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def berlin_sunday_window(**extra: object) -> MaintenanceWindow:
    return MaintenanceWindow.model_validate(
        {
            "schedule": "0 2 * * SUN",
            "duration": "2h",
            "timezone": "Europe/Berlin",
            "matchers": {"service": "shop", "env": "production"},
            "reason": "weekly database maintenance",
        }
        | extra
    )


@pytest.mark.parametrize(
    ("moment", "active"),
    [
        # Winter (CET, UTC+1): 02:00-04:00 local is 01:00-03:00 UTC.
        (utc(2026, 1, 11, 0, 59), False),
        (utc(2026, 1, 11, 1, 0), True),
        (utc(2026, 1, 11, 2, 59), True),
        (utc(2026, 1, 11, 3, 0), False),
        (utc(2026, 1, 12, 1, 30), False),  # a Monday
        # Summer (CEST, UTC+2): 02:00-04:00 local is 00:00-02:00 UTC.
        (utc(2026, 7, 5, 0, 0), True),
        (utc(2026, 7, 5, 1, 59), True),
        (utc(2026, 7, 5, 2, 0), False),
        (utc(2026, 7, 4, 23, 59), False),
        # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:00 does not exist, the window
        # starts at the change (01:00 UTC = 03:00 CEST) and lasts 2 h of elapsed time.
        (utc(2026, 3, 29, 0, 59), False),
        (utc(2026, 3, 29, 1, 0), True),
        (utc(2026, 3, 29, 2, 59), True),
        (utc(2026, 3, 29, 3, 0), False),
        # 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:00 happens twice, the window
        # starts at the first (00:00 UTC) and ends 2 h later (02:00 UTC = 03:00 CET).
        (utc(2026, 10, 24, 23, 59), False),
        (utc(2026, 10, 25, 0, 0), True),
        (utc(2026, 10, 25, 1, 30), True),
        (utc(2026, 10, 25, 2, 0), False),
    ],
)
def test_a_recurring_window_in_berlin_time(moment: datetime, active: bool) -> None:
    window = berlin_sunday_window()
    occurrence = window.at(0, moment)
    assert (occurrence is not None) == active
    if occurrence is not None:
        assert occurrence.end - occurrence.start == timedelta(hours=2)
        assert occurrence.matches(SHOP)
        assert occurrence.source == "config"


def test_the_next_occurrence_across_the_spring_change() -> None:
    window = berlin_sunday_window()
    upcoming = window.current_or_next(0, utc(2026, 3, 25, 12, 0))
    assert upcoming is not None
    assert (upcoming.start, upcoming.end) == (utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 3, 0))
    after = window.current_or_next(0, utc(2026, 3, 29, 3, 0))
    assert after is not None
    assert after.start == utc(2026, 4, 5, 0, 0)  # CEST from now on


def test_a_skipped_local_time_starts_later_by_the_gap() -> None:
    cron = Cron.parse("30 2 29 3 *")
    window = MaintenanceWindow.model_validate(
        {"schedule": cron.text, "duration": "30m", "timezone": "Europe/Berlin", "all": True}
    )
    # 02:30 on 2026-03-29 does not exist in Berlin: it starts at 03:30 CEST (01:30 UTC).
    assert window.at(0, utc(2026, 3, 29, 1, 29)) is None
    started = window.at(0, utc(2026, 3, 29, 1, 30))
    assert started is not None
    assert started.start == utc(2026, 3, 29, 1, 30)


@pytest.mark.parametrize(
    ("expression", "moment", "matches"),
    [
        ("0 2 * * 0", utc(2026, 1, 11, 2, 0), True),  # 0 is Sunday, as in crontab(5)
        ("0 2 * * 7", utc(2026, 1, 11, 2, 0), True),
        ("0 2 * * 1", utc(2026, 1, 11, 2, 0), False),
        ("*/15 * * * *", utc(2026, 1, 11, 2, 45), True),
        ("0 2 1 * MON", utc(2026, 6, 1, 2, 0), True),  # day of month OR day of week
        ("0 2 1 * MON", utc(2026, 6, 8, 2, 0), True),
        ("0 2 1 * MON", utc(2026, 6, 9, 2, 0), False),
        ("0 9-17/4 * JAN-MAR *", utc(2026, 2, 3, 13, 0), True),
        ("0 9-17/4 * JAN-MAR *", utc(2026, 4, 3, 13, 0), False),
    ],
)
def test_cron_fields(expression: str, moment: datetime, matches: bool) -> None:
    cron = Cron.parse(expression)
    latest = cron.latest_start(moment, timedelta(minutes=1), UTC)  # type: ignore[arg-type]
    assert (latest == moment) == matches


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * *", "5 fields"),
        ("61 2 * * *", "minute"),
        ("0 2 * * FUNDAY", "day of week"),
        ("0 5-2 * * *", "backwards"),
        ("*/0 * * * *", "step"),
    ],
)
def test_bad_cron_expressions_are_named(expression: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Cron.parse(expression)


def test_matchers_all_must_match_and_deploys_need_saying() -> None:
    now = utc(2026, 1, 1)
    later = now + timedelta(hours=1)
    by_service = Silence(id="a", start=now, end=later, matchers={"service": "shop"})
    by_tag = Silence(id="b", start=now, end=later, matchers={"tag": "critical", "env": "staging"})
    everything = Silence(id="c", start=now, end=later, all=True)
    with_deploys = Silence(id="d", start=now, end=later, all=True, deploys=True)
    assert by_service.matches(SHOP)
    assert not by_tag.matches(SHOP)  # the env differs
    assert everything.matches(SHOP)
    deploy_run = Target(check="checkout", env="production", service="shop", deploy=True)
    assert not everything.matches(deploy_run)
    assert not by_service.matches(deploy_run)
    assert with_deploys.matches(deploy_run)
    assert by_service.active_at(now)
    assert not by_service.active_at(later)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"matchers": {}}, "at least one of check, service, env, tag"),
        ({"matchers": {"team": "x"}}, "team"),
        ({"all": True, "matchers": {"service": "shop"}}, "no matchers"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "must be after"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "30 days"),
    ],
)
def test_refused_silence_requests(body: dict[str, object], words: str) -> None:
    base: dict[str, object] = {
        "matchers": {"service": "shop"},
        "end": "2026-01-01T01:00:00Z",
        "reason": "r",
        "author": "a",
    }
    with pytest.raises(ValidationError, match=words):
        SilenceRequest.model_validate(base | body)


def test_a_request_ending_in_the_past_is_refused() -> None:
    request = SilenceRequest.model_validate(
        {"matchers": {"check": "x"}, "end": "2026-01-01T00:00:00Z", "reason": "r", "author": "a"}
    )
    with pytest.raises(ValueError, match="in the past"):
        request.silence("id", utc(2026, 1, 2))


def test_maintenance_in_settings_is_validated_at_start() -> None:
    settings = Settings.model_validate(
        {
            "maintenance": [
                {
                    "schedule": "0 2 * * SUN",
                    "duration": "2h",
                    "timezone": "Europe/Berlin",
                    "matchers": {"service": "shop", "env": "production"},
                    "reason": "db",
                },
                {
                    "start": "2026-12-24T18:00:00",
                    "end": "2026-12-27T06:00:00",
                    "timezone": "Europe/Berlin",
                    "all": True,
                },
            ]
        }
    )
    one_off = settings.maintenance[1]
    assert one_off.at(1, utc(2026, 12, 24, 17, 0)) is not None  # 18:00 CET
    assert one_off.at(1, utc(2026, 12, 24, 16, 59)) is None
    for bad, words in [
        ({"schedule": "0 2 * * SUN", "all": True}, "duration"),
        ({"schedule": "0 2 * * SUN", "duration": "31d", "all": True}, "30 days"),
        (
            {"schedule": "0 2 * * SUN", "duration": "1h", "timezone": "Mars/Base", "all": True},
            "time zone",
        ),
        ({"schedule": "0 2 * * SUN", "duration": "1h"}, "all: true"),
        ({"start": "2026-01-02T00:00:00", "end": "2026-01-01T00:00:00", "all": True}, "after"),
        ({"schedule": "0 2 * *", "duration": "1h", "all": True}, "5 fields"),
    ]:
        with pytest.raises((ValidationError, ConfigError), match=words):
            Settings.model_validate({"maintenance": [bad]})


def test_a_silenced_check_does_not_page_and_pages_once_when_it_ends() -> None:
    rule = Rule(consecutive=1, resolve_after=1, retrigger_after_s=60)
    now = utc(2026, 1, 1)
    failing = [LocationState(location="eu", failing=True, updated_at=now)]
    incident, decision = decide(None, failing, now, rule, silenced=True)
    assert decision is Decision.SILENCED
    assert not incident.open
    incident, decision = decide(incident, failing, now + timedelta(seconds=1), rule)
    assert decision is Decision.TRIGGER
    assert incident.open
    later = now + timedelta(seconds=61)
    _, decision = decide(incident, failing, later, rule)
    assert decision is Decision.RETRIGGER
    _, decision = decide(incident, failing, later, rule, silenced=True)
    assert decision is Decision.SILENCED  # no repeated trigger either
    passing = [LocationState(location="eu", failing=False, updated_at=later)]
    _, decision = decide(incident, passing, later, rule, silenced=True)
    assert decision is Decision.RESOLVE  # a resolve still goes through
    _, decision = decide(IncidentState(open=True, triggered_at=now), failing, now, rule)
    assert decision is Decision.NONE
