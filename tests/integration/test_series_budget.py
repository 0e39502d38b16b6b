"""What one check costs Prometheus, read off a real agent's /metrics: by default a one-step
HTTP check exports at most 25 series and 3 KiB (about a blackbox_exporter probe), and each
`metrics.detail` level adds exactly its families. `bench/series_per_check.py` prints the
figures beside blackbox_exporter's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from agent_harness import StartAgent, wait_for, write_check, write_config

from synth.demo import ShopThread

CHECK = "checkout-api"
CHECKS = f"""
    checks:
      - name: {CHECK}
        service: shop
        every: 1s
        retries: 0
        steps:
          - name: health
            request: {{path: /health}}
            expect: {{status: 200}}
"""
BASE = {
    "synth_check_runs_total": 3,  # passed, failed, passed_after_retry
    "synth_check_run_duration_seconds": 10,  # 7 buckets, +Inf, sum, count
    "synth_check_up": 1,
    "synth_check_last_run_timestamp_seconds": 1,
    "synth_check_consecutive_failures": 1,
    "synth_check_flaky_ratio": 1,
    "synth_check_silenced": 1,
    "synth_check_interval_seconds": 1,
    # The last run's phases, as blackbox_exporter's: those a plain-http request to an IP
    # address goes through (connect, send, first_byte, body; no dns, no tls).
    "synth_http_phase_seconds": 4,
}


def family(sample: str) -> str:
    name = sample.split("{", 1)[0]
    for suffix in ("_bucket", "_sum", "_count"):
        name = name.removesuffix(suffix)
    return name


def series_of_the_check(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, detail: list[str]
) -> list[str]:
    write_check(tmp_path, "api.yaml", CHECKS)
    extra: dict[str, Any] = {"location": "eu-west-1", "metrics": {"detail": detail}}
    agent = start_agent(write_config(tmp_path, shop.base_url, extra=extra))

    def counted() -> list[str] | None:
        text = agent.get("/metrics").text
        lines = [line for line in text.splitlines() if f'check="{CHECK}"' in line]
        passed = [line for line in lines if 'result="passed"}' in line]
        return lines if passed and not passed[0].endswith(" 0") else None

    return wait_for(counted, timeout=20, what=f"a counted run of {CHECK}")


def test_a_one_step_http_check_costs_about_a_blackbox_probe(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    lines = series_of_the_check(tmp_path, shop, start_agent, [])
    by_family: dict[str, int] = {}
    for line in lines:
        by_family[family(line)] = by_family.get(family(line), 0) + 1
    assert by_family == BASE
    assert len(lines) <= 25
    size = sum(len(line) + 1 for line in lines)
    assert size <= 3 * 1024, f"{size} bytes of /metrics for one check"


@pytest.mark.parametrize(
    ("detail", "added"),
    [
        (["steps"], {"synth_step_duration_seconds": 16}),
        # 17 series (14 buckets, +Inf, sum, count) per phase the requests went through
        (["phases"], {"synth_http_phase_duration_seconds": 17 * 4}),
        (["failure_types"], {"synth_check_failures_total": 10}),
    ],
)
def test_each_detail_level_adds_its_families(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    detail: list[str],
    added: dict[str, int],
) -> None:
    lines = series_of_the_check(tmp_path, shop, start_agent, detail)
    by_family: dict[str, int] = {}
    for line in lines:
        by_family[family(line)] = by_family.get(family(line), 0) + 1
    assert by_family == BASE | added
