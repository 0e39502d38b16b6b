"""Authenticating writes to the agent: bearer tokens, or an HMAC-SHA256 signature of the
body with a timestamp inside a replay window.

Signature header (Stripe-style), computed by `synth trigger` and CD tools:
    X-Synth-Signature: t=<unix seconds>,v1=<hex hmac_sha256(secret, "<t>." + body)>
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SIGNATURE_HEADER = "x-synth-signature"


class AuthError(Exception):
    """The request is not authenticated; the message says why (never echoing secrets)."""


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Checks a request's credentials against the configured tokens and HMAC secret."""

    tokens: Sequence[str]
    hmac_secret: str | None
    replay_window_s: float

    @property
    def configured(self) -> bool:
        return bool(self.tokens) or self.hmac_secret is not None

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
        """Return how the request authenticated ("bearer" or "hmac"), or raise AuthError."""
        if not self.configured:
            raise AuthError("no credentials configured on this agent (server.tokens)")
        authorization = headers.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthError("Authorization must be 'Bearer <token>'")
            if any(hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens):
                return "bearer"
            raise AuthError("invalid bearer token")
        signature = headers.get(SIGNATURE_HEADER)
        if signature:
            self._verify_signature(signature, body, time.time() if now is None else now)
            return "hmac"
        raise AuthError(
            f"missing credentials: send 'Authorization: Bearer <token>' or {SIGNATURE_HEADER}"
        )

    def _verify_signature(self, header: str, body: bytes, now: float) -> None:
        if self.hmac_secret is None:
            raise AuthError("signatures are not enabled on this agent (server.hmac_secret)")
        fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
        try:
            timestamp = int(fields.get("t", ""))
        except ValueError:
            raise AuthError(f"{SIGNATURE_HEADER} needs t=<unix seconds>") from None
        if abs(now - timestamp) > self.replay_window_s:
            raise AuthError(
                f"signature timestamp outside the {self.replay_window_s:g}s replay window"
            )
        expected = sign(self.hmac_secret, body, timestamp)
        if not hmac.compare_digest(f"t={timestamp},v1={fields.get('v1', '')}", expected):
            raise AuthError("signature does not match the body")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for `body` at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


TOKEN_ENV = "SYNTH_TOKEN"
HMAC_ENV = "SYNTH_HMAC_SECRET"


def credentials_from_env(body: bytes) -> dict[str, str]:
    """Headers authenticating a write to the agent API from a client's environment:
    a bearer `$SYNTH_TOKEN`, else an `X-Synth-Signature` of `body` with
    `$SYNTH_HMAC_SECRET`, else none."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"Authorization": f"Bearer {token}"}
    secret = os.environ.get(HMAC_ENV)
    if secret:
        return {"X-Synth-Signature": sign(secret, body, int(time.time()))}
    return {}
