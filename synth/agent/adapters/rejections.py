"""Every refused CD-tool webhook call is logged with its reason and counted
(`synth_hook_rejections_total{hook,code}`): a tool that does not retry a 4xx (Argo CD)
otherwise leaves a deploy silently unverified."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from synth.outputs.metrics import HOOK_REJECTION_CODES

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort

log = logging.getLogger("synth.hooks")


def hook_of(path: str) -> str:
    """`/v1/hooks/argo-rollouts/...` → `argo_rollouts`."""
    parts = path.split("/")
    return parts[3].replace("-", "_") if len(parts) > 3 else "unknown"


def note_rejection(agent: DeployPort, hook: str, status: int, reason: str) -> None:
    """Log and count one refused webhook call."""
    code = str(status) if str(status) in HOOK_REJECTION_CODES else "other"
    agent.hook_rejected(hook, code)
    log.warning(
        "%s hook call refused (%d): %s",
        hook,
        status,
        reason,
        extra={"hook": hook, "status": status, "reason": reason},
    )


def route_class(agent: DeployPort) -> type[APIRoute]:
    """An APIRoute whose refusals (HTTPException, request validation) are noted."""

    class RejectionNotingRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            hook = hook_of(self.path)

            async def noted(request: Request) -> Response:
                try:
                    return await handler(request)
                except HTTPException as exc:
                    note_rejection(agent, hook, exc.status_code, str(exc.detail))
                    raise
                except RequestValidationError as exc:
                    reasons = "; ".join(str(e.get("msg", e)) for e in exc.errors())
                    note_rejection(agent, hook, 422, reasons)
                    raise

            return noted

    return RejectionNotingRoute
