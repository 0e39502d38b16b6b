"""Five-field cron expressions for recurring maintenance windows, read in a time zone.

`minute hour day-of-month month day-of-week`, as in crontab(5): `*`, numbers, ranges
`a-b`, steps `*/n` and `a-b/n`, lists `a,b`; months `JAN`-`DEC` and days `SUN`-`SAT` by
name; day of week 0 and 7 are Sunday. When both day fields are restricted, a day matches
either (as cron does).

The wall-clock times are read in the window's time zone, so a window at 02:00 stays at
02:00 local across daylight-saving changes. A local time that does not exist (the hour
skipped in spring) starts at the same offset from the last valid time, i.e. later by the
gap (02:30 on a 02:00→03:00 night starts at 03:30); a local time that happens twice (the
hour repeated in autumn) starts at its first occurrence. Durations are elapsed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names starting at `lowest`)
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
MAX_SEARCH_DAYS = 366 * 5  # Feb 29 of a leap year is the rarest day a schedule can name


@dataclass(frozen=True, slots=True)
class Cron:
    """A parsed expression: the allowed values of each field."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    @classmethod
    def parse(cls, text: str) -> Cron:
        """Raises ValueError naming the field that is wrong."""
        parts = text.split()
        if len(parts) != 5:
            raise ValueError(
                f"{text!r} is not a cron expression: it needs 5 fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 2 * * SUN'"
            )
        values = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in values[4])
        return cls(
            text=text,
            minutes=tuple(sorted(values[0])),
            hours=tuple(sorted(values[1])),
            days=frozenset(values[2]),
            months=frozenset(values[3]),
            weekdays=weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def _starts_on(self, day: date, zone: ZoneInfo) -> Iterator[datetime]:
        """The day's start times in UTC, earliest first."""
        for hour in self.hours:
            for minute in self.minutes:
                local = datetime.combine(day, time(hour, minute), tzinfo=zone)
                yield _exact(local, zone)

    def latest_start(self, at: datetime, within: timedelta, zone: ZoneInfo) -> datetime | None:
        """The last start in (at - within, at], in UTC; None when there is none."""
        at = at.astimezone(UTC)
        earliest = at - within
        day = at.astimezone(zone).date() + timedelta(days=1)  # a gap can move a start later
        last_day = earliest.astimezone(zone).date() - timedelta(days=1)
        while day >= last_day:
            if self.matches_day(day):
                starts = [s for s in self._starts_on(day, zone) if earliest < s <= at]
                if starts:
                    return max(starts)
            day -= timedelta(days=1)
        return None

    def next_start(self, after: datetime, zone: ZoneInfo) -> datetime | None:
        """The first start later than `after`, in UTC; None within MAX_SEARCH_DAYS."""
        after = after.astimezone(UTC)
        day = after.astimezone(zone).date() - timedelta(days=1)
        for _ in range(MAX_SEARCH_DAYS):
            if self.matches_day(day):
                starts = [s for s in self._starts_on(day, zone) if s > after]
                if starts:
                    return min(starts)
            day += timedelta(days=1)
        return None


def _exact(local: datetime, zone: ZoneInfo) -> datetime:
    """A local wall-clock time in UTC: fold=0 gives the first of a repeated time, and for
    a skipped time the offset before the change (so it lands later by the gap)."""
    return local.replace(fold=0).astimezone(UTC)


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    allowed: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{name}: bad step {step_text!r} in {text!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, name, low, high, names), _value(b, name, low, high, names)
            if first > last:
                raise ValueError(f"{name}: range {body!r} runs backwards")
        else:
            first = _value(body, name, low, high, names)
            last = high if step_text else first
        allowed.update(range(first, last + 1, step))
    return frozenset(allowed)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    upper = text.upper()
    if upper in names:
        return low + names.index(upper)
    if text.isdigit() and low <= int(text) <= high:
        return int(text)
    spelled = f" or {names[0]}-{names[-1]}" if names else ""
    raise ValueError(f"{name}: {text!r} is not {low}-{high}{spelled}")
