"""Fuzz the agent's HTTP API from its own OpenAPI document (schemathesis, stateless):
every operation gets generated valid and invalid requests, authenticated with the test
token, against a real `synth agent`. No request may get a 5xx or crash the agent, and
every 4xx says why in a JSON `detail`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from agent_harness import (  # noqa: F401
    AgentProcess,
    StartAgent,
    bearer,
    copy_example_checks,
    shop_fixture,
    start_agent_fixture,
    write_config,
)
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from synth.demo import ShopThread

# Per operation and generation mode; 10 operations keep the whole run well under a minute.
EXAMPLES = 25
REQUEST_TIMEOUT_S = 10.0


@pytest.fixture
def agent(tmp_path: Path, shop: ShopThread, start_agent: StartAgent) -> AgentProcess:
    """The example checks, no schedule and short deploy limits: generated deploy events
    that do name a configured service must not hold the agent for minutes."""
    copy_example_checks(tmp_path)
    config = write_config(
        tmp_path,
        shop.base_url,
        scheduler={"enabled": False},
        deploys={"max_settle": "1s", "max_window": "1s"},
    )
    return start_agent(config)


def check_response(case: Any, agent: AgentProcess) -> None:
    response = case.call(headers=bearer(), timeout=REQUEST_TIMEOUT_S)
    where = f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code < 500, where
    if response.status_code >= 400:
        content_type = response.headers.get("content-type", [""])[0]  # header -> list of values
        assert content_type.startswith("application/json"), where
        detail = response.json().get("detail")
        assert detail, where
        if isinstance(detail, list):  # validation errors: each names the field and the problem
            assert all(problem.get("loc") and problem.get("msg") for problem in detail), where
    assert agent.process.poll() is None, f"the agent died after {where}"


def fuzz(operation: Any, mode: GenerationMode, agent: AgentProcess) -> int:
    """Run EXAMPLES generated requests of `mode` against `operation`; how many ran."""
    ran = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal ran
        ran += 1
        check_response(case, agent)

    if mode is GenerationMode.POSITIVE:
        run()
    else:
        # An input without constraints (a free-form path id) cannot be made invalid.
        with contextlib.suppress(Unsatisfiable):
            run()
    return ran


def test_fuzzed_requests_get_no_5xx_and_clear_4xx(agent: AgentProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{agent.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/deploys", "GET /v1/deploys/{deploy_id}", "POST /v1/runs"} <= labels, labels
    tried: dict[str, int] = {}
    for operation in operations:
        raw = operation.definition.raw
        has_inputs = bool(raw.get("parameters") or raw.get("requestBody"))
        # Without parameters or a body there is nothing to make invalid.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if has_inputs else [])
        for mode in modes:
            tried[f"{operation.label} {mode.value}"] = fuzz(operation, mode, agent)
    assert agent.get("/healthz").status_code == 200
    for label in ("GET /v1/runs", "POST /v1/runs", "POST /v1/deploys"):
        assert tried[f"{label} negative"] >= EXAMPLES // 2, tried
