"""The pure parts of the probes: DNS answer comparison, certificate problems, name matching."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from synth.probes.dns import answer_mismatch, normalize_answer
from synth.probes.tls import TlsResult, matches_hostname, tls_problems

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("record_type", "answer", "normal"),
    [
        ("A", " 192.0.2.1 ", "192.0.2.1"),
        ("AAAA", "2001:0DB8:0:0::1", "2001:db8::1"),
        ("MX", "10 Mail.Example.COM.", "10 mail.example.com"),
        ("MX", "0 .", "0 ."),
        ("CNAME", "Target.example.com.", "target.example.com"),
        ("SRV", "0 5 5060 sip.example.com.", "0 5 5060 sip.example.com"),
        ("TXT", "v=spf1 Include:X -all", "v=spf1 Include:X -all"),
        ("A", "not-an-ip", "not-an-ip"),
    ],
)
def test_normalize_answer(record_type: str, answer: str, normal: str) -> None:
    assert normalize_answer(record_type, answer) == normal


def test_exact_answers_ignore_order_case_and_trailing_dot() -> None:
    answers = ["10 mail.example.com.", "20 backup.example.com."]
    assert (
        answer_mismatch("MX", answers, expect=["20 BACKUP.example.com", "10 mail.example.com"])
        is None
    )


def test_exact_answers_name_missing_and_unexpected() -> None:
    problem = answer_mismatch("A", ["192.0.2.1", "192.0.2.2"], expect=["192.0.2.1", "192.0.2.3"])
    assert problem is not None
    assert (
        problem.message == "answers differ from expected (missing 192.0.2.3; unexpected 192.0.2.2)"
    )
    assert problem.expected == "192.0.2.1, 192.0.2.3"
    assert problem.actual == "192.0.2.1, 192.0.2.2"


def test_expect_contains_is_a_subset_check() -> None:
    answers = ["192.0.2.1", "192.0.2.2"]
    assert answer_mismatch("A", answers, expect_contains=["192.0.2.2"]) is None
    assert answer_mismatch("A", answers, expect_contains="192.0.2.1") is None  # one answer
    problem = answer_mismatch("A", answers, expect_contains=["192.0.2.1", "192.0.2.9"])
    assert problem is not None
    assert problem.message == "answers lack 192.0.2.9"


def test_a_single_string_is_one_expected_answer() -> None:
    assert answer_mismatch("A", ["192.0.2.1"], expect="192.0.2.1") is None
    assert answer_mismatch("A", [], expect="192.0.2.1") is not None


def test_no_expectation_always_holds() -> None:
    assert answer_mismatch("A", []) is None


def cert(**changes: object) -> TlsResult:
    base = TlsResult(
        host="shop.example.com",
        port=443,
        server_name="shop.example.com",
        subject="CN=shop.example.com",
        issuer="CN=Example CA",
        not_before=NOW - dt.timedelta(days=30),
        not_after=NOW + dt.timedelta(days=60),
        days_left=60.0,
        sans=("shop.example.com",),
        chain_valid=True,
        hostname_valid=True,
        verify_error=None,
        tls_version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        handshake_s=0.01,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_healthy_certificate_has_no_problems() -> None:
    assert tls_problems(cert()) == []


def test_expiring_soon() -> None:
    [problem] = tls_problems(cert(days_left=3.24), min_days=14)
    assert problem.message == "certificate expires in 3.2 days (minimum 14)"
    assert problem.expected == "at least 14 days left"
    assert tls_problems(cert(days_left=3.24), min_days=None) == []
    assert tls_problems(cert(days_left=3.24), min_days=3) == []


def test_expired_reports_expiry_once() -> None:
    expired = cert(days_left=-2.0, chain_valid=False, verify_error="certificate has expired")
    [problem] = tls_problems(expired)
    assert problem.message.startswith("certificate has expired: not valid after 2030-03-02")
    assert "2.0 days ago" in problem.message


def test_expired_and_untrusted_are_both_reported_most_urgent_first() -> None:
    broken = cert(
        days_left=-1.0,
        chain_valid=False,
        verify_error="self-signed certificate",
        hostname_valid=False,
        sans=("other.example.com",),
    )
    messages = [p.message for p in tls_problems(broken)]
    assert messages[0].startswith("certificate has expired")
    assert messages[1] == "certificate chain is not trusted: self-signed certificate"
    assert messages[2] == (
        "certificate is not valid for shop.example.com (SANs: other.example.com)"
    )


def test_chain_and_hostname_checks_can_be_turned_off() -> None:
    broken = cert(chain_valid=False, verify_error="self-signed certificate", hostname_valid=False)
    assert len(tls_problems(broken)) == 2
    assert tls_problems(broken, check_chain=False, check_hostname=False) == []


@pytest.mark.parametrize(
    ("hostname", "dns_names", "ips", "valid"),
    [
        ("shop.example.com", ["shop.example.com"], [], True),
        ("SHOP.example.com.", ["shop.example.com"], [], True),
        ("shop.example.com", ["*.example.com"], [], True),
        ("example.com", ["*.example.com"], [], False),
        ("a.shop.example.com", ["*.example.com"], [], False),
        ("shop.example.com", ["*.com"], [], False),
        ("shop.example.com", ["s*.example.com"], [], False),
        ("shop.example.com", ["other.example.com"], [], False),
        ("127.0.0.1", [], ["127.0.0.1"], True),
        ("127.0.0.1", ["127.0.0.1"], [], False),  # an IP must be an IP SAN
        ("::1", [], ["0:0:0:0:0:0:0:1"], True),
        ("localhost", [], ["127.0.0.1"], False),
        ("bücher.example", ["xn--bcher-kva.example"], [], True),
    ],
)
def test_matches_hostname(hostname: str, dns_names: list[str], ips: list[str], valid: bool) -> None:
    assert matches_hostname(hostname, dns_names, ips) is valid
