"""The agent API under hostile and broken input, against a real `synth agent` with every
CD-tool hook configured: malformed credentials, bodies nested to overflow a parser,
values no store can keep, replayed or re-targeted signatures, deploys nobody configured.
Every one gets a 4xx that says why — never a 5xx — and leaves nothing behind."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from agent_harness import (
    ENV,
    SERVICE,
    AgentProcess,
    StartAgent,
    bearer,
    signature,
    wait_for,
)
from hooks_support import ARGOCD_APP, ARGOCD_TOKEN, FLAGGER_CANARY, start_hooks_agent

from synth.demo import ShopThread

JSON = {"Content-Type": "application/json"}
DEPTH = 30_000  # under the 64 KiB body limit, far past Python's recursion limit


@pytest.fixture
def agent(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> AgentProcess:
    return start_hooks_agent(tmp_path, shop, start_agent)


def refused(response: httpx2.Response, status: int, *words: str) -> str:
    """Assert `response` is `status` with a JSON string `detail` holding `words`."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    assert isinstance(detail, str), response.text
    assert detail, response.text
    for word in words:
        assert word in detail, detail
    return detail


def deploy(version: str = "1.2.3", **fields: Any) -> dict[str, Any]:
    return {"service": SERVICE, "environment": ENV, "version": version} | fields


def deep(prefix: bytes, suffix: bytes = b"") -> bytes:
    body = prefix + b"[" * DEPTH + b"]" * DEPTH + suffix
    assert len(body) < 64 * 1024
    return body


# -- 9: nothing answers 500 before authentication ----------------------------------------------


def test_malformed_credentials_get_401_not_500(agent: AgentProcess) -> None:
    body = json.dumps(deploy()).encode()
    now = int(time.time())
    headers: dict[str, list[tuple[bytes, bytes]]] = {
        "400-digit timestamp": [(b"x-synth-signature", b"t=" + b"9" * 400 + b",v2=00")],
        "non-ASCII digest": [
            (b"x-synth-signature", f"t={now},v2=".encode() + "\xe9".encode("latin-1") * 64)
        ],
        "non-ASCII v1": [(b"x-synth-signature", f"t={now},v1=".encode() + b"\xff\xfe")],
        "non-ASCII bearer": [(b"authorization", b"Bearer \xe9t\xe9")],
    }
    for reason, raw in headers.items():
        response = agent.http.post(
            "/v1/deploys", content=body, headers=[(b"content-type", b"application/json"), *raw]
        )
        assert response.status_code == 401, (reason, response.text)
        assert response.json()["detail"], reason
    assert agent.runs() == []


def test_a_deeply_nested_body_is_refused_before_it_is_parsed(agent: AgentProcess) -> None:
    namespace, name = FLAGGER_CANARY
    flagger = deep(
        f'{{"name":"{name}","namespace":"{namespace}","phase":"Progressing","x":'.encode(), b"}"
    )
    # Flagger's token travels in the body, so its body is read (depth-bounded) first.
    refused(agent.http.post("/v1/hooks/flagger", content=flagger, headers=JSON), 401, "token")
    argocd = deep(b'{"app":"x","labels":', b"}")
    refused(
        agent.http.post("/v1/hooks/argocd", content=argocd, headers=JSON | bearer(ARGOCD_TOKEN)),
        400,
        "nested",
    )
    for path in ("/v1/deploys", "/v1/runs", "/v1/baselines"):
        response = agent.http.post(path, content=deep(b""), headers=JSON | bearer())
        refused(response, 400, "nested 30000 levels deep")
    assert agent.get("/healthz").status_code == 200
    assert agent.runs() == []


# -- 10: values no store or client can keep -----------------------------------------------------


EVENT = b'{"service":"shop","environment":"staging",'
UNKEEPABLE = {  # the rest of a deploy event, and a word the 422 must say
    "NaN": (b'"version":"1","settle":NaN}', "NaN"),
    "Infinity": (b'"version":"1","window":Infinity}', "Infinity"),
    "-Infinity": (b'"version":"1","window":-Infinity}', "Infinity"),
    "1e999999": (b'"version":"1","settle":1e999999}', "out of range"),
    "huge int": (b'"version":"1","settle":' + b"9" * 5000 + b"}", "out of range"),
    "lone surrogate": (b'"version":"1","labels":{"a":"\\ud800"}}', "surrogate"),
    "NUL": (b'"version":"1\\u0000"}', "NUL"),
    "NUL in a key": (b'"version":"1","labels":{"\\u0000":"a"}}', "NUL"),
}


@pytest.mark.parametrize("case", list(UNKEEPABLE))
def test_values_no_store_can_keep_get_422_and_a_clean_retry_works(
    agent: AgentProcess, case: str
) -> None:
    rest, word = UNKEEPABLE[case]
    with_id = EVENT + rest[:-1] + b',"id":"retry-me"}'
    refused(agent.http.post("/v1/deploys", content=with_id, headers=JSON | bearer()), 422, word)
    # what was refused is not kept anywhere: the same id, clean, is a new deploy
    clean = agent.post("/v1/deploys", deploy(id="retry-me"))
    assert clean.status_code == 202, clean.text
    assert agent.wait_deploy(clean.json()["id"])["status"] == "passed"


def test_every_route_and_hook_reads_bodies_the_same_strict_way(agent: AgentProcess) -> None:
    nan = b'{"check":"checkout","environment":"staging","x":NaN}'
    refused(agent.http.post("/v1/runs", content=nan, headers=JSON | bearer()), 422, "NaN")
    surrogate = b'{"fragments":[{"check":"\\udfff"}]}'
    refused(
        agent.http.post("/v1/baselines", content=surrogate, headers=JSON | bearer()),
        422,
        "surrogate",
    )
    argocd = json.dumps({"app": ARGOCD_APP, "revision": "abc"}).encode()[:-1] + b',"x":NaN}'
    refused(
        agent.http.post("/v1/hooks/argocd", content=argocd, headers=JSON | bearer(ARGOCD_TOKEN)),
        422,
        "NaN",
    )
    assert agent.runs() == []


# -- 12: a signature is bound to its request and used once ----------------------------------------


def test_a_signature_is_accepted_once_and_only_for_its_method_and_path(
    agent: AgentProcess, shop: ShopThread
) -> None:
    body = json.dumps({"check": "browse", "environment": ENV}).encode()
    headers = JSON | {"X-Synth-Signature": signature(body, path="/v1/runs")}
    # captured on POST /v1/runs, replayed on another endpoint: refused
    for path in ("/v1/reload", "/v1/deploys", "/v1/baselines"):
        refused(agent.http.post(path, content=body, headers=headers), 401, "does not match")
    assert agent.http.post("/v1/runs", content=body, headers=headers).status_code == 200
    # the same request replayed inside the window: refused
    refused(agent.http.post("/v1/runs", content=body, headers=headers), 401, "already used")
    assert len(agent.runs()) == 1
    # the documented v1 (body only) form says what changed
    v1 = JSON | {"X-Synth-Signature": f"t={int(time.time())},v1=" + "0" * 64}
    refused(agent.http.post("/v1/runs", content=body, headers=v1), 401, "v2")


# -- 5: deploys nobody configured make no series ---------------------------------------------------


def test_a_deploy_no_check_covers_gets_404_and_no_series(agent: AgentProcess) -> None:
    for service in ("nosuch-1", "nosuch-2"):
        refused(
            agent.post("/v1/deploys", deploy(service=service)),
            404,
            f"no configured check covers service {service!r}",
        )
    refused(agent.post("/v1/deploys", deploy(tags=["no-such-tag"])), 404, "no-such-tag")
    refused(agent.post("/v1/deploys", deploy(environment="nowhere")), 404)
    metrics = agent.get("/metrics").text
    assert "nosuch" not in metrics
    assert "nowhere" not in metrics
    assert agent.metric("synth_deploy_verdicts_total", service=SERVICE, env=ENV) == 0
    assert agent.runs() == []


# -- 20: Argo CD multi-source applications; every hook refusal is logged --------------------------


def test_argocd_multi_source_sync_is_verified_and_refusals_are_logged(agent: AgentProcess) -> None:
    auth = JSON | bearer(ARGOCD_TOKEN)
    note = {"app": ARGOCD_APP, "revision": "", "finishedAt": "2026-12-03T10:00:00Z"}
    multi = agent.http.post(
        "/v1/hooks/argocd", json=note | {"revisions": ["", "9f8e7d6", "1a2b3c"]}, headers=auth
    )
    assert multi.status_code == 202, multi.text
    assert multi.json()["version"] == "9f8e7d6"
    assert agent.wait_deploy(multi.json()["id"])["status"] == "passed"
    bare = agent.http.post(
        "/v1/hooks/argocd", json=note | {"finishedAt": "2026-12-03T11:00:00Z"}, headers=auth
    )
    assert bare.status_code == 202, bare.text
    assert bare.json()["version"] == "unknown"
    agent.wait_deploy(bare.json()["id"])

    assert agent.metric("synth_hook_rejections_total", hook="argocd", code="422") == 0
    unmapped = agent.http.post("/v1/hooks/argocd", json=note | {"app": "elsewhere"}, headers=auth)
    refused(unmapped, 422, "elsewhere")
    wait_for(
        lambda: any("argocd hook call refused (422)" in m for m in agent.log_messages()),
        timeout=5,
        what="the refusal in the agent's log",
    )
    assert agent.metric("synth_hook_rejections_total", hook="argocd", code="422") == 1
    assert agent.http.post("/v1/hooks/argocd", json=note).status_code == 401
    assert agent.metric("synth_hook_rejections_total", hook="argocd", code="401") == 1
