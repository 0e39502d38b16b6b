"""The uptime report against a store seeded by real runs: a real agent runs a check every
second against the demo shop, an outage pages the strict PagerDuty stand-in and resolves;
`GET /v1/report` and `synth report` (text, JSON, CSV) give the availability, failures by
type and the incident with its time to detect and to recover, matching the stored runs."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from agent_harness import ENV, SYNTH, StartAgent, clean_env, store_url, wait_for
from pagerduty_standin import PagerDutyStandIn, pagerduty_fixture  # noqa: F401
from test_pagerduty import configure

from synth.demo import ShopThread

CHECK = """
    import synth

    @synth.check(service="shop", every="1s", timeout="2s", retries=0)
    async def health(flow):
        async with flow.step("health"):
            r = await flow.get("/health")
            r.expect_status(200)
"""


def report_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SYNTH), "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )


def test_report_of_real_runs_and_an_incident(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    config = configure(tmp_path, shop, pagerduty, check=CHECK)
    settings = yaml.safe_load(config.read_text())
    settings["scheduler"] = {"enabled": True, "jitter": 0}
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    agent = start_agent(config)

    def scheduled() -> list[dict[str, Any]]:
        return [r for r in agent.runs(check="health", limit=500) if r["phase"] == "scheduled"]

    wait_for(lambda: len(scheduled()) >= 3, timeout=15, what="three scheduled runs")
    shop.set_faults(status=503, path_prefix="/health")
    wait_for(lambda: pagerduty.accepted("trigger"), timeout=20, what="the page")
    shop.clear_faults()
    wait_for(lambda: pagerduty.accepted("resolve"), timeout=20, what="the resolve")

    answer = agent.get("/v1/report", since="1h")
    assert answer.status_code == 200, answer.text
    assert agent.get("/v1/report", since="forever").status_code == 422
    assert agent.get("/v1/report", since="0d").status_code == 422
    longest = agent.get("/v1/report", since="999d").json()  # at most 400 days back
    assert (
        datetime.fromisoformat(longest["until"]) - datetime.fromisoformat(longest["since"])
    ).days == 400
    code, killed = agent.stop()
    assert (code, killed) == (0, False)

    # Everything stored, nothing running: the report must match the runs exactly.
    done = report_cli("--store", store_url(tmp_path), "--since", "1h", "--format", "json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    runs = [r for r in json.loads(
        report_cli_runs(tmp_path)
    ) if r["phase"] == "scheduled"]  # fmt: skip
    failed = [r for r in runs if r["status"] == "failed"]
    assert failed
    (health,) = report["checks"]
    assert health["check"] == "health"
    assert health["environment"] == ENV
    assert health["runs"] == len(runs)
    assert health["failed"] == len(failed)
    assert health["passed"] == len(runs) - len(failed)
    assert health["availability"] == (len(runs) - len(failed)) / len(runs)
    assert health["failures_by_type"] == {"http_status": len(failed)}

    (incident,) = report["incidents"]
    first_failure = min(datetime.fromisoformat(r["started_at"]) for r in failed)
    assert datetime.fromisoformat(incident["failing_since"]) == first_failure
    paged = datetime.fromisoformat(incident["paged_at"])
    resolved = datetime.fromisoformat(incident["resolved_at"])
    assert first_failure < paged < resolved
    assert incident["time_to_detect_s"] == (paged - first_failure).total_seconds()
    # Two failed runs a second apart page (consecutive: 2): detected within a few seconds.
    assert 0.5 < incident["time_to_detect_s"] < 6
    assert incident["time_to_recover_s"] > incident["time_to_detect_s"]
    assert report["mean_time_to_detect_s"] == incident["time_to_detect_s"]
    assert incident["failure_type"] == "http_status"

    # The agent said the same while it ran (fewer runs: it stopped after).
    live = answer.json()
    assert live["incidents"][0]["paged_at"] == incident["paged_at"]
    assert live["checks"][0]["failed"] == health["failed"]

    text = report_cli("--store", store_url(tmp_path), "--since", "1h")
    assert text.returncode == 0, text.stderr
    assert "health" in text.stdout
    assert "incidents: 1" in text.stdout
    assert "http_status" in text.stdout
    table = report_cli("--store", store_url(tmp_path), "--since", "1h", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(table.stdout)))
    assert int(row["failed"]) == len(failed)
    assert row["failures_by_type"] == f"http_status={len(failed)}"
    bad = report_cli("--store", store_url(tmp_path), "--since", "soon")
    assert bad.returncode == 2
    assert "since" in bad.stderr or "duration" in bad.stderr


def report_cli_runs(directory: Path) -> str:
    """Every stored run's summary, read straight from the store (no agent running)."""
    script = (
        "import asyncio, json, sys\n"
        "from synth.store import Store\n"
        "async def main():\n"
        "    store = await Store.open(sys.argv[1])\n"
        "    runs = await store.list_runs(limit=1000)\n"
        "    await store.close()\n"
        "    print(json.dumps([{'phase': r.phase, 'status': r.status, "
        "'started_at': r.started_at.isoformat()} for r in runs]))\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, store_url(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout
