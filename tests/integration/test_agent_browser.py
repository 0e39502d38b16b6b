"""Browser checks in a real `synth agent` (real Chromium, the demo shop's web front end, a
real SQLite store): the example browser check runs on its schedule on a browser worker, a
deploy whose page script is broken gets a FAIL verdict naming the page error, the failed
run's screenshot, trace and console log are stored and served, the shop saw the run's
`traceparent` on its page and on the page's fetch() calls, and /metrics carries the
step's navigation timings."""

from __future__ import annotations

import json
import re
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

from agent_harness import (
    ENV,
    SERVICE,
    SHOP_PASSWORD,
    StartAgent,
    copy_example_checks,
    wait_for,
    write_config,
)

from synth.demo import ShopThread

CHECK = "shop-ui-checkout"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-01$")


def test_browser_check_on_schedule_and_deploy(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    copy_example_checks(tmp_path, browser=True)
    config = write_config(
        tmp_path,
        shop.base_url,
        server={"public_url": "https://synth.example.com"},
        extra={"browser": {"concurrency": 1}},
    )
    agent = start_agent(config)

    # On its schedule (due at start), on a browser worker: a pass with the page's timings.
    def passed_run() -> dict[str, Any] | None:
        runs = agent.runs(check=CHECK, status="passed")
        return runs[0] if runs else None

    first = wait_for(passed_run, timeout=60, what="a scheduled pass of the browser check")
    labels = {"check": CHECK, "env": ENV, "phase": "scheduled", "step": "log in"}
    ttfb = agent.metric("synth_browser_timing_seconds", **labels, timing="ttfb")
    assert ttfb is not None
    assert ttfb >= 0
    requests = agent.metric("synth_browser_requests", **labels)
    assert requests is not None
    assert requests >= 3  # the document, its script and style, the login fetch()
    launches = agent.metric("synth_browser_launches_total")
    assert launches == 1.0

    # Every request of that run's page to the shop carried the run's trace context.
    run = agent.get(f"/v1/runs/{first['run_id']}").json()
    trace_id = run["trace_id"]
    seen = [r for r in shop.requests if r.headers.get("traceparent", "").find(trace_id) > 0]
    paths = {r.path for r in seen}
    assert {"/", "/static/shop.js", "/api/login", "/shop", "/api/checkout"} <= paths, paths
    for record in seen:
        found = TRACEPARENT.match(record.headers["traceparent"])
        assert found is not None
        assert found.group(1) == trace_id
    assert run["artifacts"] == []  # a pass keeps none (browser.artifacts: on_failure)

    # A deploy whose page script throws: FAIL, the page error named.
    shop.set_faults(broken_js=True)
    accepted = agent.deploy({"service": SERVICE, "environment": ENV, "version": "2.0.0"})
    assert accepted.status_code == 202, accepted.text
    record = agent.wait_deploy(accepted.json()["id"], wait=90)
    shop.clear_faults()
    assert record["verdict"]["result"] == "fail", json.dumps(record)[:3000]
    failed = [r for r in agent.runs(deploy_id=record["id"]) if r["check"] == CHECK]
    assert failed, record
    failed_run = agent.get(f"/v1/runs/{failed[0]['run_id']}").json()
    assert failed_run["failure_type"] == "script_error", failed_run
    assert "uncaught error in the page" in failed_run["failure"]["message"]
    assert "TypeError" in failed_run["failure"]["message"]

    # Its artifacts: listed with their links, served, and free of the password.
    by_name = {a["name"]: a for a in failed_run["artifacts"]}
    assert {"screenshot.png", "trace.zip", "console.log"} <= set(by_name), by_name
    assert by_name["screenshot.png"]["url"] == (
        f"https://synth.example.com/v1/runs/{failed_run['run_id']}/artifacts/screenshot.png"
    )
    served: dict[str, bytes] = {}
    for name in ("screenshot.png", "trace.zip", "console.log"):
        response = agent.get(f"/v1/runs/{failed_run['run_id']}/artifacts/{name}")
        assert response.status_code == 200, response.text
        served[name] = response.content
    assert served["screenshot.png"].startswith(b"\x89PNG")
    assert "TypeError" in served["console.log"].decode()
    password = SHOP_PASSWORD.encode()
    with zipfile.ZipFile(BytesIO(served["trace.zip"])) as trace:
        entries = trace.namelist()
        assert any(name.endswith(".trace") for name in entries), entries
        for name in entries:
            assert password not in trace.read(name), name
    for name, data in served.items():
        assert password not in data, name
