"""`GET /v1/runs/{run_id}/artifacts/{name}` over a real `synth agent` whose store holds a
run with artifacts (written by the store before the agent starts, as the agent's own
writer would): the bytes with their content type and safe headers, links from the run
JSON, read authentication, strict names (404 with the reason), unknown ones 404."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from agent_harness import (
    AgentProcess,
    StartAgent,
    bearer,
    copy_example_checks,
    store_url,
    wait_for,
    write_config,
)
from postgres import PostgresServer, postgres_server  # noqa: F401

from synth.demo import ShopThread
from synth.model import Artifact, Failure, FailureType, Phase, RunResult, Status, StepResult
from synth.store import Store

RUN_ID = "0f3c2a7e9b5d4c1aa8e6f2b3c4d5e6f7"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
TRACE = b"PK\x03\x04" + bytes(range(255, -1, -1))
CONSOLE = b"TypeError: cart is undefined\n"
PAGE = b"<script>alert(document.cookie)</script>"
FILES = (
    Artifact("open-shop-screenshot.png", "image/png", PNG, "open the shop"),
    Artifact("trace.zip", "application/zip", TRACE, "open the shop"),
    Artifact("console.log", "text/plain", CONSOLE),
    Artifact("page.html", "text/html", PAGE),
)
BAD_NAMES = (".hidden", "...", "a" * 101, "sp ace", "semi;colon", "-dash-first", 'quo"te')


def seed(url: str) -> None:
    """A failed browser run with its artifacts, saved the way the agent saves runs."""
    failure = Failure(FailureType.ASSERTION, "the cart shows 0 items, expected 1")
    run = RunResult(
        run_id=RUN_ID,
        check="browse",
        service="shop",
        environment="staging",
        phase=Phase.SCHEDULED,
        location="local",
        status=Status.FAILED,
        started_at=datetime.now(UTC),
        duration_s=1.5,
        steps=(StepResult("open the shop", Status.FAILED, 1.5, failure=failure),),
        failure=failure,
        failed_step="open the shop",
        artifacts=FILES,
    )

    async def save() -> None:
        store = await Store.open(url)
        try:
            await store.save_run(run)
        finally:
            await store.close()

    asyncio.run(save())


def start(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, url: str, **server: object
) -> AgentProcess:
    seed(url)
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path, shop.base_url, scheduler={"enabled": False}, server=server, store=url
    )
    return start_agent(config)


def test_artifacts_are_served_with_their_type_and_linked_from_the_run(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, agent_store: str
) -> None:
    agent = start(tmp_path, shop, start_agent, agent_store)

    run = agent.get(f"/v1/runs/{RUN_ID}")
    assert run.status_code == 200, run.text
    base = f"/v1/runs/{RUN_ID}/artifacts"
    assert run.json()["artifacts"] == sorted(
        (
            {
                "name": f.name,
                "content_type": f.content_type,
                "size": f.size,
                "step": f.step,
                "url": f"{base}/{f.name}",
            }
            for f in FILES
        ),
        key=lambda item: str(item["name"]),
    )

    expected = {
        "open-shop-screenshot.png": ("image/png", "inline", PNG),
        "trace.zip": ("application/zip", "attachment", TRACE),
        "console.log": ("text/plain; charset=utf-8", "inline", CONSOLE),
        # Served as a download, never as a page in the API's origin.
        "page.html": ("application/octet-stream", "attachment", PAGE),
    }
    for name, (content_type, disposition, data) in expected.items():
        response = agent.get(f"{base}/{name}")
        assert response.status_code == 200, (name, response.text)
        assert response.content == data, name
        assert response.headers["content-type"] == content_type, name
        assert response.headers["content-disposition"] == f'{disposition}; filename="{name}"'
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"].startswith("private, max-age=")

    for name in BAD_NAMES:
        response = agent.get(f"{base}/{name}")
        assert response.status_code == 404, (name, response.text)
        assert "names match" in response.json()["detail"], name
    for path in (
        f"{base}/..%2F..%2Fetc%2Fpasswd",
        f"{base}/%2e%2e",
        f"/v1/runs/{RUN_ID}/artifacts/",
    ):
        assert agent.get(path).status_code == 404, path
    unknown = {
        f"{base}/missing.png": "no artifact 'missing.png'",
        "/v1/runs/no-such-run/artifacts/trace.zip": "of run 'no-such-run'",
    }
    for path, reason in unknown.items():
        response = agent.get(path)
        assert response.status_code == 404, (path, response.text)
        assert reason in response.json()["detail"], path


def test_artifacts_take_read_auth_and_link_under_the_public_url(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(
        tmp_path,
        shop,
        start_agent,
        store_url(tmp_path),
        read_auth=True,
        public_url="https://synth.example/agent/",
    )
    path = f"/v1/runs/{RUN_ID}/artifacts/trace.zip"

    for probe in (path, f"/v1/runs/{RUN_ID}/artifacts/...", "/v1/runs/x/artifacts/nope.png"):
        refused = agent.http.get(probe)
        assert refused.status_code == 401, (probe, refused.text)  # authenticated first
        assert refused.json()["detail"].startswith("missing credentials")
        assert agent.http.get(probe, headers=bearer("wrong-token-0123456789")).status_code == 401

    served = agent.http.get(path, headers=bearer())
    assert served.status_code == 200, served.text
    assert served.content == TRACE
    run = agent.http.get(f"/v1/runs/{RUN_ID}", headers=bearer())
    assert run.status_code == 200, run.text
    urls = {a["name"]: a["url"] for a in run.json()["artifacts"]}
    assert urls["trace.zip"] == f"https://synth.example/agent{path}"


def test_the_artifact_route_is_documented(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    agent = start(tmp_path, shop, start_agent, store_url(tmp_path))
    document = agent.get("/openapi.json").json()
    operation = document["paths"]["/v1/runs/{run_id}/artifacts/{name}"]["get"]
    assert {"200", "401", "404", "503"} <= set(operation["responses"])
    assert {"image/png", "text/plain", "application/zip", "application/octet-stream"} <= set(
        operation["responses"]["200"]["content"]
    )
    (name,) = [p for p in operation["parameters"] if p["name"] == "name"]
    assert name["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, to stop and start."""
    server = PostgresServer.create()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


def test_artifacts_are_503_while_the_store_is_down(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent, private_postgres: PostgresServer
) -> None:
    agent = start(tmp_path, shop, start_agent, private_postgres.create_database())
    path = f"/v1/runs/{RUN_ID}/artifacts/console.log"
    assert agent.get(path).content == CONSOLE

    private_postgres.stop()
    down = agent.get(path)
    assert down.status_code == 503, down.text
    assert "store unavailable" in down.json()["detail"]
    assert agent.get(f"/v1/runs/{RUN_ID}").status_code == 503

    private_postgres.start()  # same port, same data
    wait_for(lambda: agent.get("/readyz").status_code == 200, timeout=10, what="/readyz 200")
    assert agent.get(path).content == CONSOLE
