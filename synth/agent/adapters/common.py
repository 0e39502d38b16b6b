"""What every CD-tool adapter shares: credentials, payload parsing, and turning a tool's
event into the agent's `DeployEvent` (submitted, or submitted and awaited for gates).

Adapters authenticate themselves (the tools sign or authenticate in their own ways), so the
API's write guard leaves `/v1/hooks/` to them: no or bad credentials get 401 and nothing
runs; a malformed payload gets a 4xx saying why.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import HTTPException
from pydantic import BaseModel, ValidationError

from synth.agent import json_body
from synth.agent.auth import token_matches
from synth.agent.deploy_pages import failing_with_pages
from synth.agent.deploys import FINISHED, DeployEvent, DeployRefused
from synth.agent.openapi import describe_validation
from synth.config import BasicAuth, SecretRef, TokenHook
from synth.outputs.page_links import deploy_page_url
from synth.store import DeployRecord

if TYPE_CHECKING:
    from synth.agent.adapters.port import DeployPort

M = TypeVar("M", bound=BaseModel)


def reveal(ref: SecretRef) -> str:
    """The secret's value (resolved once, when the API is built)."""
    return ref.resolve().get_secret_value()


@dataclass(frozen=True, slots=True)
class Credentials:
    """Bearer tokens and optional basic credentials one hook accepts."""

    tokens: tuple[str, ...]
    basic: tuple[str, str] | None = None

    @classmethod
    def for_hook(
        cls, hook: TokenHook, agent: DeployPort, basic: BasicAuth | None = None
    ) -> Credentials:
        """The hook's own tokens, else the agent's `server.tokens`."""
        tokens = tuple(reveal(t) for t in hook.tokens) or tuple(agent.api_tokens)
        pair = (basic.username, reveal(basic.password)) if basic is not None else None
        return cls(tokens, pair)

    def token_ok(self, token: str) -> bool:
        return bool(token) and token_matches(token, self.tokens)

    def check_header(self, headers: Mapping[str, str]) -> bool:
        """True when the Authorization header is valid; False when there is none; 401 when
        it is present but wrong."""
        authorization = headers.get("authorization", "")
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and self.token_ok(value.strip()):
            return True
        if scheme.lower() == "basic" and self.basic is not None:
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
                user, _, password = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise unauthorized("malformed basic credentials") from None
            if hmac.compare_digest(user.encode(), self.basic[0].encode()) and hmac.compare_digest(
                password.encode(), self.basic[1].encode()
            ):
                return True
            raise unauthorized("invalid basic credentials")
        raise unauthorized("invalid credentials")

    def require(self, headers: Mapping[str, str]) -> None:
        if not self.check_header(headers):
            raise unauthorized("missing credentials: send 'Authorization: Bearer <token>'")


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a hook's JSON body (hooks read their bodies themselves,
    so FastAPI cannot see them)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, reason, headers={"WWW-Authenticate": "Bearer"})


def not_configured(tool: str) -> HTTPException:
    return HTTPException(404, f"the {tool} hook is not configured (hooks.{tool})")


def parse_json(body: bytes) -> Any:
    """The body through the API's one strict JSON reader, or 400/422 saying what is wrong
    (bounded depth, so it is safe before authenticating)."""
    try:
        return json_body.load(body)
    except json_body.BadJson as exc:
        raise HTTPException(exc.status, exc.reason) from None


def parse_model(model: type[M], data: Any) -> M:
    """`data` validated into `model`, or 422 naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """`field: problem; …`, as the API's own validation errors read."""
    return describe_validation(exc.errors())


def deploy_event(agent: DeployPort, **fields: Any) -> DeployEvent:
    """A DeployEvent for a known environment, or 422 saying what is wrong."""
    try:
        event = DeployEvent.model_validate(fields)
    except ValidationError as exc:
        raise HTTPException(422, describe(exc)) from None
    if event.environment not in agent.settings.environments:
        raise HTTPException(404, f"no environment named {event.environment!r} on this agent")
    return event


def accepting(agent: DeployPort) -> None:
    if agent.stopping:
        raise HTTPException(503, "agent is stopping")


async def submit(agent: DeployPort, event: DeployEvent) -> tuple[DeployRecord, bool]:
    """Start verifying; (record, created) as for `POST /v1/deploys`."""
    accepting(agent)
    try:
        return await agent.submit_deploy(event)
    except DeployRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None


async def gate(agent: DeployPort, event: DeployEvent, wait_s: float) -> dict[str, Any]:
    """Verify and wait up to `wait_s` for the verdict: the gate answer CD tools evaluate."""
    record, _ = await submit(agent, event)
    finished = await agent.wait_deploy(record.id, wait_s)
    return gate_answer(finished or record, wait_s, agent.settings.server.public_url)


def gate_answer(
    record: DeployRecord, wait_s: float, public_url: str | None = None
) -> dict[str, Any]:
    """`{"verdict", "passed", ...}`; a verification still running counts as `error`.

    With `public_url`, `links.page` and each failing run's `page_url` are the pages a
    person opens from the pipeline's log."""
    verdict: Mapping[str, Any] = record.verdict or {}
    if record.status in FINISHED and verdict:
        result = str(verdict.get("result", "error"))
        reason = str(verdict.get("reason", ""))
    else:
        result = "error"
        reason = f"verification still {record.status.value} after {wait_s:g}s"
    failing: Sequence[Any] = verdict.get("failing", ())
    return {
        "verdict": result,
        "passed": result == "pass",
        "reason": reason,
        "status": record.status.value,
        "deploy_id": record.id,
        "service": record.service,
        "environment": record.environment,
        "version": record.version,
        "checks": list(verdict.get("checks", ())),
        "failing": failing_with_pages(list(failing), public_url),
        "links": {"deploy": f"/v1/deploys/{record.id}"}
        | ({"page": page} if (page := deploy_page_url(public_url, record.id)) else {}),
    }
