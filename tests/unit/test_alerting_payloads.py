"""Page contents and playbook configuration: summaries within PagerDuty's limits, stable
dedup keys, redaction, severities, validation and backoff bounds."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from synth.alerting.channel import Notice
from synth.alerting.channels import notice_events
from synth.alerting.engine import playbook_problems, redactor_for
from synth.alerting.outbox import backoff_s
from synth.alerting.payloads import (
    DEDUP_KEY_MAX,
    SUMMARY_MAX,
    change_event,
    dedup_key,
    resolve_event,
    trigger_event,
)
from synth.alerting.slack import slack_message
from synth.alerting.webhook import webhook_event
from synth.config import ConfigError, PagerDutySettings, PlaybookSettings, Settings, load_settings
from synth.model import CheckSpec, DeployContext, Failure, FailureType, Phase, RunResult, Status
from synth.outputs.page_links import deploy_page_url, run_page_url
from synth.store.records import DeployRecord

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
KEY = "0123456789abcdef0123456789abcdef"


async def _noop(flow: Any) -> None:
    return None


def result(message: str = "expected status 200, got 503", **changes: Any) -> RunResult:
    base: dict[str, Any] = {
        "run_id": "r1",
        "check": "checkout",
        "service": "shop",
        "environment": "production",
        "phase": Phase.SCHEDULED,
        "location": "eu-west",
        "status": Status.FAILED,
        "started_at": T0,
        "duration_s": 0.4,
        "steps": (),
        "trace_id": "ab" * 16,
        "failure": Failure(
            type=FailureType.HTTP_STATUS,
            message=message,
            expected="200",
            actual="503",
            method="POST",
            url="https://shop.example.com/api/checkout",
            response_excerpt='{"error": "upstream down"}',
        ),
        "failed_step": "check out",
    }
    return RunResult(**(base | changes))


def playbook(**fields: Any) -> PlaybookSettings:
    return PlaybookSettings.model_validate({"routing_key": KEY} | fields)


def settings(**data: Any) -> Settings:
    return Settings.model_validate(data)


def test_summary_says_what_broke() -> None:
    event = trigger_event(
        result(),
        playbook_name="p",
        playbook=playbook(),
        check=None,
        redactor=redactor_for(settings()),
    )
    payload = event.payload["payload"]
    assert payload["summary"] == (
        "checkout failed in production at step 'check out': http_status: "
        "expected status 200, got 503"
    )
    assert (payload["component"], payload["group"], payload["class"]) == (
        "shop",
        "production",
        "http_status",
    )
    assert payload["source"] == "synth/eu-west"
    details = payload["custom_details"]
    assert details["request"] == "POST https://shop.example.com/api/checkout"
    assert details["response_excerpt"] == '{"error": "upstream down"}'
    assert (event.kind, event.dedup_key) == ("trigger", "synth/production/checkout")


def test_summary_fits_pagerduty_limit() -> None:
    event = trigger_event(
        result("x" * 5000),
        playbook_name="p",
        playbook=playbook(),
        check=None,
        redactor=redactor_for(settings()),
    )
    summary = event.payload["payload"]["summary"]
    assert len(summary) == SUMMARY_MAX
    assert summary.endswith("…")


def test_dedup_key_is_stable_and_bounded() -> None:
    assert dedup_key("prod", "checkout") == "synth/prod/checkout"
    long = dedup_key("prod", "c" * 400)
    assert len(long) <= DEDUP_KEY_MAX
    assert long == dedup_key("prod", "c" * 400)
    assert long != dedup_key("prod", "c" * 401)
    assert resolve_event(result(), playbook_name="p").dedup_key == "synth/production/checkout"


def test_deploy_context_and_links() -> None:
    deploy = DeployContext(
        deploy_id="d1", service="shop", environment="production", version="1.4.2", commit="abc"
    )
    check = CheckSpec(
        name="checkout", func=_noop, service="shop", runbook_url="https://runbooks/checkout"
    )
    pb = playbook(
        dashboard_url="https://grafana/d/1", trace_url_template="https://tempo/trace/{trace_id}"
    )
    event = trigger_event(
        result(phase=Phase.DEPLOY, deploy=deploy),
        playbook_name="p",
        playbook=pb,
        check=check,
        redactor=redactor_for(settings()),
    )
    assert event.payload["payload"]["custom_details"]["deploy_version"] == "1.4.2"
    assert "after deploy 1.4.2" in event.payload["payload"]["summary"]
    assert event.payload["links"] == [
        {"href": "https://runbooks/checkout", "text": "Runbook"},
        {"href": f"https://tempo/trace/{'ab' * 16}", "text": "Trace"},
        {"href": "https://grafana/d/1", "text": "Dashboard"},
    ]


def test_the_run_page_is_the_first_link_and_a_verification_links_its_deploy() -> None:
    deploy = DeployContext(
        deploy_id="d 1/x", service="shop", environment="production", version="1.4.2"
    )
    pb = playbook(dashboard_url="https://grafana/d/1")
    failed = result(run_id="run/1?a", phase=Phase.DEPLOY, deploy=deploy)
    event = trigger_event(
        failed,
        playbook_name="p",
        playbook=pb,
        check=None,
        redactor=redactor_for(settings()),
        public_url="https://synth.example.com/agent/",
    )
    assert event.payload["links"] == [
        {"href": "https://synth.example.com/agent/ui/runs/run%2F1%3Fa", "text": "Run"},
        {
            "href": "https://synth.example.com/agent/ui/deploys/d%201%2Fx",
            "text": "Deploy verification",
        },
        {"href": "https://grafana/d/1", "text": "Dashboard"},
    ]
    # Slack and the signed webhook carry the same links.
    slack = slack_message(event).payload["text"]
    assert "<https://synth.example.com/agent/ui/runs/run%2F1%3Fa|Run>" in slack
    assert "<https://synth.example.com/agent/ui/deploys/d%201%2Fx|Deploy verification>" in slack
    assert webhook_event(event).payload["links"] == event.payload["links"]
    # Without a public URL no page is linked anywhere.
    bare = trigger_event(
        failed, playbook_name="p", playbook=pb, check=None, redactor=redactor_for(settings())
    )
    assert bare.payload["links"] == [{"href": "https://grafana/d/1", "text": "Dashboard"}]
    assert "/ui/" not in json.dumps([e.payload for e in notice_events(Notice(bare), pb)])
    assert "/ui/" not in slack_message(bare).payload["text"]


def test_a_change_event_links_the_deploy_page_under_the_public_url() -> None:
    record = DeployRecord(
        id="dep-7",
        service="shop",
        environment="production",
        version="2.0.0",
        created_at=T0,
        updated_at=T0,
        url="https://ci.example.com/42",
    )
    linked = change_event(
        record,
        playbook_name="p",
        location="eu-west",
        redactor=redactor_for(settings()),
        public_url="https://synth.example.com",
    )
    assert linked.payload["links"] == [
        {"href": "https://ci.example.com/42", "text": "Deploy"},
        {"href": "https://synth.example.com/ui/deploys/dep-7", "text": "Deploy verification"},
    ]
    bare = change_event(
        record, playbook_name="p", location="eu-west", redactor=redactor_for(settings())
    )
    assert bare.payload["links"] == [{"href": "https://ci.example.com/42", "text": "Deploy"}]


def test_page_urls_need_a_public_url_and_quote_the_id() -> None:
    assert run_page_url(None, "r1") is None
    assert run_page_url("", "r1") is None
    assert deploy_page_url(None, "d1") is None
    assert run_page_url("https://s.example/", "a/b c") == "https://s.example/ui/runs/a%2Fb%20c"
    assert deploy_page_url("https://s.example", "d1") == "https://s.example/ui/deploys/d1"


def test_every_known_secret_is_masked() -> None:
    config = settings(
        environments={"production": {"secrets": {"pw": "hunter2hunter2"}}},
        playbooks={"p": {"routing_key": KEY}},
    )
    leaky = result(f"login with hunter2hunter2 failed; key {KEY}")
    event = trigger_event(
        leaky,
        playbook_name="p",
        playbook=config.playbooks["p"],
        check=None,
        redactor=redactor_for(config),
    )
    text = json.dumps(event.payload)
    assert "hunter2hunter2" not in text
    assert KEY not in text
    assert "***" in text


def test_severity_phase_then_environment_then_default() -> None:
    pb = playbook(severity={"preprod": "warning", "staging": "error", "default": "info"})
    assert pb.severity_for("preprod", "staging") == "warning"
    assert pb.severity_for("scheduled", "staging") == "error"
    assert pb.severity_for("scheduled", "production") == "info"
    assert playbook().severity_for("scheduled", "production") == "critical"
    with pytest.raises(ValueError, match="severity"):
        playbook(severity={"production": "sev1"})


def test_trigger_rule_is_one_or_the_other() -> None:
    assert playbook(trigger={"failures": 2, "of_last": 5}).trigger.of_last == 5
    for bad in (
        {"consecutive": 2, "failures": 1, "of_last": 2},
        {"failures": 2},
        {"failures": 3, "of_last": 2},
    ):
        with pytest.raises(ValueError, match=r"consecutive|failures"):
            playbook(trigger=bad)


def test_pagerduty_needs_https_and_default_playbook_must_exist(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="https"):
        PagerDutySettings(api_url="http://events.example.com")
    path = tmp_path / "synth.yaml"
    path.write_text("default_playbook: nope\nplaybooks: {a: {routing_key: " + KEY + "}}\n")
    with pytest.raises(ConfigError, match="unknown playbook 'nope'"):
        load_settings(path)


def test_playbook_problems_name_the_check_and_the_secret() -> None:
    config = settings(playbooks={"a": {"routing_key": "short"}, "b": {"routing_key": "env:NOPE_X"}})
    check = CheckSpec(name="checkout", func=_noop, service="shop", playbook="c")
    problems = playbook_problems(config, [check])
    assert any("playbooks.a.routing_key" in p and "32 characters" in p for p in problems)
    assert any("playbooks.b.routing_key" in p and "NOPE_X" in p for p in problems)
    assert any("'checkout' names unknown playbook 'c'" in p for p in problems)
    # Without any playbook, paging is off and a check's playbook name is not an error.
    assert playbook_problems(settings(), [check]) == []


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    pd = PagerDutySettings(retry_initial=1, retry_max=8)
    for attempts, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (10, 8)]:
        delays = [backoff_s(attempts, pd, None) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempts, delays)
    assert backoff_s(1, pd, 5.0) >= 5.0
    assert backoff_s(1, pd, 600.0) == 8.0


def test_validate_reports_playbook_problems(tmp_path: Any, capsys: Any) -> None:
    from synth.cli import main

    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "c.py").write_text(
        "import synth\n\n"
        "@synth.check(service='shop', playbook='missing')\n"
        "async def checkout(flow):\n"
        "    pass\n"
    )
    config = tmp_path / "synth.yaml"
    config.write_text(
        "checks: [checks]\nplaybooks: {oncall: {routing_key: env:SYNTH_TEST_UNSET_KEY}}\n"
    )
    assert main(["validate", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "playbooks.oncall.routing_key: environment variable SYNTH_TEST_UNSET_KEY" in out
    assert "c.py:3: check 'checkout' names unknown playbook 'missing'" in out
