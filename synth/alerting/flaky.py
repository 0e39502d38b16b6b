"""Which checks are flaky: per check × environment, the share of runs over the last 24 h
that failed transiently — passed on a retry, or failed once between two passes.

A rolling window of hourly buckets in memory (24 small records per check × environment),
seeded from the stored runs when an agent starts or takes a check over from another
cluster member (synth.store.flaky_history), so a restart does not forget the noise. The
most common (step, failure type) of the transient failures names where the noise comes
from, so it can be fixed at its source.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from synth.model import FailedAttempt, FailureType, RunResult
from synth.store.flaky_history import PairHistory

WINDOW_S = 86_400.0
BUCKET_S = 3_600.0

Cause = tuple[str | None, FailureType]


@dataclass(slots=True)
class _Bucket:
    start: float
    runs: int = 0
    transient: int = 0
    causes: Counter[Cause] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Flakiness:
    """One check × environment's transient failures over the window."""

    runs: int
    transient: int
    step: str | None = None
    failure_type: FailureType | None = None

    @property
    def ratio(self) -> float:
        return self.transient / self.runs if self.runs else 0.0

    def describe(self, check: str) -> str:
        """`checkout is flaky: 6% transient failures in 24 h, step 'pay', mostly timeout`."""
        text = f"{check} is flaky: {self.ratio:.0%} transient failures in 24 h"
        if self.step:
            text += f", step {self.step!r}"
        if self.failure_type is not None:
            text += f", mostly {self.failure_type}"
        return text


@dataclass(slots=True)
class _Pair:
    buckets: deque[_Bucket] = field(default_factory=deque)
    streak: int = 0  # failed runs in a row
    pending: Cause | None = None  # a streak of one: transient if the next run passes


class FlakyTracker:
    """Counts transient failures per check × environment over a rolling 24 h."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._clock = clock

    def observe(self, result: RunResult) -> Flakiness:
        """Count one run; the pair's flakiness after it."""
        now = self._clock()
        pair = self._pairs.setdefault((result.check, result.environment), _Pair())
        bucket = self._bucket(pair, now)
        bucket.runs += 1
        if result.passed_after_retry:
            bucket.transient += 1
            bucket.causes[_cause(result.failed_attempts[0])] += 1
        if result.passed:
            if pair.pending is not None:
                bucket.transient += 1
                bucket.causes[pair.pending] += 1
            pair.streak, pair.pending = 0, None
        else:
            pair.streak += 1
            failure_type = result.failure_type or FailureType.SCRIPT_ERROR
            pair.pending = (result.failed_step, failure_type) if pair.streak == 1 else None
        return self._summary(pair, now)

    def flakiness(self, check: str, env: str) -> Flakiness:
        """The pair's flakiness now (no runs: ratio 0)."""
        pair = self._pairs.get((check, env))
        return self._summary(pair, self._clock()) if pair else Flakiness(0, 0)

    def seed(self, pair: tuple[str, str], history: PairHistory | None) -> Flakiness:
        """Replace what is known of `pair` with its stored history (None: no runs)."""
        state = _Pair()
        if history is not None:
            for start in sorted(history.hours):
                hour = history.hours[start]
                bucket = _Bucket(start.timestamp(), hour.runs, hour.transient)
                bucket.causes.update(hour.causes)
                state.buckets.append(bucket)
            state.streak, state.pending = history.streak, history.pending
        self._pairs[pair] = state
        return self._summary(state, self._clock())

    def forget(self, check: str) -> None:
        """Drop a check that was removed."""
        for key in [k for k in self._pairs if k[0] == check]:
            del self._pairs[key]

    def _bucket(self, pair: _Pair, now: float) -> _Bucket:
        while pair.buckets and pair.buckets[0].start <= now - WINDOW_S:
            pair.buckets.popleft()
        start = now - now % BUCKET_S
        if not pair.buckets or pair.buckets[-1].start != start:
            pair.buckets.append(_Bucket(start))
        return pair.buckets[-1]

    def _summary(self, pair: _Pair, now: float) -> Flakiness:
        live = [b for b in pair.buckets if b.start > now - WINDOW_S]
        causes: Counter[Cause] = Counter()
        for bucket in live:
            causes.update(bucket.causes)
        runs = sum(b.runs for b in live)
        transient = sum(b.transient for b in live)
        if not causes:
            return Flakiness(runs, transient)
        steps: Counter[str | None] = Counter()
        types: Counter[FailureType] = Counter()
        for (step, failure_type), count in causes.items():
            steps[step] += count
            types[failure_type] += count
        return Flakiness(runs, transient, steps.most_common(1)[0][0], types.most_common(1)[0][0])


def _cause(attempt: FailedAttempt) -> Cause:
    return attempt.failed_step, attempt.failure.type
