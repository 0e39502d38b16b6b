"""Deploy verification through a real `synth agent` process and the example checks against
the demo shop: verdicts, authentication, idempotency, supersede and `synth trigger`."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from agent_harness import (
    ENV,
    SERVICE,
    SYNTH,
    TOKEN,
    AgentProcess,
    StartAgent,
    clean_env,
    copy_example_checks,
    signed,
    wait_for,
    write_config,
)
from postgres import postgres_server  # noqa: F401

from synth.demo import ShopThread

EXAMPLE_CHECKS = ["browse", "checkout", "shop-port"]
TRIGGER_TIMEOUT_S = 30.0


def event(version: str = "1.2.3", **fields: Any) -> dict[str, Any]:
    return {"service": SERVICE, "environment": ENV, "version": version, **fields}


def start_example_agent(
    tmp_path: Path,
    shop: ShopThread,
    start_agent: StartAgent,
    store: str | None = None,
    **deploys: Any,
) -> AgentProcess:
    """An agent with the example checks and no schedule: every shop request and every run
    comes from the deploy verification under test. Store: SQLite unless a URL is given."""
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path, shop.base_url, scheduler={"enabled": False}, deploys=deploys, store=store
    )
    return start_agent(config)


def announce(agent: AgentProcess, body: dict[str, Any], expected: int = 202) -> dict[str, Any]:
    response = agent.deploy(body)
    assert response.status_code == expected, response.text
    record: dict[str, Any] = response.json()
    return record


def deploy_runs(agent: AgentProcess, deploy_id: str) -> list[dict[str, Any]]:
    return agent.runs(deploy_id=deploy_id)


def logins(shop: ShopThread) -> int:
    return sum(1 for r in shop.requests if r.path == "/api/login")


def test_deploy_passes(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, agent_store: str
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent, agent_store)

    accepted = announce(agent, event(commit="abc123"))
    assert accepted["status"] in ("pending", "running")
    assert accepted["links"] == {"self": f"/v1/deploys/{accepted['id']}"}

    record = agent.wait_deploy(accepted["id"])
    assert record["status"] == "passed", record
    verdict = record["verdict"]
    assert verdict["result"] == "pass"
    assert verdict["checks"] == EXAMPLE_CHECKS
    assert verdict["failing"] == []
    assert record["finished_at"] is not None

    runs = deploy_runs(agent, accepted["id"])
    assert sorted(r["check"] for r in runs) == EXAMPLE_CHECKS
    assert {r["phase"] for r in runs} == {"deploy"}
    assert {r["deploy_id"] for r in runs} == {accepted["id"]}
    assert sorted(r["run_id"] for r in runs) == sorted(record["run_ids"])
    checkout = next(r for r in runs if r["check"] == "checkout")
    detail = agent.get(f"/v1/runs/{checkout['run_id']}").json()
    assert detail["deploy"]["deploy_id"] == accepted["id"]
    assert (detail["deploy"]["version"], detail["deploy"]["commit"]) == ("1.2.3", "abc123")
    assert [s["name"] for s in detail["steps"]] == [
        "log in",
        "list products",
        "add to cart",
        "check out",
        "order status",
    ]
    verdicts = agent.metric("synth_deploy_verdicts_total", service=SERVICE, env=ENV, result="pass")
    assert verdicts == 1


def test_deploy_fails_naming_the_failing_step(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, agent_store: str
) -> None:
    shop.set_faults(status=503, path_prefix="/api/checkout")
    agent = start_example_agent(tmp_path, shop, start_agent, agent_store)

    record = agent.wait_deploy(announce(agent, event())["id"])

    assert record["status"] == "failed", record
    verdict = record["verdict"]
    assert verdict["result"] == "fail"
    assert len(verdict["failing"]) == 1, verdict["failing"]
    failing = verdict["failing"][0]
    assert (failing["check"], failing["step"], failing["failure_type"]) == (
        "checkout",
        "check out",
        "http_status",
    )
    assert "503" in failing["message"]
    assert "checkout (check out)" in verdict["reason"]
    run = agent.get(f"/v1/runs/{failing['run_id']}").json()
    assert (run["status"], run["failed_step"], run["phase"]) == ("failed", "check out", "deploy")


def test_writes_without_valid_credentials_run_nothing(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent)
    body = json.dumps(event()).encode()
    now = int(time.time())
    json_only = {"Content-Type": "application/json"}
    refused: dict[str, dict[str, str]] = {
        "no credentials": json_only,
        "wrong token": json_only | {"Authorization": "Bearer not-the-token"},
        "not bearer": json_only | {"Authorization": f"Basic {TOKEN}"},
        "wrong secret": signed(body, secret="not-the-secret"),
        "other body": signed(json.dumps(event("6.6.6")).encode()),
        "stale timestamp": signed(body, timestamp=now - 3600),
        "future timestamp": signed(body, timestamp=now + 3600),
        "no timestamp": json_only | {"X-Synth-Signature": "v2=00"},
        "signed for another path": signed(body, path="/v1/runs"),
    }
    for reason, headers in refused.items():
        response = agent.http.post("/v1/deploys", content=body, headers=headers)
        assert response.status_code == 401, (reason, response.text)
        assert response.json()["detail"], reason
        assert "not-the-token" not in response.text
        assert "not-the-secret" not in response.text
    run_now = {"check": "checkout", "environment": ENV}
    assert agent.post("/v1/runs", run_now, authenticated=False).status_code == 401
    assert agent.post("/v1/reload", authenticated=False).status_code == 401

    assert shop.requests == []
    assert agent.runs() == []

    response = agent.http.post("/v1/deploys", content=body, headers=signed(body))
    assert response.status_code == 202, response.text
    assert agent.wait_deploy(response.json()["id"])["status"] == "passed"
    assert logins(shop) == 2  # checkout and browse each log in once


def test_duplicate_event_runs_once(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, agent_store: str
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent, agent_store)
    body = event(id="deploy-123")

    first = announce(agent, body, expected=202)
    again = announce(agent, body, expected=200)  # a webhook retried while verifying
    assert again["id"] == first["id"]
    assert again["idempotency_key"] == "deploy-123"
    assert agent.wait_deploy(first["id"])["status"] == "passed"

    later = announce(agent, body, expected=200)  # and once more after the verdict
    assert later["id"] == first["id"]
    assert later["status"] == "passed"
    # A marker deploy, announced after the duplicates and verified to the end: a
    # verification a duplicate had started would have reached the shop before it finished.
    marker = announce(agent, event("1.2.4", id="deploy-124"))
    assert agent.wait_deploy(marker["id"])["status"] == "passed"
    assert logins(shop) == 4  # two verifications (duplicate + marker), 2 logins each
    assert len(deploy_runs(agent, first["id"])) == len(EXAMPLE_CHECKS)
    assert len(agent.runs(phase="deploy")) == 2 * len(EXAMPLE_CHECKS)
    assert agent.metric("synth_deploy_verdicts_total", service=SERVICE, env=ENV) == 2


def test_newer_deploy_supersedes_the_running_one(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent)
    older = announce(agent, event("1.0.0", window="10s", interval="1s"))
    wait_for(
        lambda: agent.get(f"/v1/deploys/{older['id']}").json()["run_ids"],
        timeout=10,
        what="the first verification round",
        interval=0.1,
    )

    newer = announce(agent, event("1.0.1"))
    record = agent.wait_deploy(older["id"], wait=10)
    assert record["status"] == "superseded", record
    assert record["verdict"]["result"] == "error"
    assert "superseded" in record["verdict"]["reason"]
    assert record["run_ids"], "the runs made before superseding are kept"
    assert agent.wait_deploy(newer["id"])["status"] == "passed"

    kept = len(deploy_runs(agent, older["id"]))
    # Observe past the older deploy's 1 s interval: a third deploy with the same interval
    # makes two rounds (so more than one interval passes), and the older makes none.
    third = announce(agent, event("1.0.2", window="10s", interval="1s"))
    wait_for(
        lambda: len(deploy_runs(agent, third["id"])) >= 2 * len(EXAMPLE_CHECKS),
        timeout=15,
        what="two verification rounds of the third deploy",
        interval=0.1,
    )
    assert len(deploy_runs(agent, older["id"])) == kept


# -- across restarts -------------------------------------------------------------------------


def test_stop_ends_a_verification_as_error_and_a_restart_keeps_it(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent, settle="30s")
    body = event(id="release-7")
    accepted = announce(agent, body)
    wait_for(
        lambda: agent.get(f"/v1/deploys/{accepted['id']}").json()["status"] == "running",
        timeout=5,
        what="the verification to start settling",
    )
    agent.send_signal(signal.SIGTERM)
    assert agent.wait_exit(10) == 0, "a settling verification must not hold up the stop"

    again = start_agent(tmp_path / "synth.yaml")
    record = again.wait_deploy(accepted["id"], wait=2)
    assert record["status"] == "error", record
    assert record["verdict"]["reason"] == "the agent stopped before verification finished"
    assert announce(again, body, expected=200)["id"] == accepted["id"]  # idempotent across
    assert shop.requests == []
    assert again.runs() == []


def test_verification_orphaned_by_a_crash_ends_after_restart(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    """A deploy whose agent died (SIGKILL, OOM, node loss) mid-verification must not stay
    "running" forever: the pipeline waiting on it deserves a verdict, not its own timeout."""
    agent = start_example_agent(tmp_path, shop, start_agent, settle="30s", lease="1s")
    accepted = announce(agent, event(id="release-8"))
    wait_for(
        lambda: agent.get(f"/v1/deploys/{accepted['id']}").json()["status"] == "running",
        timeout=5,
        what="the verification to start settling",
    )
    agent.kill()
    killed = time.monotonic()

    again = start_agent(tmp_path / "synth.yaml")
    record = again.wait_deploy(accepted["id"], wait=5)
    assert record["status"] == "error", record
    assert record["verdict"]["result"] == "error"
    assert record["finished_at"] is not None
    # Within the lease (1 s) plus one long-poll re-read, not at the long-poll's end.
    assert time.monotonic() - killed < 4, "the long-poll waited on a verification nobody runs"


# -- synth trigger ----------------------------------------------------------------------------


def synth_trigger(
    agent: AgentProcess, *args: str, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    """`synth trigger --agent URL --wait ARGS` with SYNTH_TOKEN set to `token` (or unset)."""
    env = clean_env(SYNTH_TOKEN=token) if token is not None else clean_env()
    return subprocess.run(
        [SYNTH, "trigger", "--agent", agent.url, "--wait", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TRIGGER_TIMEOUT_S,
        check=False,
    )


def shop_deploy(*extra: str) -> list[str]:
    return ["--service", SERVICE, "--env", ENV, "--version", "2.0.0", "--timeout", "20", *extra]


def test_trigger_exits_0_on_pass(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent)
    done = synth_trigger(agent, *shop_deploy("--id", "release-42"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdict: PASS" in done.stdout
    assert TOKEN not in done.stdout + done.stderr
    (run,) = agent.runs(check="checkout", phase="deploy")
    deploy = agent.get(f"/v1/deploys/{run['deploy_id']}").json()
    assert (deploy["idempotency_key"], deploy["version"]) == ("release-42", "2.0.0")


def test_trigger_exits_1_on_fail_naming_the_step(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    shop.set_faults(status=503, path_prefix="/api/checkout")
    agent = start_example_agent(tmp_path, shop, start_agent)
    junit = tmp_path / "verification.xml"
    done = synth_trigger(agent, *shop_deploy("--junit", str(junit)))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "verdict: FAIL" in done.stdout
    assert "checkout / check out: http_status" in done.stdout
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert sorted(c.get("name", "") for c in suite.iter("testcase")) == sorted(EXAMPLE_CHECKS)
    assert suite.get("failures") == "1"
    # no `server.public_url`: no page is linked
    assert "/ui/" not in done.stdout + junit.read_text()


PUBLIC_URL = "https://synth.example.com/agent"


def test_trigger_links_the_deploy_and_run_pages_under_the_public_url(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    shop.set_faults(status=503, path_prefix="/api/checkout")
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path, shop.base_url, scheduler={"enabled": False}, server={"public_url": PUBLIC_URL}
    )
    agent = start_agent(config)
    junit = tmp_path / "verification.xml"
    done = synth_trigger(agent, *shop_deploy("--junit", str(junit)))
    assert done.returncode == 1, done.stdout + done.stderr
    (failed,) = agent.runs(phase="deploy", status="failed")
    deploy_page = f"{PUBLIC_URL}/ui/deploys/{failed['deploy_id']}"
    run_page = f"{PUBLIC_URL}/ui/runs/{failed['run_id']}"
    assert f"  page: {deploy_page}\n" in done.stdout
    assert f"    run: {run_page}\n" in done.stdout
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    for case in suite.iter("testcase"):
        (run,) = agent.runs(phase="deploy", check=case.get("name"))
        out = case.findtext("system-out") or ""
        assert f"page:     {PUBLIC_URL}/ui/runs/{run['run_id']}\n" in out, out
    failure = next(c for c in suite.iter("testcase") if c.get("name") == "checkout").find("failure")
    assert failure is not None
    assert f"page:     {run_page}\n" in (failure.text or "")


def test_trigger_junit_needs_wait(tmp_path: Path) -> None:
    done = subprocess.run(
        [SYNTH, "trigger", *shop_deploy("--junit", str(tmp_path / "x.xml"))],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=TRIGGER_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2
    assert "--junit needs --wait" in done.stderr
    assert not (tmp_path / "x.xml").exists()


def test_trigger_exits_2_without_a_verdict_in_time(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent, settle="30s")
    started = time.monotonic()
    done = synth_trigger(
        agent, "--service", SERVICE, "--env", ENV, "--version", "3", "--timeout", "1"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no verdict within 1s" in done.stderr
    assert time.monotonic() - started < 10


def test_trigger_exits_2_when_the_agent_refuses(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent)
    done = synth_trigger(agent, *shop_deploy(), token=None)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused the deploy (401)" in done.stderr
    assert "missing credentials" in done.stderr
    assert shop.requests == []
    assert agent.runs() == []


def test_trigger_exits_2_for_an_unknown_service(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start_example_agent(tmp_path, shop, start_agent)
    done = synth_trigger(
        agent, "--service", "nosuch", "--env", ENV, "--version", "1", "--timeout", "20"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused the deploy (404)" in done.stderr
    assert "no configured check covers service 'nosuch'" in done.stderr
    assert shop.requests == []
