"""Flagger webhooks → a verification gate.

Flagger POSTs `{name, namespace, phase, checksum, metadata}` for `pre-rollout`, `rollout`,
`post-rollout` and the `confirm-*` gates, and advances only on HTTP 200. synth runs the
service's checks, waits up to `hooks.flagger.wait` for the verdict and answers 200 (pass),
412 (fail) or 503 (error, or no verdict in time), with the verdict as the body.

Flagger sends no custom headers, so the token travels in the webhook's metadata
(`metadata.token`); a bearer header is accepted too (e.g. through a proxy). Event webhooks
(metadata with `eventType`) are acknowledged and run nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from synth.agent.adapters.common import (
    Credentials,
    deploy_event,
    gate,
    json_body_doc,
    not_configured,
    parse_json,
    parse_model,
    unauthorized,
)
from synth.agent.adapters.rejections import route_class
from synth.config import GateHook

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort

STATUS = {"pass": 200, "fail": 412, "error": 503}


class FlaggerPayload(BaseModel):
    """Flagger's CanaryWebhookPayload."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=253)
    namespace: str = Field(min_length=1, max_length=253)
    phase: str = Field(min_length=1, max_length=64)
    checksum: str | None = Field(default=None, max_length=200)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=64)


def router(agent: DeployPort) -> APIRouter:
    """POST /v1/hooks/flagger; `hooks.flagger` is read per request, so a reload applies."""
    api = APIRouter(tags=["hooks"], route_class=route_class(agent))

    @api.post("/v1/hooks/flagger", openapi_extra=json_body_doc(FlaggerPayload))
    async def flagger(request: Request) -> JSONResponse:
        """Flagger webhook gate: 200 when the checks pass, 412 when they fail, 503 on error."""
        hook: GateHook | None = agent.settings.hooks.flagger
        if hook is None:
            raise not_configured("flagger")
        credentials = Credentials.for_hook(hook, agent)
        body = await request.body()
        if not credentials.check_header(request.headers):
            data = _json_or_none(body)
            metadata = data.get("metadata") if isinstance(data, dict) else None
            token = metadata.get("token") if isinstance(metadata, dict) else None
            if not isinstance(token, str) or not credentials.token_ok(token):
                raise unauthorized(
                    "missing or invalid token: set metadata.token on the Canary webhook"
                )
        payload = parse_model(FlaggerPayload, parse_json(body))
        meta = payload.metadata
        if "eventType" in meta:
            return JSONResponse({"ok": True, "event": meta["eventType"]})
        canary = f"{payload.namespace}/{payload.name}"
        target = hook.targets.get(canary) or hook.targets.get(payload.name)
        service = meta.get("service") or (target.service if target else None)
        environment = meta.get("environment") or (target.environment if target else None)
        if service is None or environment is None:
            raise HTTPException(
                422,
                f"canary {canary!r} is not mapped in hooks.flagger.targets and its webhook "
                "metadata names no service and environment",
            )
        tags = [t for t in meta.get("tags", "").split(",") if t.strip()]
        event = deploy_event(
            agent,
            service=service,
            environment=environment,
            version=payload.checksum or meta.get("version") or "unknown",
            labels={"source": "flagger", "canary": canary[:200], "phase": payload.phase},
            tags=[t.strip() for t in tags],
        )
        answer = await gate(agent, event, hook.wait)
        return JSONResponse(answer, status_code=STATUS.get(answer["verdict"], 503))

    return api


def _json_or_none(body: bytes) -> Any:
    try:
        return parse_json(body)
    except HTTPException:
        return None
