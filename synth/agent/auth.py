"""Authenticating writes to the agent: bearer tokens, or an HMAC-SHA256 signature of the
request with a timestamp inside a replay window, each signature accepted once.

Signature header, computed by `synth trigger`, the baseline client and CD tools:
    X-Synth-Signature: t=<unix seconds>,v2=<hex hmac_sha256(secret, S)>
    S = "<t>.<METHOD>.<target>." + body
where <target> is the API path (`/v1/deploys`), with `?<query>` when there is one. Binding the
method and path means a signature captured on one endpoint is refused on every other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from synth.errors import SynthError

SIGNATURE_HEADER = "x-synth-signature"
READ_METHODS = frozenset({"GET", "HEAD"})
SCHEME = "v2"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class AuthError(SynthError):
    """The request is not authenticated; the message says why (never echoing secrets)."""


class ReplayCache:
    """Signatures already accepted, each kept until its timestamp leaves the window.

    Only valid signatures enter, so only a holder of the secret can fill it; past
    `capacity` live entries new signatures are refused rather than an entry forgotten.
    Agents sharing a store each keep their own: a replay to another replica inside the
    window is refused only by the method/path binding and the timestamp."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def admit(self, digest: str, expires_at: float, now: float) -> None:
        """Remember `digest`, or AuthError when it was seen (or the cache is full)."""
        while self._heap and self._heap[0][0] < now:
            _, old = heapq.heappop(self._heap)
            if self._expiry.get(old, now) < now:
                del self._expiry[old]
        if digest in self._expiry:
            raise AuthError("signature already used: sign each request afresh")
        if len(self._expiry) >= self._capacity:
            raise AuthError("too many signed requests inside the replay window; retry later")
        self._expiry[digest] = expires_at
        heapq.heappush(self._heap, (expires_at, digest))

    def __len__(self) -> int:
        return len(self._expiry)


@dataclass(frozen=True, slots=True)
class Authenticator:
    """Checks a request's credentials against the configured tokens and HMAC secret."""

    tokens: Sequence[str]
    hmac_secret: str | None
    replay_window_s: float
    seen: ReplayCache = field(default_factory=ReplayCache, compare=False)
    metrics_tokens: Sequence[str] = ()

    @property
    def configured(self) -> bool:
        return bool(self.tokens) or self.hmac_secret is not None

    def verify(
        self,
        headers: Mapping[str, str],
        body: bytes,
        *,
        method: str = "POST",
        target: str = "/",
        now: float | None = None,
    ) -> str:
        """Return how the request authenticated ("bearer" or "hmac"), or raise AuthError."""
        if not self.configured:
            raise AuthError("no credentials configured on this agent (server.tokens)")
        authorization = headers.get("authorization", "")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "basic" and method in READ_METHODS:
                return self._verify_basic(token)
            if scheme.lower() != "bearer" or not token:
                raise AuthError("Authorization must be 'Bearer <token>'")
            if token_matches(token, self.tokens):
                return "bearer"
            raise AuthError("invalid bearer token")
        signature = headers.get(SIGNATURE_HEADER)
        if signature:
            clock = time.time() if now is None else now
            self._verify_signature(signature, method, target, body, clock)
            return "hmac"
        raise AuthError(
            f"missing credentials: send 'Authorization: Bearer <token>' or {SIGNATURE_HEADER}"
        )

    def _verify_basic(self, credentials: str) -> str:
        """A browser's Basic credentials (any user name, a token as the password), for
        reads only: a browser resends them by itself, so they must not authorize writes."""
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthError("Basic credentials are not base64 of 'user:token'") from None
        _, _, password = decoded.partition(":")
        if password and token_matches(password, self.tokens):
            return "basic"
        raise AuthError("invalid token in Basic credentials (the password is a server token)")

    def verify_metrics(self, headers: Mapping[str, str]) -> None:
        """`/metrics` is open unless `server.metrics_tokens` is set; then it takes a bearer
        token from that list (Prometheus' `authorization.credentials_file`)."""
        if not self.metrics_tokens:
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("/metrics needs 'Authorization: Bearer <server.metrics_tokens>'")
        if not token_matches(token, self.metrics_tokens):
            raise AuthError("invalid metrics token")

    def _verify_signature(
        self, header: str, method: str, target: str, body: bytes, now: float
    ) -> None:
        if self.hmac_secret is None:
            raise AuthError("signatures are not enabled on this agent (server.hmac_secret)")
        fields = dict(part.strip().partition("=")[::2] for part in header.split(","))
        stamp = fields.get("t", "")
        if not _TIMESTAMP.fullmatch(stamp):
            raise AuthError(f"{SIGNATURE_HEADER} needs t=<unix seconds>")
        timestamp = int(stamp)
        if abs(now - timestamp) > self.replay_window_s:
            raise AuthError(
                f"signature timestamp outside the {self.replay_window_s:g}s replay window"
            )
        digest = fields.get(SCHEME, "")
        if not digest and "v1" in fields:
            raise AuthError(
                "v1 signatures (body only) are no longer accepted: send v2, which signs "
                "the method, path, timestamp and body"
            )
        if not _DIGEST.fullmatch(digest):
            raise AuthError(f"{SIGNATURE_HEADER} needs {SCHEME}=<64 lowercase hex digits>")
        expected = _digest(self.hmac_secret, method, target, body, timestamp)
        if not hmac.compare_digest(digest.encode(), expected.encode()):
            raise AuthError("signature does not match the method, path and body")
        self.seen.admit(digest, timestamp + self.replay_window_s, now)


def token_matches(token: str, tokens: Sequence[str]) -> bool:
    """Whether `token` is one of `tokens`, compared in constant time (any characters)."""
    given = token.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(given, t.encode()) for t in tokens)


def _digest(secret: str, method: str, target: str, body: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.{method.upper()}.{target}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, method: str, target: str, body: bytes, timestamp: int) -> str:
    """The signature header value for `METHOD target` with `body` at `timestamp`."""
    return f"t={timestamp},{SCHEME}={_digest(secret, method, target, body, timestamp)}"


def request_target(path: str, query: str = "") -> str:
    """What a signature binds: the path, with `?query` when there is one."""
    return f"{path}?{query}" if query else path


TOKEN_ENV = "SYNTH_TOKEN"
HMAC_ENV = "SYNTH_HMAC_SECRET"


def credentials_from_env(method: str, target: str, body: bytes) -> dict[str, str]:
    """Headers authenticating a write to the agent API from a client's environment:
    a bearer `$SYNTH_TOKEN`, else an `X-Synth-Signature` of the request with
    `$SYNTH_HMAC_SECRET`, else none."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return {"Authorization": f"Bearer {token}"}
    secret = os.environ.get(HMAC_ENV)
    if secret:
        return {"X-Synth-Signature": sign(secret, method, target, body, int(time.time()))}
    return {}
