"""Declarative checks run on the agent's loop, Python checks on worker threads: a Python
check that blocks does not delay a YAML check's schedule — `synth agent` as a real
subprocess against the demo shop, in both isolation modes."""

from __future__ import annotations

import itertools
import statistics
import time
from datetime import datetime
from pathlib import Path

import pytest
from agent_harness import (
    StartAgent,
    wait_for,
    write_check,
    write_config,
)

from synth.demo import ShopThread

HOG = """
    import time

    import synth

    @synth.check(service="shop", every="1s", timeout="10s")
    async def hog(flow):
        async with flow.step("blocks"):
            time.sleep(2.5)  # blocking I/O in check code: only its own worker stalls
"""

PING = """
    checks:
      - name: ping
        service: shop
        every: 1s
        timeout: 5s
        steps:
          - name: health
            request: {path: /health}
            expect: {status: 200}
"""


def started(run: dict[str, object]) -> float:
    return datetime.fromisoformat(str(run["started_at"])).timestamp()


@pytest.mark.parametrize("isolation", ["code", "all"])
def test_a_blocking_python_check_does_not_delay_a_yaml_check(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, isolation: str
) -> None:
    write_check(tmp_path, "hog.py", HOG)
    write_check(tmp_path, "ping.yaml", PING)
    agent = start_agent(write_config(tmp_path, shop.base_url, scheduler={"isolation": isolation}))

    time.sleep(4.5)

    runs = agent.runs(check="ping")
    assert len(runs) >= 3
    assert {r["status"] for r in runs} == {"passed"}
    gaps = [b - a for a, b in itertools.pairwise(sorted(started(r) for r in runs))]
    assert 0.8 <= statistics.median(gaps) <= 1.2, gaps
    assert max(gaps) < 1.5, gaps  # a hog run (2.5 s) never sat in ping's way
    blocked = wait_for(
        lambda: [m for m in agent.log_messages() if "hog is blocking its event loop" in m],
        timeout=5,
        what="the watchdog naming the blocking check",
    )
    assert "hog.py" in blocked[0]
