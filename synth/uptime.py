"""The uptime / SLO report: from the stored runs and pages of a period, per check ×
environment its availability, failures by type and transient failures; per incident when
its failure began, when it paged and when it resolved; mean time to detect and to recover.
`synth report`, `GET /v1/report` (and the pages) show these same numbers.

Availability counts the scheduled and deploy-verification runs of every location: a run
that passed on a retry is available (it is counted apart as transient); pre-prod and
ad-hoc runs are not production.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from synth.model import Phase, Status
from synth.store import Store
from synth.store.uptime import page_events, run_counts, streak_start
from synth.units import parse_duration

REPORTED_PHASES = (Phase.SCHEDULED.value, Phase.DEPLOY.value)
MAX_PERIOD_S = 400 * 86_400.0
SINCE_PATTERN = r"^(0*[1-9][0-9]{0,8}(\.[0-9]{1,3})?|0+\.0{0,2}[1-9][0-9]{0,2})(ms|s|m|h|d)?$"
"""A period the API accepts: a positive number of ms, s, m, h or d (seconds without)."""


def report_window(since: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[now − since, now) for `since` like `30d` (at most 400 days back); ValueError for
    one that is not a positive duration."""
    seconds = parse_duration(since)
    if not seconds > 0:
        raise ValueError(f"must be a positive duration such as 30d, got {since!r}")
    seconds = min(seconds, MAX_PERIOD_S)
    until = now or datetime.now(UTC)
    return until - timedelta(seconds=seconds), until


@dataclass(slots=True)
class CheckUptime:
    check: str
    environment: str
    service: str
    runs: int = 0
    passed: int = 0
    passed_after_retry: int = 0
    failed: int = 0
    failures_by_type: Counter[str] = field(default_factory=Counter)

    @property
    def availability(self) -> float | None:
        """Share of runs that passed (on a retry too); None without runs."""
        return self.passed / self.runs if self.runs else None

    @property
    def transient_ratio(self) -> float:
        return self.passed_after_retry / self.runs if self.runs else 0.0


@dataclass(frozen=True, slots=True)
class Incident:
    check: str
    environment: str
    location: str
    failure_type: str | None
    failing_since: datetime | None
    paged_at: datetime
    resolved_at: datetime | None

    @property
    def detect_s(self) -> float | None:
        """From the first failed run to the page."""
        if self.failing_since is None:
            return None
        return max((self.paged_at - self.failing_since).total_seconds(), 0.0)

    @property
    def recover_s(self) -> float | None:
        """From the first failed run to the resolve."""
        if self.failing_since is None or self.resolved_at is None:
            return None
        return max((self.resolved_at - self.failing_since).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class UptimeReport:
    since: datetime
    until: datetime
    checks: tuple[CheckUptime, ...]
    incidents: tuple[Incident, ...]
    incidents_truncated: bool = False

    @property
    def mttd_s(self) -> float | None:
        return _mean([i.detect_s for i in self.incidents])

    @property
    def mttr_s(self) -> float | None:
        return _mean([i.recover_s for i in self.incidents])


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


async def build_report(
    store: Store,
    *,
    since: datetime,
    until: datetime,
    service: str | None = None,
    environment: str | None = None,
) -> UptimeReport:
    """The report of [since, until) for the checks of `service` / `environment` (all)."""
    async with store.reading("build the uptime report") as connection:
        counts = await run_counts(
            connection,
            since=since,
            until=until,
            phases=REPORTED_PHASES,
            service=service,
            environment=environment,
        )
        events, truncated = await page_events(connection, since=since, until=until)
        checks: dict[tuple[str, str], CheckUptime] = {}
        for row in counts:
            entry = checks.setdefault(
                (row.check, row.environment), CheckUptime(row.check, row.environment, row.service)
            )
            entry.runs += row.count
            if row.status == Status.PASSED.value:
                entry.passed += row.count
                if row.retried:
                    entry.passed_after_retry += row.count
            else:
                entry.failed += row.count
                entry.failures_by_type[row.failure_type or "unknown"] += row.count
        incidents = []
        for opened, resolved in _pair_events(events):
            details = _details(opened.payload)
            check, env = details.get("check"), details.get("environment")
            if not isinstance(check, str) or not isinstance(env, str):
                continue
            if (environment and env != environment) or (
                service and details.get("service") != service
            ):
                continue
            location = str(details.get("location") or "")
            began = await streak_start(
                connection, check=check, environment=env, location=location, before=opened.at
            )
            kind = details.get("failure_type")
            incidents.append(
                Incident(
                    check=check,
                    environment=env,
                    location=location,
                    failure_type=kind if isinstance(kind, str) else None,
                    failing_since=began,
                    paged_at=opened.at,
                    resolved_at=resolved.at if resolved is not None else None,
                )
            )
    ordered = sorted(checks.values(), key=lambda c: (c.environment, c.check))
    return UptimeReport(since, until, tuple(ordered), tuple(incidents), truncated)


def _details(payload: Any) -> dict[str, Any]:
    body = payload.get("payload") if isinstance(payload, dict) else None
    if not isinstance(body, dict) or body.get("class") == "flaky":
        return {}
    details = body.get("custom_details")
    return details if isinstance(details, dict) else {}


def _pair_events(events: list[Any]) -> list[tuple[Any, Any | None]]:
    """(trigger, resolve or None) per incident: per dedup key the first trigger after a
    resolve opens one (every location's trigger of it is the same incident)."""
    open_by_key: dict[str, Any] = {}
    pairs: list[tuple[Any, Any | None]] = []
    for event in events:
        if event.kind == "trigger":
            if event.dedup_key not in open_by_key and _details(event.payload):
                open_by_key[event.dedup_key] = event
        elif event.dedup_key in open_by_key:
            pairs.append((open_by_key.pop(event.dedup_key), event))
    pairs.extend((opened, None) for opened in open_by_key.values())
    return sorted(pairs, key=lambda pair: pair[0].at)


# -- renderings ------------------------------------------------------------------------------


def report_to_dict(report: UptimeReport) -> dict[str, Any]:
    return {
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "checks": [
            {
                "check": c.check,
                "environment": c.environment,
                "service": c.service,
                "runs": c.runs,
                "passed": c.passed,
                "passed_after_retry": c.passed_after_retry,
                "failed": c.failed,
                "availability": c.availability,
                "transient_ratio": round(c.transient_ratio, 6),
                "failures_by_type": dict(sorted(c.failures_by_type.items())),
            }
            for c in report.checks
        ],
        "incidents": [
            {
                "check": i.check,
                "environment": i.environment,
                "location": i.location,
                "failure_type": i.failure_type,
                "failing_since": i.failing_since.isoformat() if i.failing_since else None,
                "paged_at": i.paged_at.isoformat(),
                "resolved_at": i.resolved_at.isoformat() if i.resolved_at else None,
                "time_to_detect_s": i.detect_s,
                "time_to_recover_s": i.recover_s,
            }
            for i in report.incidents
        ],
        "incidents_truncated": report.incidents_truncated,
        "mean_time_to_detect_s": report.mttd_s,
        "mean_time_to_recover_s": report.mttr_s,
    }


def report_text(data: dict[str, Any]) -> str:
    """The report (its `report_to_dict` form) as tables for a terminal."""
    since, until = data["since"][:16].replace("T", " "), data["until"][:16].replace("T", " ")
    lines = [f"uptime {since} – {until} UTC", ""]
    header = ("check", "env", "availability", "runs", "failed", "transient", "failures by type")
    rows = [header]
    for c in data["checks"]:
        kinds = ", ".join(f"{k} {n}" for k, n in c["failures_by_type"].items()) or "-"
        rows.append(
            (
                c["check"],
                c["environment"],
                _percent(c["availability"]),
                str(c["runs"]),
                str(c["failed"]),
                f"{c['passed_after_retry']} ({c['transient_ratio']:.1%})",
                kinds,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if not data["checks"]:
        lines.append("(no runs in this period)")
    lines += ["", f"incidents: {len(data['incidents'])}"]
    for i in data["incidents"]:
        recovered = i["time_to_recover_s"]
        resolved = f"resolved after {_duration(recovered)}" if i["resolved_at"] else "still open"
        lines.append(
            f"  {i['paged_at'][:16].replace('T', ' ')} {i['check']} ({i['environment']}, "
            f"{i['location']}) {i['failure_type'] or ''}: detected after "
            f"{_duration(i['time_to_detect_s'])}, {resolved}"
        )
    lines.append(
        f"mean time to detect {_duration(data['mean_time_to_detect_s'])}, "
        f"to recover {_duration(data['mean_time_to_recover_s'])}"
    )
    if data["incidents_truncated"]:
        lines.append("(only the newest incidents of the period are shown)")
    return "\n".join(lines) + "\n"


def report_csv(data: dict[str, Any]) -> str:
    """One row per check × environment (the report's `report_to_dict` form)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = ["check", "environment", "service", "runs", "passed", "passed_after_retry",
               "failed", "availability", "transient_ratio"]  # fmt: skip
    writer.writerow([*columns, "failures_by_type"])
    for c in data["checks"]:
        kinds = ";".join(f"{k}={n}" for k, n in c["failures_by_type"].items())
        writer.writerow([*("" if c[k] is None else c[k] for k in columns), kinds])
    return out.getvalue()


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.3%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds)))
