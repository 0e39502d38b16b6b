"""The agent's HTTP API as a client sees it: the OpenAPI document, validation (422), body
limits (413), unknown ids (404) and running a check now — over a real `synth agent`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agent_harness import (
    ENV,
    SERVICE,
    AgentProcess,
    StartAgent,
    bearer,
    copy_example_checks,
    write_config,
)
from postgres import postgres_server  # noqa: F401

from synth.demo import ShopThread

CHECKOUT_STEPS = ["log in", "list products", "add to cart", "check out", "order status"]
ROUTES = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
    "/v1/checks": {"get"},
    "/v1/runs": {"get", "post"},
    "/v1/runs/{run_id}": {"get"},
    "/v1/runs/{run_id}/artifacts/{name}": {"get"},
    "/v1/report": {"get"},
    "/v1/deploys": {"post"},
    "/v1/deploys/{deploy_id}": {"get"},
    "/v1/reload": {"post"},
    "/v1/hooks/github": {"post"},
    "/v1/hooks/argocd": {"post"},
    "/v1/hooks/flagger": {"post"},
    "/v1/hooks/argo-rollouts": {"get", "post"},
    "/v1/baselines": {"get", "post"},
    "/v1/cluster": {"get"},
    "/v1/silences": {"get", "post"},
    "/v1/silences/{silence_id}": {"delete"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def agent(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> AgentProcess:
    """An agent with the example checks and no schedule (every run is the test's)."""
    copy_example_checks(tmp_path)
    return start_agent(write_config(tmp_path, shop.base_url, scheduler={"enabled": False}))


def test_a_lone_agent_s_cluster_is_itself_running_every_check(agent: AgentProcess) -> None:
    state = agent.get("/v1/cluster").json()
    assert state["clustered"] is False
    assert state["member_id"] is None
    assert state["running"] is True
    assert state["owned_checks"] == state["scheduled_checks"] == 0  # no schedule here
    assert agent.metric("synth_cluster_members", location="local") == 1


def detail(response: Any) -> Any:
    return response.json()["detail"]


def test_openapi_lists_every_route(agent: AgentProcess) -> None:
    response = agent.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    routes = {
        path: {method for method in operations if method in HTTP_METHODS}
        for path, operations in document["paths"].items()
    }
    assert routes == ROUTES
    assert "DeployEvent" in document["components"]["schemas"]
    for path in ("/healthz", "/readyz", "/metrics", "/v1/checks", "/v1/runs"):
        assert agent.get(path).status_code == 200, path
    assert agent.get("/healthz").json() == {"status": "ok"}
    checks = agent.get("/v1/checks").json()
    assert sorted(c["name"] for c in checks["checks"]) == ["browse", "checkout", "shop-port"]
    assert checks["problems"] == []


BAD_QUERIES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/runs", {"limit": 0}, "limit"),
    ("/v1/runs", {"limit": 501}, "limit"),
    ("/v1/runs", {"phase": "sometimes"}, "phase"),
    ("/v1/deploys/any", {"wait": 301}, "wait"),
    ("/v1/deploys/any", {"wait": "soon"}, "wait"),
]


def test_bad_query_is_422_naming_the_parameter(agent: AgentProcess) -> None:
    for path, params, field in BAD_QUERIES:
        response = agent.get(path, **params)
        assert response.status_code == 422, (path, params, response.text)
        # one shape for every error, as documented: {"detail": "<field>: <problem>"}
        assert detail(response).startswith(f"query.{field}: "), response.text
    limit = detail(agent.get("/v1/runs", limit=0))
    assert limit == "query.limit: Input should be greater than or equal to 1"


def test_bad_bodies_are_422(agent: AgentProcess, shop: ShopThread) -> None:
    base = {"service": SERVICE, "environment": ENV, "version": "1"}
    bad_deploys = [
        ("service", {"environment": ENV, "version": "1"}),
        ("service", base | {"service": "../etc"}),
        ("settle", base | {"settle": "banana"}),
        ("version", base | {"version": ""}),
        ("unexpected", base | {"unexpected": True}),
    ]
    for field, body in bad_deploys:
        response = agent.post("/v1/deploys", body)
        assert response.status_code == 422, (field, response.text)
        assert field in detail(response), response.text
    response = agent.post("/v1/deploys", None, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    response = agent.post("/v1/runs", {"check": "checkout"})
    assert response.status_code == 422
    assert detail(response) == "environment: Field required"
    assert shop.requests == []
    assert agent.runs() == []


def test_oversized_body_is_413(agent: AgentProcess, shop: ShopThread) -> None:
    body = b'{"service": "shop", "environment": "staging", "version": "' + b"x" * 100 * 1024
    body += b'"}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(100):
            yield b"x" * 1024

    # Credentials or not: the size limit comes first.
    for credentials in (bearer(), {}):
        headers = {"Content-Type": "application/json"} | credentials
        response = agent.http.post("/v1/deploys", content=body, headers=headers)
        assert response.status_code == 413, response.text
        assert detail(response) == "request body over the 65536 byte limit"
        response = agent.http.post("/v1/runs", content=chunks(), headers=headers)
        assert response.status_code == 413, response.text
    assert shop.requests == []
    assert agent.runs() == []
    assert agent.get("/healthz").status_code == 200


def test_unknown_ids_are_404(agent: AgentProcess) -> None:
    cases = {
        "no run 'nope'": agent.get("/v1/runs/nope"),
        "no deploy 'nope'": agent.get("/v1/deploys/nope"),
        "no deploy 'gone'": agent.get("/v1/deploys/gone", wait=0.2),
        "no check named 'nosuch'": agent.post("/v1/runs", {"check": "nosuch", "environment": ENV}),
        "no environment named 'prod'": agent.post(
            "/v1/runs", {"check": "checkout", "environment": "prod"}
        ),
    }
    for message, response in cases.items():
        assert response.status_code == 404, (message, response.text)
        assert message in detail(response)


def test_run_now_returns_the_full_result(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, agent_store: str
) -> None:
    copy_example_checks(tmp_path)
    config = write_config(tmp_path, shop.base_url, scheduler={"enabled": False}, store=agent_store)
    agent = start_agent(config)
    response = agent.post("/v1/runs", {"check": "checkout", "environment": ENV})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["check"], result["environment"], result["phase"]) == ("checkout", ENV, "adhoc")
    assert result["status"] == "passed"
    assert [s["name"] for s in result["steps"]] == CHECKOUT_STEPS
    assert all(s["status"] == "passed" for s in result["steps"])
    assert all(s["requests"] for s in result["steps"])
    assert {r.path for r in shop.requests} >= {"/api/login", "/api/checkout"}

    stored = agent.get(f"/v1/runs/{result['run_id']}")
    assert stored.status_code == 200
    assert stored.json() == result
    (listed,) = agent.runs(phase="adhoc")
    assert listed["run_id"] == result["run_id"]

    shop.set_faults(status=503, path_prefix="/api/checkout")
    failed = agent.post("/v1/runs", {"check": "checkout", "environment": ENV})
    assert failed.status_code == 200, "a failing check is a result, not an API error"
    body = failed.json()
    assert (body["status"], body["failed_step"]) == ("failed", "check out")
    assert body["failure"]["type"] == "http_status"
    run = {"check": "checkout", "env": ENV, "phase": "adhoc"}
    assert agent.metric("synth_check_runs_total", **run, result="failed") == 1
    assert agent.metric("synth_check_failures_total", **run, failure_type="http_status") == 1
    # Listed by status (an unfiltered list would pass any of these).
    assert [r["run_id"] for r in agent.runs(phase="adhoc", status="failed")] == [body["run_id"]]
    assert [r["run_id"] for r in agent.runs(phase="adhoc", status="passed")] == [result["run_id"]]
    assert agent.get("/v1/runs", status="maybe").status_code == 422


def test_the_document_matches_the_wire(agent: AgentProcess) -> None:
    """Unique operationIds (one function serves Argo Rollouts' GET and POST), one error
    shape documented and sent, every error status documented, Allow naming every method."""
    document = agent.get("/openapi.json").json()
    operations = [
        (path, method, op)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if method in HTTP_METHODS
    ]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids)), ids
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert schemas["Error"]["properties"]["detail"]["type"] == "string"
    for path, method, op in operations:
        if path.startswith("/v1/") and method == "post":
            assert {"400", "401", "413", "422"} <= set(op["responses"]), (path, method)
    for path in ("/v1/runs/{run_id}", "/v1/deploys/{deploy_id}"):
        assert "404" in document["paths"][path]["get"]["responses"], path
    # a request-validation error is sent in the documented shape
    invalid = agent.get("/v1/runs", limit=0)
    assert isinstance(detail(invalid), str)
    # 405s list every method of the path (Starlette named only the first route's)
    for path, allowed in (("/v1/runs", "GET, POST"), ("/v1/baselines", "GET, POST")):
        response = agent.http.request("DELETE", path, headers=bearer())
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == allowed, path
        assert isinstance(detail(response), str)
