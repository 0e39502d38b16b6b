"""Argo Rollouts `web` metric provider → a verification gate.

An AnalysisTemplate's web metric calls `GET` (query parameters) or `POST` (JSON body)
`/v1/hooks/argo-rollouts` with a bearer token header. synth runs the service's checks, waits
up to `hooks.argo_rollouts.wait` and answers 200 with `{"verdict", "passed", ...}` for the
template to evaluate (`successCondition: result.passed == true`); a verification that did
not finish in time answers `verdict: error`. Only bad requests and credentials get 4xx, so
Argo Rollouts counts an unreachable or misconfigured synth as a measurement error, not a
failed canary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from synth.agent.adapters.common import (
    Credentials,
    deploy_event,
    gate,
    not_configured,
    parse_json,
    parse_model,
)
from synth.agent.adapters.rejections import route_class
from synth.agent.deploys import NAME_PATTERN
from synth.config import GateHook

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort


class MeasurementRequest(BaseModel):
    """What one measurement asks synth to verify."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    service: str | None = None
    environment: str | None = Field(default=None, alias="env")
    rollout: str | None = Field(default=None, max_length=253, description="targets key")
    version: str = Field(default="unknown", min_length=1, max_length=200)
    tags: list[str] | str = Field(default_factory=list)

    def tag_list(self) -> list[str]:
        raw = self.tags.split(",") if isinstance(self.tags, str) else self.tags
        return [t.strip() for t in raw if t.strip()]


# Read from the query string (or, for POST, a JSON body with the same fields).
QUERY_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "description": text, "schema": schema}
    for name, text, schema in (
        ("service", "synth service (with env)", {"type": "string", "pattern": NAME_PATTERN}),
        ("env", "synth environment (with service)", {"type": "string", "pattern": NAME_PATTERN}),
        ("rollout", "a key of hooks.argo_rollouts.targets", {"type": "string", "maxLength": 253}),
        ("version", "the version rolled out", {"type": "string", "maxLength": 200}),
        ("tags", "comma-separated: only checks with one of these tags", {"type": "string"}),
    )
]


def router(agent: DeployPort) -> APIRouter:
    """GET and POST /v1/hooks/argo-rollouts; `hooks.argo_rollouts` is read per request,
    so a reload applies."""
    api = APIRouter(tags=["hooks"], route_class=route_class(agent))

    @api.api_route(
        "/v1/hooks/argo-rollouts",
        methods=["GET", "POST"],
        openapi_extra={"parameters": QUERY_PARAMETERS},
    )
    async def argo_rollouts(request: Request) -> dict[str, Any]:
        """Argo Rollouts web metric: the verdict as JSON (`result.passed == true`)."""
        hook: GateHook | None = agent.settings.hooks.argo_rollouts
        if hook is None:
            raise not_configured("argo_rollouts")
        credentials = Credentials.for_hook(hook, agent)
        credentials.require(request.headers)
        if request.method == "GET":
            data: Any = dict(request.query_params)
        else:
            body = await request.body()
            data = parse_json(body) if body.strip() else dict(request.query_params)
        measurement = parse_model(MeasurementRequest, data)
        target = hook.targets.get(measurement.rollout or "")
        service = measurement.service or (target.service if target else None)
        environment = measurement.environment or (target.environment if target else None)
        if service is None or environment is None:
            raise HTTPException(
                404,
                "no target: name service and environment, or a rollout mapped in "
                "hooks.argo_rollouts",
            )
        event = deploy_event(
            agent,
            service=service,
            environment=environment,
            version=measurement.version,
            labels={"source": "argo-rollouts"}
            | ({"rollout": measurement.rollout} if measurement.rollout else {}),
            tags=measurement.tag_list(),
        )
        return await gate(agent, event, hook.wait)

    return api
