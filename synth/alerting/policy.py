"""How readily a check pages: the sensitivity presets, the effective (retries, trigger,
resolve) of one check, and the false-page arithmetic behind the defaults.

Precedence, most specific first: the check's own `retries`; the check's `sensitivity`
preset; the playbook's explicit `trigger` / `resolve_after`; the playbook's `sensitivity`
preset; `medium`.

The arithmetic: a target that fails a fraction `p` of requests independently fails a run
with `r` retries with probability q = p^(r+1). A location starts failing when its trigger
is first met; for `consecutive: k` that happens once per run that ends a pass followed by k
failures, so a check run `n` times pages falsely about n·(1−q)·q^k times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synth.alerting.playbook import Rule
from synth.config import PlaybookSettings, Settings, TriggerRule
from synth.model import CheckSpec, Sensitivity

MONTH_S = 30 * 86_400.0
WEEK_S = 7 * 86_400.0
NOISY_RATE = 0.05
"""The transient failure rate `synth validate` judges playbooks at."""


@dataclass(frozen=True, slots=True)
class Preset:
    """What one sensitivity level means."""

    retries: int
    trigger: TriggerRule
    resolve_after: int


PRESETS: dict[Sensitivity, Preset] = {
    # Pages on the first run whose three attempts all fail.
    Sensitivity.HIGH: Preset(retries=2, trigger=TriggerRule(consecutive=1), resolve_after=1),
    # The default: one retry, two failed runs in a row.
    Sensitivity.MEDIUM: Preset(retries=1, trigger=TriggerRule(consecutive=2), resolve_after=2),
    Sensitivity.LOW: Preset(retries=2, trigger=TriggerRule(consecutive=3), resolve_after=3),
}


def playbook_name(check: CheckSpec | None, settings: Settings) -> str | None:
    """The playbook that pages for `check`: its own, else the default; None when paging is
    not configured."""
    if not settings.playbooks:
        return None
    name = check.playbook if check is not None and check.playbook else settings.default_playbook
    return name if name in settings.playbooks else None


def retries_for(check: CheckSpec, settings: Settings) -> int:
    """Extra attempts a failed run of `check` gets before it counts as failed."""
    if check.retries is not None:
        return check.retries
    if check.sensitivity is not None:
        return PRESETS[check.sensitivity].retries
    name = playbook_name(check, settings)
    playbook = settings.playbooks[name] if name is not None else None
    return PRESETS[playbook.sensitivity if playbook else Sensitivity.MEDIUM].retries


def trigger_for(playbook: PlaybookSettings, check: CheckSpec | None) -> tuple[TriggerRule, int]:
    """The (trigger, resolve_after) that apply to `check` under `playbook`."""
    if check is not None and check.sensitivity is not None:
        preset = PRESETS[check.sensitivity]
        return preset.trigger, preset.resolve_after
    preset = PRESETS[playbook.sensitivity]
    trigger = playbook.trigger if playbook.trigger is not None else preset.trigger
    resolve = playbook.resolve_after if playbook.resolve_after is not None else preset.resolve_after
    return trigger, resolve


def rule_for(playbook: PlaybookSettings, check: CheckSpec | None) -> Rule:
    """The playbook's thresholds for `check`; a location counts as stale after the
    configured time or three check intervals, whichever is longer."""
    trigger, resolve_after = trigger_for(playbook, check)
    interval = check.schedule.every_s if check is not None else None
    stale = max(playbook.location_stale_after, 3 * (interval or 0.0))
    return Rule(
        consecutive=trigger.consecutive,
        failures=trigger.failures or 0,
        of_last=trigger.of_last or 0,
        failing_for_s=trigger.failing_for,
        min_locations=playbook.min_locations,
        resolve_after=resolve_after,
        reopen_after_s=playbook.reopen_after,
        stale_after_s=stale,
        retrigger_after_s=playbook.retrigger_after,
    )


def false_pages(
    *, failure_rate: float, interval_s: float, retries: int, rule: Rule, period_s: float
) -> float:
    """Expected false pages in `period_s` of a check whose requests fail independently
    at `failure_rate` (a location's threshold crossings; reopen_after only lowers it)."""
    q = failure_rate ** (retries + 1)
    runs = period_s / interval_s
    if rule.failing_for_s is not None:
        k = max(2, math.floor(rule.failing_for_s / interval_s) + 1)
        return runs * (1 - q) * q**k
    if rule.consecutive is not None:
        return runs * (1 - q) * q**rule.consecutive
    # f of the last m: the newest run fails and exactly f-1 of the m-1 before it did.
    f, m = rule.failures, rule.of_last
    return runs * math.comb(m - 1, f - 1) * q**f * (1 - q) ** (m - f)


def noisy_playbook_warnings(settings: Settings, checks: list[CheckSpec]) -> list[str]:
    """A warning per check that would page falsely more than once a week if
    `NOISY_RATE` of its requests failed at random, at its interval."""
    warnings = []
    for check in checks:
        name = playbook_name(check, settings)
        interval = check.schedule.every_s
        if name is None or interval is None:
            continue
        rule = rule_for(settings.playbooks[name], check)
        retries = retries_for(check, settings)
        weekly = false_pages(
            failure_rate=NOISY_RATE,
            interval_s=interval,
            retries=retries,
            rule=rule,
            period_s=WEEK_S,
        )
        if weekly > 1:
            where = f"{check.source}: " if check.source else ""
            warnings.append(
                f"{where}check {check.name!r} (playbook {name!r}, every {interval:g}s, "
                f"retries {retries}) would page about {weekly:.1f} times a week on "
                f"{NOISY_RATE:.0%} transient failures: raise retries, the trigger or the "
                "interval, or use sensitivity: low"
            )
    return warnings
