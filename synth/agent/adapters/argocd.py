"""Argo CD notifications webhooks → deploy verification.

The notifications controller sends the body its template renders (see
deploy/examples/argocd/) with a bearer token header or basic auth. The Argo CD application
maps to a service and environment through `hooks.argocd.targets`, unless the template names
them itself. Application + revision + finish time is the idempotency key, so the controller
retrying one notification runs nothing new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from synth.agent.adapters.common import (
    Credentials,
    deploy_event,
    json_body_doc,
    not_configured,
    parse_json,
    parse_model,
    submit,
)
from synth.agent.adapters.rejections import route_class
from synth.agent.deploy_pages import deploy_with_pages
from synth.config import ArgoCdHook

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort


UNKNOWN = "unknown"


class ArgoCdNotification(BaseModel):
    """The body of the example `synth-deploy` notification template."""

    model_config = ConfigDict(extra="ignore")

    app: str = Field(min_length=1, max_length=253, description="application name")
    revision: str | None = Field(
        default=None,
        max_length=200,
        description="synced revision; empty for multi-source applications (see revisions)",
    )
    revisions: list[str] | None = Field(
        default=None, max_length=50, description="synced revisions of a multi-source application"
    )
    namespace: str | None = Field(default=None, max_length=253)
    project: str | None = Field(default=None, max_length=253)
    service: str | None = Field(default=None, description="overrides hooks.argocd.targets")
    environment: str | None = Field(default=None, description="overrides hooks.argocd.targets")
    finished_at: str | None = Field(default=None, alias="finishedAt", max_length=64)
    url: str | None = Field(default=None, max_length=2000)

    def synced_revision(self) -> str:
        """`revision`; a multi-source application renders it empty: the first of
        `revisions`, else `unknown` (a 4xx is never retried by Argo CD, so the deploy would
        go unverified)."""
        if self.revision and self.revision.strip():
            return self.revision.strip()
        for revision in self.revisions or ():
            if revision.strip():
                return revision.strip()[:200]
        return UNKNOWN


def router(agent: DeployPort) -> APIRouter:
    """POST /v1/hooks/argocd; `hooks.argocd` is read per request, so a reload applies."""
    api = APIRouter(tags=["hooks"], route_class=route_class(agent))

    @api.post("/v1/hooks/argocd", status_code=202, openapi_extra=json_body_doc(ArgoCdNotification))
    async def argocd(request: Request, response: Response) -> dict[str, Any]:
        """Argo CD notification (bearer token or basic auth)."""
        hook: ArgoCdHook | None = agent.settings.hooks.argocd
        if hook is None:
            raise not_configured("argocd")
        credentials = Credentials.for_hook(hook, agent, hook.basic_auth)
        credentials.require(request.headers)
        note = parse_model(ArgoCdNotification, parse_json(await request.body()))
        target = hook.targets.get(note.app)
        service = note.service or (target.service if target else None)
        environment = note.environment or (target.environment if target else None)
        if service is None or environment is None:
            raise HTTPException(
                422,
                f"application {note.app!r} is not mapped in hooks.argocd.targets "
                "and the notification names no service and environment",
            )
        revision = note.synced_revision()
        labels = {"source": "argocd", "app": note.app}
        if note.project:
            labels["project"] = note.project
        event = deploy_event(
            agent,
            service=service,
            environment=environment,
            version=revision,
            commit=revision if revision != UNKNOWN else None,
            url=note.url,
            labels=labels,
            id=f"argocd:{note.app}:{revision}:{note.finished_at or ''}"[:200],
        )
        record, created = await submit(agent, event)
        if not created:
            response.status_code = 200
        return deploy_with_pages(record, agent.settings.server.public_url)

    return api
