"""Redactor: known secrets and credential-shaped fields never survive into any output."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from synth.redact import MASK, Redactor, is_sensitive_name

SECRET = "hunter2-s3cr3t"


@pytest.mark.parametrize(
    "name",
    [
        "Authorization",
        "proxy-authorization",
        "Cookie",
        "Set-Cookie",
        "X-API-Key",
        "x-auth-token",
        "X-Synth-Signature",
        "password",
        "passwd",
        "db_pass",
        "client_secret",
        "access_token",
        "api_key",
        "apiKey",
        "credentials",
        "session_id",
        "sig",
    ],
)
def test_sensitive_names(name: str) -> None:
    assert is_sensitive_name(name) is True


@pytest.mark.parametrize(
    "name", ["content-type", "accept", "x-request-id", "user", "q", "page", "id", "limit"]
)
def test_ordinary_names(name: str) -> None:
    assert is_sensitive_name(name) is False


def test_text_masks_every_occurrence_of_a_known_secret() -> None:
    redactor = Redactor([SECRET])
    assert redactor.text(f"a {SECRET} b {SECRET}") == f"a {MASK} b {MASK}"


def test_text_leaves_text_without_secrets_alone() -> None:
    assert Redactor([SECRET]).text("nothing to see") == "nothing to see"


def test_secret_containing_another_is_masked_whole() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.text("x abcdefgh y abcd") == f"x {MASK} y {MASK}"


def test_secret_with_regex_characters_is_matched_literally() -> None:
    redactor = Redactor(["a.b*c(d)"])
    assert redactor.text("a.b*c(d) aXbbbc(d)") == f"{MASK} aXbbbc(d)"


def test_short_values_are_not_registered() -> None:
    redactor = Redactor(["abc", ""])
    assert redactor.text("abc abcabc") == "abc abcabc"


def test_add_registers_a_value_after_construction() -> None:
    redactor = Redactor()
    assert redactor.text(f"t={SECRET}") == f"t={SECRET}"
    redactor.add(SECRET)
    assert redactor.text(f"t={SECRET}") == f"t={MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"password": "pw1"}', f'{{"password": "{MASK}"}}'),
        ('{"access_token":"abc"}', f'{{"access_token":"{MASK}"}}'),
        ('{"client_secret": "a\\"b"}', f'{{"client_secret": "{MASK}"}}'),
        ('{"apiKey": "k"}', f'{{"apiKey": "{MASK}"}}'),
        ('{"user": "bob", "id": "7"}', '{"user": "bob", "id": "7"}'),
        ('{"token": null}', '{"token": null}'),
    ],
)
def test_text_masks_credential_json_fields(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


def test_url_masks_userinfo_password_keeping_the_user() -> None:
    assert Redactor().url("https://bob:pw@example.com/x") == f"https://bob:{MASK}@example.com/x"


def test_url_without_password_keeps_userinfo() -> None:
    assert Redactor().url("https://bob@example.com/x") == "https://bob@example.com/x"


def test_url_masks_credential_query_parameters_only() -> None:
    shown = Redactor().url("https://h.example/p?token=abc&page=2&api_key=k#frag")
    assert shown == f"https://h.example/p?token={MASK}&page=2&api_key={MASK}#frag"


def test_url_masks_known_secrets_anywhere() -> None:
    shown = Redactor([SECRET]).url(f"https://h.example/users/{SECRET}?q={SECRET}")
    assert shown == f"https://h.example/users/{MASK}?q={MASK}"


def test_url_without_credentials_is_unchanged() -> None:
    url = "http://127.0.0.1:8080/api/products?page=2&sort=price"
    assert Redactor([SECRET]).url(url) == url


@pytest.mark.parametrize(
    "encode", [quote_plus, lambda s: quote(s, safe="")], ids=["quote_plus", "quote"]
)
def test_url_masks_percent_encoded_secrets(encode: Callable[[str], str]) -> None:
    # A password with URL-reserved characters reaches the URL encoded; it is still the secret.
    secret = "p@ss word/1+x"
    encoded = encode(secret)
    assert encoded != secret
    shown = Redactor([secret]).url(f"https://h.example/login/{encoded}?q={encoded}")
    assert encoded not in shown
    assert secret not in shown


def test_headers_masks_credential_headers_by_name_and_secrets_in_others() -> None:
    shown = Redactor([SECRET]).headers(
        {
            "Authorization": "Bearer anything",
            "Cookie": "sid=1",
            "X-Session-Id": "abc",
            "x-shop-api-key": "k",
            "X-Trace": f"ctx {SECRET}",
            "Accept": "application/json",
            "Location": "https://shop.example/login?next=/cart&access_token=abc123",
        }.items()
    )
    assert shown == (
        ("Authorization", MASK),
        ("Cookie", MASK),
        ("X-Session-Id", MASK),
        ("x-shop-api-key", MASK),
        ("X-Trace", f"ctx {MASK}"),
        ("Accept", "application/json"),
        ("Location", "https://shop.example/login?next=%2Fcart&access_token=***"),
    )


def test_headers_are_bounded_and_cut_after_redacting() -> None:
    long_value = "a" * 290 + SECRET + "b" * 100
    shown = Redactor([SECRET]).headers([("X-Long", long_value)] + [("X-N", "1")] * 100)
    assert len(shown) == 50
    name, value = shown[0]
    assert name == "X-Long"
    assert len(value) == 300
    assert value.endswith("…")
    assert SECRET[:4] not in value, "a secret straddling the cut shows in no part"


CANARY = 'p@ss w/rd"\\é+%'


def _encodings(value: str) -> dict[str, str]:
    """Every form the canary can take on the wire or in an output."""
    import base64
    import json
    import re

    percent = quote(value, safe="")
    return {
        "raw": value,
        "percent": percent,
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), percent),
        "percent-path": quote(value),
        "httpx-path": quote(value, safe="!$&'()*+,;=:@/"),
        "form": quote_plus(value),
        "json": json.dumps(value)[1:-1],
        "json-utf8": json.dumps(value, ensure_ascii=False)[1:-1],
        "json-twice": json.dumps(json.dumps(value)[1:-1])[1:-1],
        "base64": base64.b64encode(value.encode()).decode(),
        "base64url": base64.urlsafe_b64encode(value.encode()).decode().rstrip("="),
    }


@pytest.mark.parametrize("form", sorted(_encodings(CANARY)))
def test_every_encoding_of_a_secret_is_masked(form: str) -> None:
    shown = _encodings(CANARY)[form]
    assert shown != ""
    redacted = Redactor([CANARY]).text(f"before {shown} after")
    assert redacted == f"before {MASK} after", form


def test_a_secret_in_a_basic_auth_header_is_masked_in_its_base64_form() -> None:
    import base64

    credential = base64.b64encode(f"alice:{CANARY}".encode()).decode()
    redactor = Redactor([CANARY])
    redactor.add_basic_auth("alice", CANARY)
    assert redactor.text(f"Authorization: Basic {credential}") == f"Authorization: Basic {MASK}"
