"""GitHub `deployment_status` webhooks → deploy verification.

GitHub signs the raw body with the webhook secret (`X-Hub-Signature-256: sha256=<hex>`).
Only a status with `state: success` starts a verification; `ping` answers 200, other events
and states are acknowledged and ignored. The delivery id (`X-GitHub-Delivery`, kept on
redelivery) is the idempotency key, so a redelivered event runs nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from synth.agent.adapters.common import (
    deploy_event,
    not_configured,
    parse_json,
    parse_model,
    reveal,
    submit,
    unauthorized,
)
from synth.agent.adapters.rejections import route_class
from synth.agent.deploy_pages import deploy_with_pages
from synth.config import GitHubHook

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort

SIGNATURE_HEADER = "x-hub-signature-256"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Repository(_Loose):
    full_name: str = Field(min_length=1, max_length=200)


class Deployment(_Loose):
    id: int
    sha: str = Field(min_length=1, max_length=100)
    ref: str | None = Field(default=None, max_length=200)
    environment: str = Field(min_length=1, max_length=200)
    url: str | None = None


class DeploymentStatus(_Loose):
    id: int
    state: str
    environment: str | None = Field(default=None, max_length=200)
    target_url: str | None = None
    environment_url: str | None = None
    log_url: str | None = None


class DeploymentStatusEvent(_Loose):
    """The fields synth reads from a `deployment_status` webhook payload."""

    action: str | None = None
    deployment_status: DeploymentStatus
    deployment: Deployment
    repository: Repository


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    """401 unless `header` is `sha256=<hex hmac_sha256(secret, body)>`."""
    if not header:
        raise unauthorized(f"missing {SIGNATURE_HEADER} header")
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.strip().encode(), expected.encode()):
        raise unauthorized(f"{SIGNATURE_HEADER} does not match the body")


def router(agent: DeployPort) -> APIRouter:
    """POST /v1/hooks/github; `hooks.github` is read per request, so a reload applies."""
    api = APIRouter(tags=["hooks"], route_class=route_class(agent))

    @api.post("/v1/hooks/github", status_code=202)
    async def github(request: Request, response: Response) -> dict[str, Any]:
        """GitHub `deployment_status` webhook (signed with `X-Hub-Signature-256`)."""
        hook: GitHubHook | None = agent.settings.hooks.github
        if hook is None:
            raise not_configured("github")
        body = await request.body()
        verify_signature(reveal(hook.secret), body, request.headers.get(SIGNATURE_HEADER))
        kind = request.headers.get("x-github-event", "")
        if kind == "ping":
            response.status_code = 200
            return {"ok": True, "event": "ping"}
        if kind != "deployment_status":
            response.status_code = 200
            return {"ignored": True, "reason": f"event {kind or '(none)'!r} is not handled"}
        delivery = request.headers.get("x-github-delivery", "").strip()
        if not delivery:
            raise HTTPException(400, "missing X-GitHub-Delivery header")
        payload = parse_model(DeploymentStatusEvent, parse_json(body))
        status = payload.deployment_status
        if status.state != "success":
            response.status_code = 200
            return {"ignored": True, "reason": f"deployment state {status.state!r} is not success"}
        repo = payload.repository.full_name
        service = hook.services.get(repo)
        if service is None:
            raise HTTPException(422, f"repository {repo!r} is not mapped in hooks.github.services")
        gh_env = status.environment or payload.deployment.environment
        event = deploy_event(
            agent,
            service=service,
            environment=hook.environments.get(gh_env, gh_env),
            version=payload.deployment.sha,
            commit=payload.deployment.sha,
            url=status.target_url or status.log_url or status.environment_url,
            labels={"source": "github", "repository": repo, "github_environment": gh_env}
            | ({"ref": payload.deployment.ref} if payload.deployment.ref else {}),
            id=f"github:{delivery[:150]}",
        )
        record, created = await submit(agent, event)
        if not created:
            response.status_code = 200
        return deploy_with_pages(record, agent.settings.server.public_url)

    return api
