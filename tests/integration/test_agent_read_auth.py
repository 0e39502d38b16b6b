"""`server.read_auth` and `server.metrics_tokens` against a real agent: reads (run detail
with response excerpts, checks, deploys, the API docs) take the write credentials; the
probes' endpoints stay open; `/metrics` takes its own token when one is set."""

from __future__ import annotations

import json
from pathlib import Path

from agent_harness import (
    ENV,
    AgentProcess,
    StartAgent,
    bearer,
    copy_example_checks,
    signature,
    write_config,
)

from synth.demo import ShopThread

METRICS_TOKEN = "prometheus-scrape-token-0123"
READS = ("/v1/runs", "/v1/checks", "/v1/baselines", "/openapi.json", "/docs", "/v1/deploys/x")


def start(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, **server: object
) -> AgentProcess:
    copy_example_checks(tmp_path)
    return start_agent(
        write_config(tmp_path, shop.base_url, scheduler={"enabled": False}, server=server)
    )


def test_reads_are_open_by_default(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent)
    for path in READS[:5]:
        assert agent.http.get(path).status_code == 200, path


def test_read_auth_guards_every_read_but_the_probes(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent, read_auth=True)
    ran = agent.post("/v1/runs", {"check": "browse", "environment": ENV})
    assert ran.status_code == 200, ran.text
    run_id = ran.json()["run_id"]
    for path in (*READS, f"/v1/runs/{run_id}"):
        response = agent.http.get(path)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["detail"].startswith("missing credentials"), path
        assert agent.http.get(path, headers=bearer("wrong-token-0123456789")).status_code == 401
    for path in ("/v1/runs", "/v1/checks", f"/v1/runs/{run_id}", "/openapi.json", "/docs"):
        assert agent.http.get(path, headers=bearer()).status_code == 200, path
    # a signed read: bound to GET and the path with its query
    query = "check=browse&limit=5"
    signed = {"X-Synth-Signature": signature(b"", method="GET", path=f"/v1/runs?{query}")}
    response = agent.http.get(f"/v1/runs?{query}", headers=signed)
    assert response.status_code == 200, response.text
    assert [r["run_id"] for r in response.json()["runs"]] == [run_id]
    assert agent.http.get("/v1/runs?limit=5", headers=signed).status_code == 401
    for path in ("/healthz", "/readyz", "/metrics"):  # kubelet and Prometheus carry no token
        assert agent.http.get(path).status_code == 200, path


def test_metrics_tokens_guard_metrics_alone(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent, metrics_tokens=[METRICS_TOKEN])
    assert agent.http.get("/metrics").status_code == 401
    assert agent.http.get("/metrics", headers=bearer()).status_code == 401  # not the API's
    scraped = agent.http.get("/metrics", headers=bearer(METRICS_TOKEN))
    assert scraped.status_code == 200
    assert "synth_checks_loaded" in scraped.text
    assert agent.http.get("/v1/runs").status_code == 200  # read_auth is off
    assert agent.http.get("/healthz").status_code == 200
    assert METRICS_TOKEN not in agent.stderr() + json.dumps(agent.get("/v1/checks").json())
