"""Browser checks in a real `synth agent` (real Chromium, the demo shop's web front end, a
real SQLite store): the example browser check runs on its schedule on a browser worker, a
deploy whose page script is broken gets a FAIL verdict naming the page error, the failed
run's screenshot, trace and console log are stored and served, the shop saw the run's
`traceparent` on its page and on the page's fetch() calls, and /metrics carries the
step's navigation timings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from agent_harness import (
    ENV,
    SERVICE,
    SHOP_PASSWORD,
    SYNTH,
    TOKEN,
    StartAgent,
    clean_env,
    copy_example_checks,
    wait_for,
    write_check,
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

    # A deploy whose page script throws, from a pipeline: FAIL, the page error named.
    shop.set_faults(broken_js=True)
    junit = tmp_path / "verification.xml"
    done = subprocess.run(
        [
            *(SYNTH, "trigger", "--agent", agent.url, "--wait", "--junit", str(junit)),
            *("--service", SERVICE, "--env", ENV, "--version", "2.0.0", "--timeout", "90"),
        ],
        env=clean_env(SYNTH_TOKEN=TOKEN),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    shop.clear_faults()
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [r for r in agent.runs(phase="deploy", status="failed") if r["check"] == CHECK]
    assert failed, done.stdout
    record = agent.wait_deploy(failed[0]["deploy_id"], wait=1)
    assert record["verdict"]["result"] == "fail", json.dumps(record)[:3000]
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
    # The pipeline's JUnit report links them where the agent serves them.
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if c.get("name") == CHECK)
    # The page's own script error fails the target (as the verdict says), not the check.
    assert case.find("error") is None
    failure_text = case.findtext("failure") or ""
    out = case.findtext("system-out") or ""
    for name in ("screenshot.png", "trace.zip", "console.log"):
        assert f"{name}: {by_name[name]['url']}" in failure_text, failure_text
        assert f"[[ATTACHMENT|{by_name[name]['url']}]]" in out, out
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


BROWSER_CHECK = """
    name: page-up
    service: shop
    every: 1s
    retries: 0
    steps:
      - name: open the shop
        browser: [{goto: /}]
"""


def ancestors(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of `pid`'s parents, nearest first."""
    found = []
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        found.append((pid, cmdline))
    return found


def synth_chromiums(agent_pid: int) -> list[list[tuple[int, str]]]:
    """The ancestry of each Chromium browser process below the agent."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"--synth-browser=" not in cmdline or b"--type=" in cmdline:
                continue  # not one synth started, or one of its helpers (renderer, ...)
            chain = ancestors(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        if any(pid == agent_pid for pid, _ in chain):
            found.append(chain)
    return found


def test_scheduled_browser_runs_are_made_in_a_browser_process(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    # The Playwright client of scheduled browser runs lives in a process of its own (its
    # Chromium below it), not on a thread sharing the agent's interpreter and its loop.
    write_check(tmp_path, "page.yaml", BROWSER_CHECK)
    config = write_config(tmp_path, shop.base_url, extra={"browser": {"concurrency": 1}})
    agent = start_agent(config)
    wait_for(
        lambda: len(agent.runs(check="page-up", status="passed")) >= 2,
        timeout=60,
        what="two scheduled passes of the browser check",
    )
    (chain,) = synth_chromiums(agent.process.pid)
    parents = [cmd for _, cmd in chain[: [p for p, _ in chain].index(agent.process.pid)]]
    browser_process = [c for c in parents if "synth.agent.run_process" in c]
    assert browser_process, parents
    assert "--browser" in browser_process[0]
    assert agent.metric("synth_browser_launches_total") == 1.0  # counted by the agent

    # A browser process that dies is restarted; no run is lost meanwhile.
    (python_pid,) = [p for p, cmd in chain if "synth.agent.run_process" in cmd]
    os.kill(python_pid, signal.SIGKILL)
    wait_for(
        lambda: (agent.metric("synth_run_process_restarts_total") or 0) >= 1,
        timeout=30,
        what="the browser process restarted",
    )
    before = len(agent.runs(check="page-up", limit=200))
    wait_for(
        lambda: len(agent.runs(check="page-up", status="passed", limit=200)) >= before + 2,
        timeout=60,
        what="passes after the restart",
    )
    failed = agent.runs(check="page-up", status="failed", limit=200)
    details = [agent.get(f"/v1/runs/{r['run_id']}").json() for r in failed]
    assert failed == [], json.dumps(details)[:3000]


def test_browser_isolation_thread_keeps_chromium_under_the_agent(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    write_check(tmp_path, "page.yaml", BROWSER_CHECK)
    extra = {"browser": {"concurrency": 1, "isolation": "thread"}}
    agent = start_agent(write_config(tmp_path, shop.base_url, extra=extra))
    wait_for(
        lambda: agent.runs(check="page-up", status="passed"),
        timeout=60,
        what="a scheduled pass of the browser check",
    )
    (chain,) = synth_chromiums(agent.process.pid)
    assert not [cmd for _, cmd in chain if "synth.agent.run_process" in cmd], chain
