"""Authenticator: bearer tokens and HMAC-signed bodies with a replay window."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from synth.agent.auth import SIGNATURE_HEADER, Authenticator, AuthError, sign

TOKEN = "tok-0123456789abcdef"
SECRET = "hmac-secret-fedcba9876543210"
BODY = b'{"service":"shop","environment":"staging","version":"1.2.3"}'
NOW = 1_700_000_000.0
WINDOW = 300.0

AUTH = Authenticator(tokens=(TOKEN, "second-token"), hmac_secret=SECRET, replay_window_s=WINDOW)


def signed(timestamp: float = NOW, secret: str = SECRET, body: bytes = BODY) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(secret, body, int(timestamp))}


def rejected(auth: Authenticator, headers: dict[str, str], body: bytes = BODY) -> str:
    with pytest.raises(AuthError) as raised:
        auth.verify(headers, body, now=NOW)
    message = str(raised.value)
    assert TOKEN not in message
    assert SECRET not in message
    return message


def test_sign_is_stripe_style_hmac_sha256() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, 1_700_000_000) == f"t=1700000000,v1={expected}"


# -- bearer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TOKEN, "second-token"])
def test_valid_bearer_token(token: str) -> None:
    assert AUTH.verify({"authorization": f"Bearer {token}"}, BODY, now=NOW) == "bearer"


def test_bearer_scheme_is_case_insensitive() -> None:
    assert AUTH.verify({"authorization": f"bearer {TOKEN}"}, BODY, now=NOW) == "bearer"


def test_wrong_bearer_token() -> None:
    message = rejected(AUTH, {"authorization": f"Bearer {TOKEN}x"})
    assert message == "invalid bearer token"


def test_bearer_wins_over_a_valid_signature() -> None:
    # A bad Authorization header is not rescued by a signature sent alongside it.
    headers = {"authorization": "Bearer wrong", **signed()}
    assert rejected(AUTH, headers) == "invalid bearer token"


@pytest.mark.parametrize("value", [TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer ", "Token x"])
def test_malformed_authorization(value: str) -> None:
    assert rejected(AUTH, {"authorization": value}) == "Authorization must be 'Bearer <token>'"


def test_missing_credentials() -> None:
    message = rejected(AUTH, {"content-type": "application/json"})
    assert message.startswith("missing credentials")
    assert SIGNATURE_HEADER in message


def test_no_credentials_configured_rejects_everything() -> None:
    auth = Authenticator(tokens=(), hmac_secret=None, replay_window_s=WINDOW)
    assert auth.configured is False
    message = rejected(auth, {"authorization": f"Bearer {TOKEN}"})
    assert message.startswith("no credentials configured")


# -- HMAC -----------------------------------------------------------------------------------


def test_valid_signature() -> None:
    assert AUTH.verify(signed(), BODY, now=NOW) == "hmac"


def test_signature_header_tolerates_spaces() -> None:
    digest = sign(SECRET, BODY, int(NOW)).split("v1=")[1]
    headers = {SIGNATURE_HEADER: f"t={int(NOW)}, v1={digest}"}
    assert AUTH.verify(headers, BODY, now=NOW) == "hmac"


def test_signature_alone_configures_the_agent() -> None:
    auth = Authenticator(tokens=(), hmac_secret=SECRET, replay_window_s=WINDOW)
    assert auth.configured is True
    assert auth.verify(signed(), BODY, now=NOW) == "hmac"


def test_tampered_body() -> None:
    tampered = BODY.replace(b"1.2.3", b"6.6.6")
    assert rejected(AUTH, signed(), tampered) == "signature does not match the body"


def test_wrong_secret() -> None:
    headers = signed(secret="not-the-secret")
    assert rejected(AUTH, headers) == "signature does not match the body"


def test_missing_v1() -> None:
    headers = {SIGNATURE_HEADER: f"t={int(NOW)}"}
    assert rejected(AUTH, headers) == "signature does not match the body"


@pytest.mark.parametrize("offset", [-WINDOW, WINDOW])
def test_timestamp_at_the_edge_of_the_window_is_accepted(offset: float) -> None:
    assert AUTH.verify(signed(NOW + offset), BODY, now=NOW) == "hmac"


def test_stale_timestamp_outside_replay_window() -> None:
    message = rejected(AUTH, signed(NOW - WINDOW - 1))
    assert message == "signature timestamp outside the 300s replay window"


def test_future_timestamp_outside_replay_window() -> None:
    message = rejected(AUTH, signed(NOW + WINDOW + 1))
    assert message == "signature timestamp outside the 300s replay window"


@pytest.mark.parametrize(
    "header", ["garbage", "v1=abc", "t=,v1=abc", "t=soon,v1=abc", "t=1700000000.5,v1=abc"]
)
def test_malformed_signature_header(header: str) -> None:
    message = rejected(AUTH, {SIGNATURE_HEADER: header})
    assert message == f"{SIGNATURE_HEADER} needs t=<unix seconds>"


def test_empty_signature_header_counts_as_absent() -> None:
    assert rejected(AUTH, {SIGNATURE_HEADER: ""}).startswith("missing credentials")


def test_signatures_disabled() -> None:
    auth = Authenticator(tokens=(TOKEN,), hmac_secret=None, replay_window_s=WINDOW)
    message = rejected(auth, signed())
    assert message.startswith("signatures are not enabled")


def test_verify_uses_the_clock_when_now_is_not_given() -> None:
    assert AUTH.verify(signed(time.time()), BODY) == "hmac"
    with pytest.raises(AuthError, match="replay window"):
        AUTH.verify(signed(time.time() - 2 * WINDOW), BODY)
