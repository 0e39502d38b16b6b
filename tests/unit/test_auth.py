"""Authenticator: bearer tokens and HMAC signatures bound to method, path, timestamp and
body, each accepted once inside the replay window."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from synth.agent.auth import SIGNATURE_HEADER, Authenticator, AuthError, ReplayCache, sign

TOKEN = "tok-0123456789abcdef"
SECRET = "hmac-secret-fedcba9876543210"
BODY = b'{"service":"shop","environment":"staging","version":"1.2.3"}'
NOW = 1_700_000_000.0
WINDOW = 300.0
PATH = "/v1/deploys"


def authenticator(**overrides: object) -> Authenticator:
    """A fresh one per test: each has its own replay cache."""
    fields: dict[str, object] = {
        "tokens": (TOKEN, "second-token"),
        "hmac_secret": SECRET,
        "replay_window_s": WINDOW,
    }
    return Authenticator(**(fields | overrides))  # type: ignore[arg-type]


def signed(
    timestamp: float = NOW,
    secret: str = SECRET,
    body: bytes = BODY,
    method: str = "POST",
    path: str = PATH,
) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, method, path, body, int(timestamp))}


def verify(auth: Authenticator, headers: dict[str, str], body: bytes = BODY, **kw: object) -> str:
    return auth.verify(headers, body, method="POST", target=PATH, now=NOW, **kw)  # type: ignore[arg-type]


def rejected(
    auth: Authenticator,
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    method: str = "POST",
    target: str = PATH,
) -> str:
    with pytest.raises(AuthError) as raised:
        auth.verify(headers, body, method=method, target=target, now=NOW)
    message = str(raised.value)
    assert TOKEN not in message
    assert SECRET not in message
    return message


def test_sign_binds_timestamp_method_path_and_body() -> None:
    signed_text = b"1700000000.POST./v1/deploys." + BODY
    expected = hmac.new(SECRET.encode(), signed_text, hashlib.sha256).hexdigest()
    assert sign(SECRET, "POST", PATH, BODY, 1_700_000_000) == f"t=1700000000,v2={expected}"


# -- bearer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, "second-token"])
def test_valid_bearer_token(token: str) -> None:
    assert verify(authenticator(), {"authorization": f"Bearer {token}"}) == "bearer"


def test_bearer_scheme_is_case_insensitive() -> None:
    assert verify(authenticator(), {"authorization": f"bearer {TOKEN}"}) == "bearer"


def test_wrong_bearer_token() -> None:
    message = rejected(authenticator(), {"authorization": f"Bearer {TOKEN}x"})
    assert message == "invalid bearer token"


def test_a_non_ascii_bearer_token_is_refused_not_a_crash() -> None:
    assert rejected(authenticator(), {"authorization": "Bearer t\xf6k\xe9n"}) == (
        "invalid bearer token"
    )


def test_bearer_wins_over_a_valid_signature() -> None:
    # A bad Authorization header is not rescued by a signature sent alongside it.
    headers = {"authorization": "Bearer wrong", **signed()}
    assert rejected(authenticator(), headers) == "invalid bearer token"


@pytest.mark.parametrize("value", [TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer ", "Token x"])
def test_malformed_authorization(value: str) -> None:
    message = rejected(authenticator(), {"authorization": value})
    assert message == "Authorization must be 'Bearer <token>'"


def test_missing_credentials() -> None:
    message = rejected(authenticator(), {"content-type": "application/json"})
    assert message.startswith("missing credentials")
    assert SIGNATURE_HEADER in message


def test_no_credentials_configured_rejects_everything() -> None:
    auth = authenticator(tokens=(), hmac_secret=None)
    assert auth.configured is False
    message = rejected(auth, {"authorization": f"Bearer {TOKEN}"})
    assert message.startswith("no credentials configured")


# -- HMAC -----------------------------------------------------------------------------------


def test_valid_signature() -> None:
    assert verify(authenticator(), signed()) == "hmac"


def test_signature_header_tolerates_spaces() -> None:
    digest = sign(SECRET, "POST", PATH, BODY, int(NOW)).split("v2=")[1]
    headers = {SIGNATURE_HEADER: f"t={int(NOW)}, v2={digest}"}
    assert verify(authenticator(), headers) == "hmac"


def test_signature_alone_configures_the_agent() -> None:
    auth = authenticator(tokens=())
    assert auth.configured is True
    assert verify(auth, signed()) == "hmac"


def test_tampered_body() -> None:
    tampered = BODY.replace(b"1.2.3", b"6.6.6")
    message = rejected(authenticator(), signed(), tampered)
    assert message == "signature does not match the method, path and body"


@pytest.mark.parametrize(
    ("method", "target"),
    [("POST", "/v1/reload"), ("POST", "/v1/runs"), ("PUT", PATH), ("POST", PATH + "?x=1")],
)
def test_a_signature_is_bound_to_its_method_and_path(method: str, target: str) -> None:
    # captured on POST /v1/deploys, replayed elsewhere
    message = rejected(authenticator(), signed(), method=method, target=target)
    assert message == "signature does not match the method, path and body"


def test_a_repeated_signature_is_refused_inside_the_window() -> None:
    auth = authenticator()
    assert verify(auth, signed()) == "hmac"
    assert rejected(auth, signed()) == "signature already used: sign each request afresh"
    # a fresh signature (a second later) of the same request is fine
    assert verify(auth, signed(NOW + 1)) == "hmac"


def test_the_replay_cache_forgets_signatures_once_their_window_is_over() -> None:
    cache = ReplayCache()
    cache.admit("a", expires_at=NOW + 10, now=NOW)
    cache.admit("b", expires_at=NOW + 20, now=NOW)
    with pytest.raises(AuthError, match="already used"):
        cache.admit("a", expires_at=NOW + 10, now=NOW + 5)
    cache.admit("c", expires_at=NOW + 30, now=NOW + 15)  # "a" expired and is dropped
    assert len(cache) == 2


def test_a_full_replay_cache_refuses_rather_than_forgets() -> None:
    cache = ReplayCache(capacity=2)
    cache.admit("a", expires_at=NOW + 10, now=NOW)
    cache.admit("b", expires_at=NOW + 10, now=NOW)
    with pytest.raises(AuthError, match="too many signed requests"):
        cache.admit("c", expires_at=NOW + 10, now=NOW)


def test_wrong_secret() -> None:
    message = rejected(authenticator(), signed(secret="not-the-secret"))
    assert message == "signature does not match the method, path and body"


def test_missing_digest() -> None:
    headers = {SIGNATURE_HEADER: f"t={int(NOW)}"}
    assert (
        rejected(authenticator(), headers)
        == f"{SIGNATURE_HEADER} needs v2=<64 lowercase hex digits>"
    )


def test_a_v1_body_only_signature_says_what_changed() -> None:
    digest = hmac.new(SECRET.encode(), f"{int(NOW)}.".encode() + BODY, hashlib.sha256)
    headers = {SIGNATURE_HEADER: f"t={int(NOW)},v1={digest.hexdigest()}"}
    assert rejected(authenticator(), headers).startswith("v1 signatures (body only)")


@pytest.mark.parametrize(
    "digest", ["00", "z" * 64, "\xe9" * 64, "A" * 64, "\u00e9\u00e9", "0" * 65]
)
def test_a_malformed_digest_is_refused_not_a_crash(digest: str) -> None:
    headers = {SIGNATURE_HEADER: f"t={int(NOW)},v2={digest}"}
    assert (
        rejected(authenticator(), headers)
        == f"{SIGNATURE_HEADER} needs v2=<64 lowercase hex digits>"
    )


@pytest.mark.parametrize("offset", [-WINDOW, WINDOW])
def test_timestamp_at_the_edge_of_the_window_is_accepted(offset: float) -> None:
    assert verify(authenticator(), signed(NOW + offset)) == "hmac"


def test_stale_timestamp_outside_replay_window() -> None:
    message = rejected(authenticator(), signed(NOW - WINDOW - 1))
    assert message == "signature timestamp outside the 300s replay window"


def test_future_timestamp_outside_replay_window() -> None:
    message = rejected(authenticator(), signed(NOW + WINDOW + 1))
    assert message == "signature timestamp outside the 300s replay window"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "v2=abc",
        "t=,v2=abc",
        "t=soon,v2=abc",
        "t=1700000000.5,v2=abc",
        "t=" + "9" * 400 + ",v2=00",  # overflowed the float comparison: a 500 before
        "t=-5,v2=abc",
        "t=\u0661\u0667,v2=abc",  # non-ASCII digits int() would accept
    ],
)
def test_malformed_signature_header(header: str) -> None:
    message = rejected(authenticator(), {SIGNATURE_HEADER: header})
    assert message == f"{SIGNATURE_HEADER} needs t=<unix seconds>"


def test_empty_signature_header_counts_as_absent() -> None:
    assert rejected(authenticator(), {SIGNATURE_HEADER: ""}).startswith("missing credentials")


def test_signatures_disabled() -> None:
    auth = authenticator(tokens=(TOKEN,), hmac_secret=None)
    message = rejected(auth, signed())
    assert message.startswith("signatures are not enabled")


def test_verify_uses_the_clock_when_now_is_not_given() -> None:
    auth = authenticator()
    assert auth.verify(signed(time.time()), BODY, method="POST", target=PATH) == "hmac"
    with pytest.raises(AuthError, match="replay window"):
        auth.verify(signed(time.time() - 2 * WINDOW), BODY, method="POST", target=PATH)


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_are_open_without_metrics_tokens() -> None:
    authenticator().verify_metrics({})


def test_metrics_tokens_guard_metrics_only_with_their_own_tokens() -> None:
    auth = authenticator(metrics_tokens=("metrics-token-0123456789",))
    auth.verify_metrics({"authorization": "Bearer metrics-token-0123456789"})
    for headers in ({}, {"authorization": f"Bearer {TOKEN}"}, {"authorization": "Basic x"}):
        with pytest.raises(AuthError):
            auth.verify_metrics(headers)
