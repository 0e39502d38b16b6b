"""The shipped Prometheus rules: valid for promtool, their promtool unit tests pass, and
every alert carries what on-call needs (severity, summary, description, a runbook
section that exists) and is tested both firing and not firing."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from prometheus import (
    PROMETHEUS_SERIES,
    RULE_TESTS,
    RULES,
    RUNBOOKS,
    exported_series_names,
    metric_names,
    recording_rule_names,
    run_promtool,
)


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def test_promtool_check_rules_accepts_the_rules() -> None:
    done = run_promtool("check", "rules", str(RULES))
    assert done.returncode == 0, f"promtool check rules failed:\n{done.stdout}{done.stderr}"


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool test files under deploy/prometheus/tests"
    done = run_promtool("test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, f"promtool test rules failed:\n{done.stdout}{done.stderr}"


def test_the_expected_alerts_are_shipped() -> None:
    assert {a["alert"] for a in alerts()} == {
        "SynthCheckFailing",
        "SynthCheckFailingMultipleLocations",
        "SynthCheckNotRunning",
        "SynthTLSCertificateExpiring",
        "SynthAgentDown",
        "SynthAgentFallingBehind",
        "SynthDeployVerdictFailed",
        "SynthClusterMembersMissing",
        "SynthClusterLeaseLost",
    }


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_alert_has_severity_annotations_and_runbook_section(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in ("warning", "critical")
    annotations = alert["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    anchor = annotations["runbook_url"].partition("#")[2]
    headings = re.findall(r"^## (\S+)\s*$", RUNBOOKS.read_text(encoding="utf-8"), re.MULTILINE)
    assert anchor in {h.lower() for h in headings}, f"no section for #{anchor} in {RUNBOOKS}"


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - silent == set(), "alerts never tested not firing"


def test_every_recording_rule_has_a_unit_test() -> None:
    tested: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            tested |= {check["expr"] for check in case.get("promql_expr_test", [])}
    assert recording_rule_names() - tested == set()


def test_rules_select_only_metrics_synth_exports() -> None:
    known = exported_series_names() | PROMETHEUS_SERIES | recording_rule_names()
    unknown = {
        (rule.get("alert") or rule["record"], name)
        for rule in rules()
        for name in metric_names(rule["expr"])
        if name not in known
    }
    assert unknown == set()
