"""The playbook state machine: thresholds, resolve, locations, staleness, re-open and
re-trigger timing."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from synth.alerting.playbook import (
    Decision,
    IncidentState,
    LocationState,
    Rule,
    decide,
    failing_locations,
    observe,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Single:
    """One location feeding outcomes through observe + decide, one per second."""

    def __init__(self, rule: Rule, location: str = "here") -> None:
        self.rule = rule
        self.location = location
        self.state: LocationState | None = None
        self.incident: IncidentState | None = None
        self.clock = 0.0

    def feed(self, outcomes: Iterable[bool], step_s: float = 1.0) -> list[Decision]:
        decisions = []
        for failed in outcomes:
            self.clock += step_s
            now = at(self.clock)
            self.state = observe(self.state, self.location, failed, now, self.rule)
            self.incident, decision = decide(self.incident, [self.state], now, self.rule)
            decisions.append(decision)
        return decisions


F, P = True, False
N, TRIG, RES, SUP, RETRIG = (
    Decision.NONE,
    Decision.TRIGGER,
    Decision.RESOLVE,
    Decision.SUPPRESSED,
    Decision.RETRIGGER,
)
QUIET = Rule(consecutive=2, resolve_after=2, reopen_after_s=0, retrigger_after_s=0)


def test_consecutive_failures_trigger_and_a_pass_resets_the_count() -> None:
    machine = Single(QUIET)
    assert machine.feed([F, P, F, P, F, F]) == [N, N, N, N, N, TRIG]


def test_n_of_last_m_triggers_on_scattered_failures() -> None:
    rule = Rule(consecutive=None, failures=2, of_last=3, reopen_after_s=0, retrigger_after_s=0)
    assert Single(rule).feed([F, P, F]) == [N, N, TRIG]
    assert Single(rule).feed([F, P, P, F, P, P]) == [N] * 6


def test_resolves_after_k_consecutive_passes_only() -> None:
    machine = Single(Rule(consecutive=1, resolve_after=3, reopen_after_s=0, retrigger_after_s=0))
    assert machine.feed([F, P, P, F, P, P, P]) == [TRIG, N, N, N, N, N, RES]
    assert machine.incident is not None
    assert not machine.incident.open


def test_reopen_after_holds_a_flapping_check_to_one_page() -> None:
    rule = Rule(consecutive=1, resolve_after=1, reopen_after_s=10, retrigger_after_s=0)
    machine = Single(rule)
    assert machine.feed([F, P, F, P, F]) == [TRIG, RES, SUP, N, SUP]
    # Still failing once reopen_after has passed since the resolve: it pages again.
    assert machine.feed([F], step_s=10) == [TRIG]


def test_retrigger_repeats_the_trigger_while_open_and_failing() -> None:
    rule = Rule(consecutive=1, resolve_after=1, reopen_after_s=0, retrigger_after_s=5)
    machine = Single(rule)
    assert machine.feed([F, F, F, F, F, F]) == [TRIG, N, N, N, N, RETRIG]
    assert machine.feed([P]) == [RES]


def test_min_locations_counts_fresh_failing_locations() -> None:
    rule = Rule(
        consecutive=1,
        resolve_after=1,
        min_locations=2,
        stale_after_s=60,
        reopen_after_s=0,
        retrigger_after_s=0,
    )
    eu = observe(None, "eu", True, at(0), rule)
    incident, decision = decide(None, [eu], at(0), rule)
    assert decision is N
    us = observe(None, "us", True, at(1), rule)
    incident, decision = decide(incident, [eu, us], at(1), rule)
    assert decision is TRIG
    assert failing_locations([eu, us], at(1), rule) == ["eu", "us"]
    # One location recovers: fewer than min_locations fail, the incident resolves.
    eu = observe(eu, "eu", False, at(2), rule)
    incident, decision = decide(incident, [eu, us], at(2), rule)
    assert decision is RES


def test_a_stale_location_stops_counting() -> None:
    rule = Rule(
        consecutive=1, resolve_after=1, stale_after_s=60, reopen_after_s=0, retrigger_after_s=0
    )
    dead = observe(None, "dead", True, at(0), rule)
    incident, decision = decide(None, [dead], at(0), rule)
    assert decision is TRIG
    alive = observe(None, "alive", False, at(30), rule)
    assert decide(incident, [dead, alive], at(30), rule)[1] is N
    assert decide(incident, [dead, alive], at(61), rule)[1] is RES


def test_window_keeps_only_what_the_rule_needs() -> None:
    rule = Rule(consecutive=None, failures=2, of_last=3, resolve_after=2)
    state = None
    seen = []
    for failed in [F, F, F, P, P]:
        state = observe(state, "x", failed, at(0), rule)
        seen.append(state.failing)
    assert state is not None
    assert state.recent == (F, P, P)
    assert seen == [False, True, True, True, False]  # stops after resolve_after passes
    state = observe(state, "x", F, at(0), rule)
    assert not state.failing  # the window slid: 1 of the last 3
    state = observe(state, "x", F, at(0), rule)
    assert state.failing
