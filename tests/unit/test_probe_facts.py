"""A probe step's typed facts: kept redacted on the step, through the one JSON form of a
run and back (the store and the API read what the runner wrote), valid in the report's
schema, and read by outputs as fields, not parsed from `details`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import pytest

from synth.browser.facts import BrowserFacts
from synth.codec import run_from_dict, run_to_dict
from synth.model import Phase, RunResult, Status, StepResult
from synth.outputs.report_json import JSON_SCHEMA, json_report
from synth.probes.dns import DnsResult
from synth.probes.facts import KINDS, facts_from_dict, facts_to_dict
from synth.probes.stepping import redacted
from synth.probes.tcp import TcpResult
from synth.probes.tls import TlsResult
from synth.redact import MASK, Redactor

SECRET = "t0ps3cr3t-value"
TLS = TlsResult(
    host="shop.example", port=443, server_name="shop.example",
    subject=f"CN=shop.example,OU={SECRET}", issuer="CN=CA",
    not_before=datetime(2026, 1, 1, tzinfo=UTC), not_after=datetime(2027, 3, 1, 12, tzinfo=UTC),
    days_left=88.5, sans=("shop.example", "www.shop.example"), chain_valid=True,
    hostname_valid=True, verify_error=None, tls_version="TLSv1.3",
    cipher="TLS_AES_128_GCM_SHA256", handshake_s=0.002,
)  # fmt: skip
DNS = DnsResult("shop.example", "TXT", (f"key={SECRET}", "v=spf1 -all"), "127.0.0.1", 0.003)
TCP = TcpResult("db.internal", 5432, "10.0.0.5", 0.001, 0.0004)


def run_with(*facts: object) -> RunResult:
    steps = tuple(
        StepResult(name=f"probe {i}", status=Status.PASSED, duration_s=0.01, facts=f)
        for i, f in enumerate(facts)
    )
    return RunResult(
        run_id="r1", check="probes", service="shop", environment="prod",
        phase=Phase.SCHEDULED, location="eu-1", status=Status.PASSED,
        started_at=datetime(2026, 12, 3, tzinfo=UTC), duration_s=0.03, steps=steps,
    )  # fmt: skip


def test_every_kind_is_registered_once() -> None:
    expected = {"tcp": TcpResult, "dns": DnsResult, "tls": TlsResult, "browser": BrowserFacts}
    assert expected == KINDS


@pytest.mark.parametrize("facts", [TLS, DNS, TCP], ids=["tls", "dns", "tcp"])
def test_facts_round_trip_through_the_json_form(facts: object) -> None:
    data = facts_to_dict(facts)
    assert data["kind"] in KINDS
    assert facts_from_dict(json.loads(json.dumps(data))) == facts


def test_a_run_with_facts_round_trips_and_fits_the_report_schema() -> None:
    result = run_with(TLS, DNS, TCP, None)
    assert run_from_dict(json.loads(json.dumps(run_to_dict(result)))) == result
    report = json_report([result], env="prod", started_at=result.started_at, duration_s=0.1)
    jsonschema.validate(json.loads(json.dumps(report)), JSON_SCHEMA)


def test_bad_facts_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"facts\.kind must be one of"):
        facts_from_dict({"kind": "gopher"})
    broken = facts_to_dict(TLS)
    del broken["not_after"]
    with pytest.raises(ValueError, match=r"facts\.not_after is missing"):
        facts_from_dict(broken)


def test_facts_are_redacted_like_any_other_output() -> None:
    redact = Redactor([SECRET]).text
    tls, dns = redacted(TLS, redact), redacted(DNS, redact)
    assert isinstance(tls, TlsResult)
    assert isinstance(dns, DnsResult)
    assert SECRET not in json.dumps([facts_to_dict(tls), facts_to_dict(dns)])
    assert tls.subject == f"CN=shop.example,OU={MASK}"
    assert dns.answers == (f"key={MASK}", "v=spf1 -all")
    assert tls.not_after == TLS.not_after  # only text changes
