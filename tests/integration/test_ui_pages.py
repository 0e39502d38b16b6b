"""The agent's web pages in real headless Chromium (Playwright driving Debian's chromium),
against a real agent with a real SQLite store and real runs: the overview lists the checks
with their status; a failing run's page shows the failing step, the request, expected vs
actual and the excerpt, with the check's secret nowhere in the HTML in any encoding; the
check, deploys, caught-before-production and silences pages render what the store holds;
reads follow `server.read_auth` (Basic credentials for browsers, never for writes); odd
query strings get a 4xx, never a 5xx; 5,000 checks page 50 rows at a time.

Screenshots of every page are saved under build/ui-screenshots/ (or $SYNTH_UI_SCREENSHOTS).
"""

from __future__ import annotations

import base64
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx2
import pytest
import yaml
from agent_harness import (
    ENV,
    REPO,
    TOKEN,
    StartAgent,
    bearer,
    copy_example_checks,
    store_url,
    wait_for,
    write_check,
    write_config,
)
from pagerduty_standin import PagerDutyStandIn, pagerduty_fixture  # noqa: F401
from playwright.sync_api import Page, sync_playwright
from test_pagerduty import ROUTING_KEY, pagerduty_ca

from synth.demo import ShopThread
from synth.model import Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import Store

CANARY = "ui-canary-Zq8/+x=Secret"
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("SYNTH_UI_SCREENSHOTS", REPO / "build" / "ui-screenshots"))

ECHO_CHECK = """
    name: account-echo
    service: echo
    envs: [staging]
    every: 1s
    timeout: 5s
    retries: 0
    tags: [canary]
    steps:
      - name: fetch the account
        request:
          path: /account
          params: {key: "${secrets.canary}"}
          headers: {Authorization: "Bearer ${secrets.canary}", X-Account: "${secrets.canary}"}
        expect:
          status: 200
"""


class Echo(BaseHTTPRequestHandler):
    """Answers 500 with the request's path and Authorization header in the body and in
    a header: a target that leaks what it was sent, as a badly written error page does."""

    def do_GET(self) -> None:
        body = f"error for {self.path} with {self.headers.get('Authorization')}".encode()
        self.send_response(500)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Debug-Echo", f"sent {self.headers.get('X-Account')}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(name="echo_url")
def echo_url_fixture() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(name="browser_page")
def browser_page_fixture() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(
            viewport={"width": 1300, "height": 900},
            http_credentials={"username": "oncall", "password": TOKEN},
        )
        yield context.new_page()
        context.close()
        browser.close()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote(secret),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        secret.replace("+", "&#43;").replace("/", "&#x2F;").replace("=", "&#x3D;"),
    ]


def configure(tmp_path: Path, shop: ShopThread, echo_url: str, pagerduty: PagerDutyStandIn) -> Path:
    copy_example_checks(tmp_path)
    for source in (tmp_path / "checks").iterdir():  # runs every second, not every minute
        text = re.sub(r'every: \d+[sm]|every="\d+[sm]"', "every: 1s", source.read_text())
        source.write_text(text.replace("every: 1s,", 'every="1s",'))
    write_check(tmp_path, "account_echo.yaml", ECHO_CHECK)
    config = write_config(
        tmp_path,
        shop.base_url,
        scheduler={"enabled": True, "jitter": 0},
        server={"read_auth": True, "public_url": "http://synth.example"},
        extra={
            "baseline": {"from_env": "preprod"},
            "playbooks": {
                "oncall": {
                    "routing_key": ROUTING_KEY,
                    "trace_url_template": "https://tempo.example/trace/{trace_id}",
                }
            },
            "default_playbook": "oncall",
            "pagerduty": {
                "api_url": pagerduty.url,
                "ca_file": str(pagerduty_ca(pagerduty, tmp_path)),
                "retry_initial": "200ms",
                "retry_max": "1s",
            },
        },
    )
    settings = yaml.safe_load(config.read_text())
    staging = settings["environments"][ENV]
    staging["services"]["echo"] = {"base_url": echo_url}
    staging["secrets"]["canary"] = CANARY
    settings["environments"]["preprod"] = {
        "services": {"shop": staging["services"]["shop"]},
        "secrets": {"shop_password": staging["secrets"]["shop_password"]},
    }
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    return config


def test_pages_show_checks_runs_and_failures_without_secrets(
    tmp_path: Path,
    shop: ShopThread,
    echo_url: str,
    pagerduty: PagerDutyStandIn,
    start_agent: StartAgent,
    browser_page: Page,
) -> None:
    agent = start_agent(configure(tmp_path, shop, echo_url, pagerduty))
    auth = bearer()

    def runs(**params: str) -> list[dict[str, object]]:
        answer = agent.http.get("/v1/runs", params={"limit": 200, **params}, headers=auth)
        return list(answer.json()["runs"])

    failed = wait_for(
        lambda: runs(check="account-echo", status="failed", env=ENV),
        timeout=20,
        what="a failed run",
    )
    wait_for(
        lambda: all(
            runs(check=name, status="passed", env=ENV)
            for name in ("checkout", "browse", "shop-port")
        ),
        timeout=30,
        what="passing example checks",
    )
    deploy = agent.http.post(
        "/v1/deploys",
        json={"service": "echo", "environment": ENV, "version": "v2.3.1"},
        headers=auth,
    )
    assert deploy.status_code == 202, deploy.text
    deploy_id = deploy.json()["id"]
    wait_for(
        lambda: agent.http.get(f"/v1/deploys/{deploy_id}", headers=auth).json().get("verdict"),
        timeout=30,
        what="the deploy's verdict",
    )
    silence = agent.http.post(
        "/v1/silences",
        json={
            "matchers": {"check": "shop-port"},
            "end": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
            "reason": "port moves",
            "author": "ana",
        },
        headers=auth,
    )
    assert silence.status_code == 201, silence.text

    # Reads need credentials with read_auth: a browser is asked for Basic ones.
    anonymous = httpx2.get(agent.url + "/ui/", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    # Basic credentials never authorize a write (a browser resends them by itself).
    basic = base64.b64encode(f"oncall:{TOKEN}".encode()).decode()
    write = httpx2.post(
        agent.url + "/v1/silences",
        json={"all": True, "end": "2099-01-01T00:00:00Z", "reason": "x", "author": "x"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert write.status_code == 401

    page = browser_page
    page.goto(f"{agent.url}/ui/?env={ENV}")
    rows = page.locator("#checks tbody tr")
    statuses = {
        row.get_attribute("data-check"): row.locator(".pill").first.inner_text()
        for row in rows.all()
    }
    assert statuses == {
        "account-echo": "failing",
        "checkout": "passing",
        "browse": "passing",
        "shop-port": "silenced",
    }
    assert "port moves" in page.locator(".box.hush").inner_text()
    shot(page, "overview")
    # The same numbers as the uptime report (its last hour lies inside the overview's 24 h;
    # runs between the two reads would differ: the page is read after the report).
    report = agent.http.get("/v1/report", params={"since": "1h", "env": ENV}, headers=auth)
    page.goto(f"{agent.url}/ui/?env={ENV}")
    for counted in report.json()["checks"]:
        cell = page.locator(f"#checks tbody tr[data-check='{counted['check']}'] td.num").first
        passed, total = map(int, re.findall(r"\d+", cell.get_attribute("title") or "")[:2])
        assert passed >= counted["passed"], (counted, passed)
        assert total - passed >= counted["failed"], (counted, total)
        assert total - counted["runs"] <= 10  # only the runs newer than the report

    page.goto(f"{agent.url}/ui/?status=failing&env={ENV}")
    assert [r.get_attribute("data-check") for r in rows.all()] == ["account-echo"]

    run_id = str(failed[0]["run_id"])
    page.goto(f"{agent.url}/ui/runs/{run_id}")
    failure = page.locator("#failure").inner_text()
    assert "fetch the account" in failure
    assert "http_status" in failure
    assert "Expected" in failure.title() or "EXPECTED" in failure
    assert "200" in failure
    assert "500" in failure
    assert "error for /account" in page.locator("#excerpt").inner_text()
    # The failing request's and response's headers, credentials and secrets masked.
    page.locator("#headers summary").click()
    headers = [
        tuple(cell.inner_text() for cell in row.locator("td").all())
        for row in page.locator("#headers tr").all()
        if row.locator("td").count() == 2
    ]
    assert ("Authorization", "***") in headers
    assert ("X-Account", "***") in headers
    assert ("x-debug-echo", "sent ***") in headers  # as HTTP/2 writes names: lower case
    assert ("content-type", "text/plain") in headers
    assert page.locator("#steps .bar .seg").count() >= 1
    trace = page.locator("a[href^='https://tempo.example/trace/']")
    assert trace.count() == 1
    shot(page, "run-failed")
    raw = agent.http.get(f"/ui/runs/{run_id}", headers=auth).text
    for html in (page.content(), raw):
        for form in encodings(CANARY):
            assert form not in html, f"the secret reached the run page as {form!r}"
    assert "key=***" in raw or "key=%2A%2A%2A" in raw  # the URL kept, its secret masked

    page.goto(f"{agent.url}/ui/checks/checkout?env={ENV}")
    assert "passing" in page.locator("#status").inner_text()
    assert page.locator("#runs tbody tr").count() >= 1
    assert page.locator("#baseline tbody tr").count() >= 1  # steps with their recent latency
    shot(page, "check")

    page.goto(f"{agent.url}/ui/checks/account-echo")
    assert "http_status" in page.locator("#failure-days").inner_html()
    shot(page, "check-failing")

    page.goto(agent.url + "/ui/deploys")
    deploys = page.locator("#deploys tbody tr")
    assert deploys.count() == 1
    assert "v2.3.1" in deploys.first.inner_text()
    assert "fail" in deploys.first.locator(".pill").inner_text()
    assert "account-echo" in deploys.first.inner_text()
    shot(page, "deploys")
    page.goto(f"{agent.url}/ui/deploys/{deploy_id}")
    assert "account-echo" in page.locator("#runs").inner_text()
    shot(page, "deploy")

    page.goto(agent.url + "/ui/caught")
    caught = page.locator("#caught tbody tr").first.inner_text()
    assert "echo" in caught
    assert "http_status" in caught
    # Staging is production here (only `preprod` is the baseline's pre-prod environment).
    assert re.search(r"\b0\s+1\b", caught), caught
    shot(page, "caught")

    page.goto(agent.url + "/ui/silences")
    assert "port moves" in page.locator("#silences").inner_text()
    shot(page, "silences")

    # Odd query strings and paths: a 4xx with the reason, never a 5xx.
    for path in (
        "/ui/?page=0",
        "/ui/?per_page=100000",
        "/ui/?status=broken",
        "/ui/checks/no-such-check",
        "/ui/runs/" + "x" * 300,
        "/ui/runs/nope",
        "/ui/checks/checkout?before=yesterday",
        "/ui/deploys?before=%00",
        "/ui/caught?weeks=-1",
        "/ui/runs/nope/artifacts/..%2F..%2Fetc%2Fpasswd",
        "/ui/runs/%00",
        "/ui/checks/checkout?env=%00",
        "/ui/?q=a%00b",
    ):
        answer = agent.http.get(path, headers=auth)
        assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    # Valid but unusual: answered, never a 5xx.
    for path in (
        "/ui/?q=%00%ff%F0%9F%92%A5",
        "/ui/?q=" + "%27%22%3C" * 30,
        "/ui/checks/checkout?before=9999-12-31T23:59:59Z",
        "/ui/checks/checkout?before=0001-01-01T00:00:00",
        "/ui/deploys?before=2026-01-01T00:00:00%2B14:00&service=%F0%9F%92%A5",
        "/ui/checks/%E2%9C%93",
        "/ui/?page=100000&per_page=200",
    ):
        answer = agent.http.get(path, headers=auth)
        assert answer.status_code < 500, (path, answer.status_code, answer.text[:200])


def seed(url: str, checks: int, now: datetime) -> None:
    """One run per check, every tenth failing, written through the store as the agent would."""

    async def write() -> None:
        store = await Store.open(url)
        try:
            batch = []
            for i in range(checks):
                status = Status.FAILED if i % 10 == 0 else Status.PASSED
                failure = Failure(FailureType.TIMEOUT, "no answer") if i % 10 == 0 else None
                batch.append(
                    RunResult(
                        run_id=f"seed-{i}",
                        check=f"c{i:05d}",
                        service=f"svc{i % 20}",
                        environment=ENV,
                        phase=Phase.SCHEDULED,
                        location="local",
                        status=status,
                        started_at=now - timedelta(seconds=i),
                        duration_s=0.01 + (i % 7) / 100,
                        steps=(StepResult("get", status, 0.01, failure=failure),),
                        failure=failure,
                        failed_step="get" if failure else None,
                    )
                )
            await store.save_runs(batch)
        finally:
            await store.close()

    import asyncio

    asyncio.run(write())


def test_the_overview_pages_through_5000_checks(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    checks = 5000
    folder = tmp_path / "checks"
    folder.mkdir()
    for i in range(checks):
        (folder / f"c{i:05d}.yaml").write_text(
            f"name: c{i:05d}\nservice: svc{i % 20}\ncron: '0 0 1 1 *'\ntags: [t{i % 3}]\n"
            "steps:\n  - name: get\n    request: {path: /health}\n"
        )
    seed(store_url(tmp_path), checks, datetime.now(UTC))
    config = write_config(tmp_path, shop.base_url, scheduler={"jitter": 0})
    settings = yaml.safe_load(config.read_text())
    settings["environments"][ENV]["services"] = {
        f"svc{i}": {"base_url": shop.base_url} for i in range(20)
    }
    config.write_text(yaml.safe_dump(settings, sort_keys=False))
    agent = start_agent(config)

    first = agent.get("/ui/")
    assert first.status_code == 200
    assert "server-timing" in first.headers
    assert first.text.count("<tr data-check=") == 50
    assert "page 1 of 100 · 5000 rows" in first.text
    # Failing first: the 500 seeded failures fill pages 1-10.
    assert first.text.count('<span class="pill failing">') == 50
    eleventh = agent.get("/ui/", page="11").text
    assert eleventh.count('<span class="pill passing">') == 50
    last = agent.get("/ui/", page="100").text
    assert last.count("<tr data-check=") == 50
    assert 'rel="next"' not in last
    assert "page 100 of 100" in agent.get("/ui/", page="500").text
    failing = agent.get("/ui/", status="failing", per_page="200").text
    assert "page 1 of 3 · 500 rows" in failing
    tagged = agent.get("/ui/", tag="t1", service="svc1").text  # svc1: i % 20 == 1
    assert re.search(r"· (\d+) rows", tagged).group(1) == str(  # type: ignore[union-attr]
        sum(1 for i in range(checks) if i % 20 == 1 and i % 3 == 1)
    )
    timings = [
        float(agent.get("/ui/", page=str(p)).headers["server-timing"].split("dur=")[1])
        for p in range(1, 21)
    ]
    print(f"overview of 5,000 checks: server time per page {sorted(timings)} ms")


def test_a_browser_runs_page_shows_its_screenshot_and_trace(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, browser_page: Page
) -> None:
    copy_example_checks(tmp_path, browser=True)
    for name in ("shop_checkout.py", "shop_browse.yaml", "shop_tcp.yaml"):
        (tmp_path / "checks" / name).unlink()
    config = write_config(
        tmp_path,
        shop.base_url,
        server={"read_auth": True},
        extra={"browser": {"concurrency": 1}},
    )
    shop.set_faults(broken_js=True)  # the page's script throws: the check fails in Chromium
    agent = start_agent(config)

    def failed_run() -> str | None:
        answer = agent.http.get(
            "/v1/runs", params={"check": "shop-ui-checkout", "status": "failed"}, headers=bearer()
        )
        found = answer.json()["runs"]
        return str(found[0]["run_id"]) if found else None

    run_id = wait_for(failed_run, timeout=90, what="a failed browser run")
    page = browser_page
    page.goto(f"{agent.url}/ui/runs/{run_id}")
    page.wait_for_load_state("load")
    screenshot = page.locator("img[alt='screenshot.png']")
    # Loaded through the page's own Basic credentials (read_auth is on).
    assert screenshot.evaluate("img => img.complete && img.naturalWidth") > 0
    trace = page.locator("a", has_text="trace.zip")
    href = trace.get_attribute("href")
    assert href is not None
    fetched = agent.http.get(href, headers=bearer())
    assert fetched.status_code == 200
    assert fetched.content.startswith(b"PK")
    assert "TypeError" in page.locator("#failure").inner_text()
    shot(page, "run-browser")
