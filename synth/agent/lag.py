"""A bounded record of recent schedule lags, exact where the histogram has buckets.

`synth_scheduler_lag_seconds` answers "how many runs were later than 50 ms"; tuning and the
benchmarks need the values themselves (p99, max). The recorder keeps the newest `size`
samples with a sequence number, so a reader polling with `since(n)` sees every sample once
and knows how many it missed. Thread-safe: runs start on worker threads.
"""

from __future__ import annotations

import threading
from collections import deque


class LagRecorder:
    """The newest `size` schedule lags (seconds), numbered from 1."""

    def __init__(self, size: int = 20_000) -> None:
        self._samples: deque[float] = deque(maxlen=size)
        self._count = 0
        self._lock = threading.Lock()

    def add(self, lag_s: float) -> None:
        with self._lock:
            self._samples.append(lag_s)
            self._count += 1

    def since(self, after: int) -> tuple[int, int, list[float]]:
        """(last sequence number, samples missed, samples numbered after `after`)."""
        with self._lock:
            count = self._count
            kept = len(self._samples)
            wanted = max(count - max(after, 0), 0)
            missed = max(wanted - kept, 0)
            take = min(wanted, kept)
            samples = list(self._samples)[kept - take :] if take else []
        return count, missed, samples
