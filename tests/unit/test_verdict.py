"""decide: a deploy's verdict from the runs its verification produced."""

from __future__ import annotations

from datetime import UTC, datetime

from synth.model import Failure, FailureType, Phase, RunResult, Status
from synth.verdict import FailingCheck, VerdictResult, decide

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def run(
    check: str,
    failure_type: FailureType | None = None,
    *,
    step: str | None = None,
    message: str = "",
    run_id: str | None = None,
) -> RunResult:
    failure = Failure(type=failure_type, message=message) if failure_type else None
    return RunResult(
        run_id=run_id or f"run-{check}",
        check=check,
        service="shop",
        environment="staging",
        phase=Phase.DEPLOY,
        location="local",
        status=Status.FAILED if failure else Status.PASSED,
        started_at=T0,
        duration_s=0.5,
        steps=(),
        trace_id=f"trace-{check}",
        failure=failure,
        failed_step=step,
    )


def test_all_passed_is_pass() -> None:
    verdict = decide([run("checkout"), run("browse"), run("checkout", run_id="r2")])
    assert verdict.result is VerdictResult.PASS
    assert verdict.reason == "all 3 runs passed"
    assert verdict.runs == 3
    assert verdict.checks == ("browse", "checkout")
    assert verdict.failing == ()


def test_no_results_is_error() -> None:
    verdict = decide([])
    assert verdict.result is VerdictResult.ERROR
    assert verdict.reason == "no checks ran"
    assert verdict.runs == 0
    assert verdict.checks == ()


def test_given_error_wins_over_results() -> None:
    verdict = decide([run("checkout")], error="settle interrupted: agent shutting down")
    assert verdict.result is VerdictResult.ERROR
    assert verdict.reason == "settle interrupted: agent shutting down"
    assert verdict.runs == 1
    assert verdict.checks == ("checkout",)


def test_target_failure_is_fail_naming_check_and_step() -> None:
    results = [
        run("browse"),
        run(
            "checkout",
            FailureType.HTTP_STATUS,
            step="check out",
            message="expected status 201, got 503",
        ),
    ]
    verdict = decide(results)
    assert verdict.result is VerdictResult.FAIL
    assert verdict.reason == "1 of 2 runs failed: checkout (check out)"
    assert verdict.failing == (
        FailingCheck(
            check="checkout",
            step="check out",
            failure_type="http_status",
            message="expected status 201, got 503",
            run_id="run-checkout",
            trace_id="trace-checkout",
        ),
    )


def test_several_failures_are_each_named_once_sorted() -> None:
    results = [
        run("checkout", FailureType.TIMEOUT, step="log in", run_id="a"),
        run("checkout", FailureType.TIMEOUT, step="log in", run_id="b"),
        run("browse", FailureType.SCHEMA, step="list products"),
    ]
    verdict = decide(results)
    assert verdict.result is VerdictResult.FAIL
    assert verdict.reason == "3 of 3 runs failed: browse (list products), checkout (log in)"
    assert [f.run_id for f in verdict.failing] == ["a", "b", "run-browse"]


def test_script_errors_only_is_error() -> None:
    results = [run("browse"), run("checkout", FailureType.SCRIPT_ERROR, step="log in")]
    verdict = decide(results)
    assert verdict.result is VerdictResult.ERROR
    assert "script_error" in verdict.reason
    assert "checks themselves are broken" in verdict.reason
    assert [(f.check, f.failure_type) for f in verdict.failing] == [("checkout", "script_error")]


def test_target_failure_with_script_error_is_fail_naming_only_the_target_failure() -> None:
    results = [
        run("browse", FailureType.SCRIPT_ERROR, step="health"),
        run("checkout", FailureType.ASSERTION, step="add to cart"),
    ]
    verdict = decide(results)
    assert verdict.result is VerdictResult.FAIL
    assert verdict.reason == "1 of 2 runs failed: checkout (add to cart)"
    assert {f.check for f in verdict.failing} == {"browse", "checkout"}


def test_to_dict() -> None:
    verdict = decide([run("checkout", FailureType.AUTH, step="log in", message="401")])
    assert verdict.to_dict() == {
        "result": "fail",
        "reason": "1 of 1 runs failed: checkout (log in)",
        "runs": 1,
        "checks": ["checkout"],
        "failing": [
            {
                "check": "checkout",
                "step": "log in",
                "failure_type": "auth",
                "message": "401",
                "run_id": "run-checkout",
                "trace_id": "trace-checkout",
            }
        ],
        "comparison": [],
    }
