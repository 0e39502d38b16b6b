"""Paging defaults that hold, end to end: a real `synth agent` with the default playbook
(no trigger, resolve or retries configured) runs scheduled checks every second against the
demo shop failing a seeded 5 % of requests at random, and pages the strict PagerDuty
stand-in. Noise never pages and is named as flakiness, once; a persistent fault pages
within (threshold × interval + retry delay + 5 s) and resolves once; `failing_for` pages
at the window's end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from agent_harness import (
    ENV,
    AgentProcess,
    StartAgent,
    wait_for,
    write_check,
)
from pagerduty_standin import PagerDutyStandIn
from test_pagerduty import KEY, configure

from synth.demo import ShopThread

NOISY_CHECKS = 40
RETRY_DELAY_S = 0.2


def scheduled_check(name: str, every: str = "1s") -> str:
    return f"""
    import synth

    @synth.check(service="shop", every="{every}", timeout="5s")
    async def {name}(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""


def default_playbook_config(
    tmp_path: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    checks: dict[str, str],
    **playbook: Any,
) -> Path:
    """The test_pagerduty configuration with the scheduler on and the playbook's trigger,
    resolve_after and reopen_after left at their defaults."""
    path = configure(tmp_path, shop, pagerduty)
    (tmp_path / "checks" / "health.py").unlink()
    for name, source in checks.items():
        write_check(tmp_path, f"{name}.py", source)
    config = yaml.safe_load(path.read_text())
    config["scheduler"] = {"enabled": True, "jitter": 0}
    config["runner"] = {"retry_delay": f"{RETRY_DELAY_S}s"}
    book = config["playbooks"]["shop-oncall"]
    for key in ("trigger", "resolve_after", "reopen_after"):
        book.pop(key)
    book.update(playbook)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def runs_counted(agent: AgentProcess) -> float:
    text = agent.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("synth_check_runs_total{")
    )


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_random_5_percent_failures_never_page_and_are_named_flaky_once(
    seed: int,
    tmp_path: Path,
    shop: ShopThread,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
) -> None:
    checks = {f"noisy{i}": scheduled_check(f"noisy{i}") for i in range(NOISY_CHECKS)}
    config = default_playbook_config(
        tmp_path, shop, pagerduty, checks, flaky={"notify_above": 0.01, "min_runs": 5}
    )
    shop.set_faults(error_rate=0.05, seed=seed, path_prefix="/health")
    agent = start_agent(config)
    wait_for(lambda: runs_counted(agent) >= 600, timeout=60, what="600 runs")

    triggers = [e for e in pagerduty.accepted("trigger") if "flaky:" not in (e.dedup_key or "")]
    assert triggers == [], f"false pages: {[e.body['payload']['summary'] for e in triggers]}"
    retried = sum(
        agent.metric("synth_check_runs_total", check=name, result="passed_after_retry") or 0
        for name in checks
    )
    assert retried > 0, "5 % random failures must show as runs that passed on retry"

    flaky = [e for e in pagerduty.accepted("trigger") if "flaky:" in (e.dedup_key or "")]
    keys = [e.dedup_key for e in flaky]
    assert flaky, "flaky checks are named"
    assert len(keys) == len(set(keys)), "one notification per flaky check, not per failure"
    payload = flaky[0].body["payload"]
    assert payload["severity"] == "info"
    assert " is flaky: " in payload["summary"]
    assert "step 'health', mostly http_status" in payload["summary"]
    listed = {c["name"]: c for c in agent.get("/v1/checks").json()["checks"]}
    named = flaky[0].body["payload"]["custom_details"]["check"]
    assert listed[named]["flaky"][ENV]["ratio"] > 0
    assert listed[named]["retries"] == 1
    assert (agent.metric("synth_check_flaky_ratio", check=named, env=ENV) or 0) > 0


def test_a_persistent_fault_pages_once_within_the_bound_and_resolves_once(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    config = default_playbook_config(
        tmp_path, shop, pagerduty, {"health": scheduled_check("health")}
    )
    agent = start_agent(config)
    wait_for(lambda: runs_counted(agent) >= 2, timeout=20, what="two clean runs")
    shop.set_faults(status=503, path_prefix="/health")
    broke = time.monotonic()
    [page] = wait_for(lambda: pagerduty.accepted("trigger") or None, timeout=30, what="the page")
    delay = time.monotonic() - broke
    bound = 2 * 1.0 + RETRY_DELAY_S * 1.5 + 5  # threshold × interval + retry delay + 5 s
    assert delay <= bound, f"paged after {delay:.1f}s, bound {bound:.1f}s"
    assert page.dedup_key == KEY
    assert "at step 'health': http_status" in page.body["payload"]["summary"]
    assert page.body["payload"]["custom_details"]["attempts"] == 2

    shop.clear_faults()
    wait_for(lambda: pagerduty.accepted("resolve") or None, timeout=30, what="the resolve")
    assert len(pagerduty.accepted("trigger")) == 1
    assert len(pagerduty.accepted("resolve")) == 1


def test_failing_for_pages_at_the_end_of_its_window(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    window_s = 4.0
    config = default_playbook_config(
        tmp_path,
        shop,
        pagerduty,
        {"health": scheduled_check("health")},
        trigger={"failing_for": f"{window_s:g}s"},
    )
    agent = start_agent(config)
    wait_for(lambda: runs_counted(agent) >= 2, timeout=20, what="two clean runs")
    shop.set_faults(status=503, path_prefix="/health")
    broke = time.monotonic()
    wait_for(lambda: pagerduty.accepted("trigger") or None, timeout=30, what="the page")
    delay = time.monotonic() - broke
    assert window_s <= delay <= window_s + 1.0 + RETRY_DELAY_S * 1.5 + 5
