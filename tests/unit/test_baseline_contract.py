"""Learning the response contract from JSON shapes, and judging runs against a baseline."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from synth.baseline.compare import compare, with_findings
from synth.baseline.contract import Contract
from synth.baseline.record import StepBaseline, effective, fragments
from synth.baseline.shape import container, json_shape
from synth.baseline.sketch import Sketch
from synth.baseline.window import RecentLatency, WindowStats
from synth.config import BaselineSettings
from synth.model import (
    DeployContext,
    FailureType,
    HttpTimings,
    Phase,
    RequestRecord,
    RunResult,
    Severity,
    Status,
    StepResult,
)

ORDER = {"order": {"id": "o-1", "total": 12.5, "items": [{"id": "p1", "qty": 2}], "note": None}}


def test_shape_lists_paths_and_types_never_values() -> None:
    shape = json_shape(ORDER)
    assert shape == (
        ("order", "object"),
        ("order.id", "string"),
        ("order.items", "array"),
        ("order.items[].id", "string"),
        ("order.items[].qty", "number"),
        ("order.note", "null"),
        ("order.total", "number"),
    )
    assert "o-1" not in repr(shape)


def test_shape_hides_identifier_keys_and_secrets() -> None:
    doc = {"sessions": {"5f0c6a7e-1b2c-4d3e-8f9a-0b1c2d3e4f5a": {"ok": True}}, "s3cr3t": 1}
    shape = dict(json_shape(doc, redact=lambda text: text.replace("s3cr3t", "***")))
    assert shape == {
        "sessions": "object",
        "sessions.*": "object",
        "sessions.*.ok": "boolean",
        "*": "number",
    }


def test_shape_is_bounded() -> None:
    wide = {f"k{i}": {"a": [1, "x", {"b": 2}]} for i in range(1000)}
    assert len(json_shape(wide)) <= 256
    deep: dict[str, object] = {}
    node = deep
    for _ in range(50):
        node["d"] = {}
        node = node["d"]  # type: ignore[assignment]
    assert max(len(path.split(".")) for path, _ in json_shape(deep)) <= 8


def test_container_of_a_path() -> None:
    assert container("order.items[].id") == "order.items"
    assert container("order.total") == "order"
    assert container("total") == ""
    assert container("tags[]") == "tags"


def test_contract_learns_presence_and_types_and_merges() -> None:
    one, two = Contract(), Contract()
    one.add(json_shape({"a": 1, "b": "x"}))
    one.add(json_shape({"a": 2}))
    two.add(json_shape({"a": "3", "b": "y"}))
    assert one.presence("a") == 1.0
    assert one.presence("b") == 0.5
    one.merge(two)
    assert one.samples == 3
    assert one.fields["a"].types == {"number": 2, "string": 1}
    assert one.presence("b") == pytest.approx(2 / 3)
    assert Contract.from_dict(one.to_dict()) == one


# -- comparison ---------------------------------------------------------------------------------


def step(name: str, duration: float, body: object, status: Status = Status.PASSED) -> StepResult:
    request = RequestRecord(
        "GET", "http://shop/x", 200, HttpTimings(total_s=duration), json_shape=json_shape(body)
    )
    return StepResult(name=name, status=status, duration_s=duration, requests=(request,))


def run(*steps: StepResult, env: str = "staging", phase: Phase = Phase.PREPROD) -> RunResult:
    return RunResult(
        run_id="r",
        check="checkout",
        service="shop",
        environment=env,
        phase=phase,
        location="local",
        status=Status.PASSED,
        started_at=datetime.now(UTC),
        duration_s=sum(s.duration_s for s in steps),
        steps=steps,
    )


def baseline(runs: int = 20, latency: float = 0.1, body: object = ORDER) -> dict[str, StepBaseline]:
    results = [run(step("list", latency, {"items": []}), step("order", latency, body))] * runs
    return {b.step: b for b in fragments(results, "v1")}


SETTINGS = BaselineSettings(from_env="staging", window_min_samples=1)


def judge(result: RunResult, base: dict[str, StepBaseline], p95: float | None = None):  # type: ignore[no-untyped-def]
    def recent(name: str) -> WindowStats:
        value = p95 if p95 is not None else result.steps[0].duration_s
        return WindowStats(value, value, 50)

    return compare(result, base, recent, SETTINGS)


def test_fragments_count_runs_successes_latency_and_contract() -> None:
    failed = run(step("order", 5.0, {"error": "x"}, Status.FAILED))
    found = fragments([run(step("order", 0.1, ORDER)), failed], "v7")
    assert len(found) == 1
    only = found[0]
    assert (only.check, only.environment, only.step, only.version) == (
        "checkout",
        "staging",
        "order",
        "v7",
    )
    assert (only.runs, only.passed, only.success_ratio) == (2, 1, 0.5)
    assert only.latency.count == 1  # a failed step says nothing about latency or contract
    assert "error" not in only.contract.fields
    assert StepBaseline.from_dict(only.to_dict()).to_dict() == only.to_dict()


def test_type_change_is_a_schema_finding_with_a_readable_message() -> None:
    changed = {"order": {**ORDER["order"], "total": "12.50"}}  # type: ignore[dict-item]
    result = run(step("list", 0.1, {"items": []}), step("order", 0.1, changed), env="production")
    comparison = judge(result, baseline())
    assert [(f.step, f.kind, f.field) for f in comparison.findings] == [
        ("order", "type_changed", "order.total")
    ]
    finding = comparison.findings[0]
    assert finding.type is FailureType.SCHEMA
    assert finding.message == "step `order`: field `order.total` changed from number to string"


def test_missing_and_new_fields_follow_the_policy() -> None:
    body = {
        "order": {"id": "o-1", "items": [{"id": "p1", "qty": 2}], "note": None, "extra": {"x": 1}}
    }
    result = run(step("order", 0.1, body), env="production")
    comparison = judge(result, baseline())
    found = {(f.kind, f.field, f.severity) for f in comparison.findings}
    # Only the top new path is reported, not `order.extra.x` too.
    assert found == {
        ("missing", "order.total", Severity.FAIL),
        ("new_field", "order.extra", Severity.WARN),
    }


def test_an_empty_array_is_not_missing_its_item_fields() -> None:
    body = {"order": {**ORDER["order"], "items": []}}  # type: ignore[dict-item]
    result = run(step("order", 0.1, body), env="production")
    assert judge(result, baseline()).findings == ()


def test_latency_regression_needs_factor_and_absolute_increase() -> None:
    result = run(step("list", 0.412, {"items": []}), env="production")
    base = baseline(latency=0.12)
    comparison = judge(result, base, p95=0.412)
    (finding,) = comparison.findings
    assert finding.type is FailureType.REGRESSION
    assert finding.message == "step `list`: p95 412 ms vs baseline 120 ms (3.4x)"
    assert comparison.ratios["list"] == pytest.approx(3.43, rel=0.02)
    # 3x of a 2 ms baseline is only 4 ms more: noise, not a regression.
    tiny = baseline(latency=0.002)
    assert judge(run(step("list", 0.006, {"items": []})), tiny, p95=0.006).findings == ()


def test_too_few_samples_means_no_judgement_and_the_run_says_so() -> None:
    result = run(step("list", 5.0, {"items": "x"}), env="production")
    comparison = judge(result, baseline(runs=5))
    assert [(f.kind, f.severity, f.message) for f in comparison.findings] == [
        ("not_judged", Severity.WARN, "step `list`: baseline has 5 of 20 samples: not judged")
    ]
    assert comparison.samples == {"list": 5}
    assert comparison.ratios == {}
    assert with_findings(result, comparison.findings).passed
    # A step the baseline never saw is not judged either, and says so.
    other = run(step("search", 5.0, {}), env="production")
    assert [f.message for f in judge(other, baseline()).findings] == [
        "step `search`: baseline has 0 of 20 samples: not judged"
    ]


def test_with_findings_returns_a_new_failed_result_and_keeps_the_original() -> None:
    result = run(step("list", 0.412, {"items": []}), env="production")
    comparison = judge(result, baseline(latency=0.12), p95=0.412)
    judged = with_findings(result, comparison.findings)
    assert result.passed
    assert result.findings == ()
    assert judged.status is Status.FAILED
    assert judged.failure_type is FailureType.REGRESSION
    assert judged.failed_step == "list"
    assert judged.findings == comparison.findings
    warn_only = dataclasses.replace(comparison.findings[0], severity=Severity.WARN)
    assert with_findings(result, (warn_only,)).passed


def test_effective_prefers_the_newest_version_with_enough_samples() -> None:
    new = StepBaseline("c", "staging", "s", "v2", latency=Sketch.of([0.1] * 3))
    old = StepBaseline("c", "staging", "s", "v1", latency=Sketch.of([0.1] * 30))
    assert effective([new, old], 20)["s"].version == "v1"
    assert effective([new, old], 2)["s"].version == "v2"


def test_window_keeps_the_last_runs_and_restarts_on_a_new_deploy() -> None:
    window = RecentLatency(size=3)
    for duration in (0.1, 0.2, 0.3, 0.4):
        window.add(run(step("list", duration, {}), env="production", phase=Phase.SCHEDULED))
    stats = window.stats("checkout", "production", "list")
    assert stats is not None
    assert (stats.samples, stats.p95_s, stats.p50_s) == (3, 0.4, 0.3)
    deployed = dataclasses.replace(
        run(step("list", 0.9, {}), env="production", phase=Phase.DEPLOY),
        deploy=DeployContext("d1", "shop", "production", "2.0"),
    )
    window.add(deployed)
    stats = window.stats("checkout", "production", "list")
    assert stats is not None
    assert stats.samples == 1
    assert stats.recent == (0.9,)
    # The old version's window is kept, for a regression it showed to stand.
    assert stats.previous is not None
    assert (stats.previous.samples, stats.previous.p95_s) == (3, 0.4)
