"""The terminal, JSON and JUnit reports, rendered from hand-built RunResults."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import traceback
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from synth import __version__
from synth.codec import run_from_dict, run_to_dict
from synth.model import (
    Artifact,
    DeployContext,
    Failure,
    FailureType,
    HttpTimings,
    Phase,
    RequestRecord,
    RunResult,
    Status,
    StepResult,
)
from synth.outputs.report_json import (
    JSON_SCHEMA,
    SCHEMA_VERSION,
    json_report,
    write_json_report,
)
from synth.outputs.report_junit import junit_report, write_junit_report
from synth.outputs.report_terminal import (
    QUIET,
    VERBOSE,
    TerminalReporter,
    color_default,
    summary_line,
)
from synth.outputs.report_text import format_duration, trim_traceback

T0 = datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
URL = "http://127.0.0.1:8080/api/products"
SECRET = "s3cr3t-header-value-7f1c"


# -- sample runs ----------------------------------------------------------------------------


def request(status: int | None = 200, total: float = 0.1, **timings: float) -> RequestRecord:
    return RequestRecord(
        method="GET",
        url=URL,
        status_code=status,
        timings=HttpTimings(total_s=total, **timings),
        bytes_received=42,
        trace_id=TRACE,
        span_id="00f067aa0ba902b7",
    )


def run(name: str, steps: tuple[StepResult, ...], **fields: Any) -> RunResult:
    failed = next((s for s in steps if s.status is Status.FAILED), None)
    base = RunResult(
        run_id=f"run-{name}",
        check=name,
        service="shop",
        environment="staging",
        phase=Phase.ADHOC,
        location="local",
        status=Status.FAILED if failed else Status.PASSED,
        started_at=T0,
        duration_s=sum(s.duration_s for s in steps),
        steps=steps,
        trace_id=TRACE,
        failure=failed.failure if failed else None,
        failed_step=failed.name if failed else None,
    )
    return dataclasses.replace(base, **fields)


def passing() -> RunResult:
    return run(
        "checkout",
        (
            StepResult("log in", Status.PASSED, 0.045, 0.0, (request(total=0.045),)),
            StepResult("list products", Status.PASSED, 0.120, 0.046, (request(total=0.12),)),
        ),
        duration_s=1.234,
        tags=("smoke",),
    )


HTTP_FAILURE = Failure(
    type=FailureType.HTTP_STATUS,
    message="expected status 200, got 503",
    expected="200",
    actual="503",
    method="GET",
    url=URL,
    response_excerpt='{"error": "service unavailable"}',
    request_headers=(("Authorization", "***"), ("Accept", "application/json")),
    response_headers=(("content-type", "application/json"), ("retry-after", "5")),
)


def http_status_failure() -> RunResult:
    return run(
        "browse",
        (
            StepResult("health", Status.PASSED, 0.003, 0.0, (request(total=0.003),)),
            StepResult(
                "list products",
                Status.FAILED,
                0.210,
                0.004,
                (request(503, 0.21, dns_s=0.001, connect_s=0.002, first_byte_s=0.2),),
                HTTP_FAILURE,
            ),
        ),
        duration_s=0.31,
        attempts=2,
    )


def _price(item: dict[str, int]) -> int:
    return item["price"]


def _line_total(item: dict[str, int]) -> int:
    return _price(item) * 2


def _cart_total(items: list[dict[str, int]]) -> int:
    return sum(_line_total(item) for item in items)


def _checkout() -> int:
    return _cart_total([{"qty": 1}])


def real_traceback() -> str:
    try:
        _checkout()
    except KeyError as error:
        return "".join(traceback.format_exception(error))
    raise AssertionError("unreachable")


def script_error() -> RunResult:
    failure = Failure(
        type=FailureType.SCRIPT_ERROR,
        message="check raised KeyError: 'price'",
        traceback=real_traceback(),
    )
    return run("cart", (StepResult("add to cart", Status.FAILED, 0.002, 0.0, (), failure),))


def timeout() -> RunResult:
    failure = Failure(
        type=FailureType.TIMEOUT,
        message="check timed out after 5s during step 'search'",
        expected="whole check within 5s",
        actual=f"still running: GET {URL}",
        method="GET",
        url=URL,
    )
    return run("search", (StepResult("search", Status.FAILED, 5.0, 0.0, (), failure),))


def probe() -> RunResult:
    details = {"days_left": 12, "not_after": "2024-05-13T00:00:00Z", "sans": ["shop.example"]}
    step = StepResult("certificate", Status.PASSED, 0.034, 0.0, (), None, details)
    deploy = DeployContext("d-42", "shop", "staging", "1.4.2", "abc1234")
    return run("tls", (step,), phase=Phase.DEPLOY, deploy=deploy)


def samples() -> list[RunResult]:
    return [passing(), http_status_failure(), script_error(), timeout(), probe()]


def render(result: RunResult, **options: Any) -> str:
    stream = io.StringIO()
    TerminalReporter(stream, color=False, **options).run_finished(result)
    return stream.getvalue()


# -- terminal ---------------------------------------------------------------------------------


def test_terminal_passing_run_lists_its_steps() -> None:
    assert render(passing()) == (
        "✓ checkout  staging  1.23s\n    ✓ log in           45ms\n    ✓ list products   120ms\n"
    )


def test_terminal_failure_shows_the_detail_block_and_attempts() -> None:
    assert render(http_status_failure()) == (
        "✗ browse  staging  310ms  (2 attempts)\n"
        "    ✓ health            3ms\n"
        "    ✗ list products   210ms   http_status\n"
        "        expected status 200, got 503\n"
        f"        GET {URL}\n"
        "        expected: 200\n"
        "        actual:   503\n"
        '        response: {"error": "service unavailable"}\n'
        f"        trace:    {TRACE}\n"
    )


def test_terminal_script_error_shows_the_last_frames_of_the_traceback() -> None:
    text = render(script_error())
    assert "✗ add to cart     2ms   script_error" in text
    assert "        check raised KeyError: 'price'\n" in text
    assert "        traceback:\n" in text
    assert "          Traceback (most recent call last):\n" in text
    assert "earlier frames omitted" in text
    assert text.rstrip().endswith("KeyError: 'price'")
    assert text.count('File "') == 3
    # Verbose output keeps every frame: real_traceback, _checkout, _cart_total, the
    # generator expression, _line_total and _price.
    assert render(script_error(), verbosity=VERBOSE).count('File "') == 6


def test_terminal_timeout_names_what_was_still_running() -> None:
    text = render(timeout())
    assert "✗ search  staging  5s\n" in text
    assert "    ✗ search      5s   timeout\n" in text
    assert "        expected: whole check within 5s\n" in text
    assert f"        actual:   still running: GET {URL}\n" in text


def test_terminal_shows_probe_details_when_verbose_only() -> None:
    assert render(probe()) == "✓ tls  staging  34ms\n    ✓ certificate    34ms\n"
    assert render(probe(), verbosity=VERBOSE) == (
        "✓ tls  staging  34ms\n"
        "    ✓ certificate    34ms\n"
        "        days_left: 12\n"
        "        not_after: 2024-05-13T00:00:00Z\n"
        '        sans: ["shop.example"]\n'
    )


def test_a_run_level_failure_is_shown_after_passing_steps() -> None:
    regression = Failure(
        FailureType.REGRESSION,
        "p95 latency 900ms is 4.1x the baseline",
        expected="p95 <= 330ms",
        actual="900ms",
    )
    result = dataclasses.replace(passing(), status=Status.FAILED, failure=regression)
    assert render(result).endswith(
        "    ✓ list products   120ms\n"
        "    ✗ regression\n"
        "        p95 latency 900ms is 4.1x the baseline\n"
        "        expected: p95 <= 330ms\n"
        "        actual:   900ms\n"
        f"        trace:    {TRACE}\n"
    )
    case = ET.fromstring(junit_report([result], env="staging", hostname="h"))[0][1]
    outcome = case.find("failure")
    assert outcome is not None
    assert outcome.get("type") == "regression"
    assert "expected: p95 <= 330ms\n" in (outcome.text or "")


def test_terminal_quiet_prints_only_what_failed() -> None:
    assert render(passing(), verbosity=QUIET) == "✓ checkout  staging  1.23s\n"
    text = render(http_status_failure(), verbosity=QUIET)
    assert "health" not in text
    assert "✗ list products   210ms   http_status" in text


def test_terminal_verbose_adds_requests_with_phase_timings_and_progress() -> None:
    stream = io.StringIO()
    reporter = TerminalReporter(stream, color=False, verbosity=VERBOSE)
    reporter.run_started("browse", "staging")
    reporter.run_finished(http_status_failure())
    text = stream.getvalue()
    assert text.startswith("… browse  staging\n")
    assert f"        GET {URL}  503  210ms  (dns 1ms, connect 2ms, first_byte 200ms)\n" in text


def test_terminal_is_quiet_when_a_run_starts_by_default() -> None:
    stream = io.StringIO()
    TerminalReporter(stream, color=False).run_started("browse", "staging")
    assert stream.getvalue() == ""


def test_terminal_escapes_control_characters_from_the_response() -> None:
    failure = dataclasses.replace(HTTP_FAILURE, response_excerpt="oops\x1b[2J\rgone\x9b")
    result = run("x", (StepResult("s", Status.FAILED, 0.1, 0.0, (), failure),))
    text = render(result)
    assert "\x1b" not in text
    assert "\x9b" not in text
    assert "\r" not in text
    assert "response: oops\\x1b[2J\\x0dgone\\x9b\n" in text


def test_terminal_colours_only_when_asked() -> None:
    stream = io.StringIO()
    TerminalReporter(stream, color=True).run_finished(http_status_failure())
    coloured = stream.getvalue()
    assert "\x1b[31m✗\x1b[0m \x1b[1mbrowse\x1b[0m" in coloured
    assert "\x1b[32m✓\x1b[0m health" in coloured
    plain = io.StringIO()
    TerminalReporter(plain).run_finished(http_status_failure())  # StringIO is not a tty
    assert "\x1b" not in plain.getvalue()


def test_colour_default_follows_the_tty_and_no_color() -> None:
    master, replica = os.openpty()
    try:
        with open(replica, "w", encoding="utf-8", closefd=False) as tty:
            assert color_default(tty, environ={})
            assert not color_default(tty, environ={"NO_COLOR": "1"})
            assert color_default(tty, environ={"NO_COLOR": ""})  # empty means unset
        assert not color_default(io.StringIO(), environ={})
    finally:
        os.close(master)
        os.close(replica)


def test_terminal_falls_back_to_ascii_when_the_stream_cannot_encode_symbols() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
    failure = dataclasses.replace(HTTP_FAILURE, response_excerpt="prix: 12 € …")
    result = run("browse", (StepResult("list products", Status.FAILED, 0.2, 0.0, (), failure),))
    reporter = TerminalReporter(stream, color=False)
    reporter.run_finished(passing())
    reporter.run_finished(result)
    reporter.summary([passing(), result])
    text = raw.getvalue().decode("ascii")
    assert text.startswith("PASS checkout  staging  1.23s\n    PASS log in")
    assert "FAIL browse  staging  200ms\n    FAIL list products   200ms   http_status" in text
    assert "response: prix: 12 ? ?\n" in text


def test_summary_names_the_failed_checks() -> None:
    results = [passing(), http_status_failure(), probe()]
    assert summary_line(results, 1.5) == "3 checks: 2 passed, 1 failed (browse) in 1.5s"
    assert summary_line([passing()]) == "1 check: 1 passed, 0 failed in 1.23s"
    assert summary_line([]) == "no checks ran"
    prod = dataclasses.replace(http_status_failure(), environment="prod")
    skipped = dataclasses.replace(passing(), status=Status.SKIPPED)
    assert summary_line([http_status_failure(), prod, skipped], 2) == (
        "3 checks: 0 passed, 2 failed (browse@staging, browse@prod), 1 skipped in 2s"
    )
    stream = io.StringIO()
    TerminalReporter(stream, color=False).summary(results, 1.5)
    assert stream.getvalue() == "3 checks: 2 passed, 1 failed (browse) in 1.5s\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0ms"),
        (0.0004, "<1ms"),
        (0.003, "3ms"),
        (0.9994, "999ms"),
        (0.9996, "1s"),
        (1.234, "1.23s"),
        (1.5, "1.5s"),
        (59.9, "59.9s"),
        (59.999, "1m00s"),
        (125, "2m05s"),
        (3720, "1h02m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_trim_traceback_keeps_only_the_exception_that_escaped() -> None:
    try:
        try:
            _checkout()
        except KeyError as cause:
            raise RuntimeError("wrapped") from cause
    except RuntimeError as error:
        text = "".join(traceback.format_exception(error))
    lines = trim_traceback(text, 3)
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "RuntimeError: wrapped"
    assert not any("KeyError" in line for line in lines)
    assert trim_traceback(text, None) == text.rstrip("\n").splitlines()


# -- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize("result", samples(), ids=lambda r: r.check)
def test_json_round_trip_gives_an_equal_run(result: RunResult) -> None:
    text = json.dumps(run_to_dict(result))
    assert run_from_dict(json.loads(text)) == result


def test_json_round_trip_of_a_run_in_another_time_zone() -> None:
    local = passing().started_at.astimezone(timezone(timedelta(hours=2)))
    result = dataclasses.replace(passing(), started_at=local)
    data = run_to_dict(result)
    assert data["started_at"] == "2024-05-01T12:00:00.250000Z"
    assert run_from_dict(data) == result


def test_a_run_stored_before_failures_kept_headers_decodes_without_them() -> None:
    data = run_to_dict(http_status_failure())
    failure = data["steps"][1]["failure"]
    assert failure["request_headers"] == [["Authorization", "***"], ["Accept", "application/json"]]
    del failure["request_headers"], failure["response_headers"]
    decoded = run_from_dict(data).steps[1].failure
    assert decoded is not None
    assert (decoded.request_headers, decoded.response_headers) == ((), ())
    failure["request_headers"] = [["only a name"]]
    with pytest.raises(ValueError, match="request_headers"):
        run_from_dict(data)


def test_artifacts_are_listed_by_metadata_and_never_carry_their_bytes() -> None:
    secret_bytes = b"\x89PNG pixels of the page"
    files = (
        Artifact("screenshot.png", "image/png", secret_bytes, "list products"),
        Artifact("console.log", "text/plain", b"TypeError: x is undefined\n"),
    )
    result = dataclasses.replace(http_status_failure(), artifacts=files)
    data = run_to_dict(result)
    assert data["artifacts"] == [
        {
            "name": "screenshot.png",
            "content_type": "image/png",
            "size": len(secret_bytes),
            "step": "list products",
        },
        {"name": "console.log", "content_type": "text/plain", "size": 26, "step": None},
    ]
    report = json_report([result], env="staging", started_at=T0, duration_s=1)
    text = json.dumps(report)
    jsonschema.validate(json.loads(text), JSON_SCHEMA)
    assert "pixels" not in text
    assert "pixels" not in junit_report([result], env="staging", hostname="h")
    # The record decodes with or without the key (runs stored before artifacts have none);
    # the decoded run has no artifacts: their bytes are not in the record.
    assert run_from_dict(data) == http_status_failure()
    del data["artifacts"]
    assert run_from_dict(data) == http_status_failure()


def test_json_report_fields_and_schema() -> None:
    results = samples()
    report = json_report(results, env="staging", started_at=T0, duration_s=7.5)
    jsonschema.Draft202012Validator.check_schema(JSON_SCHEMA)
    jsonschema.validate(json.loads(json.dumps(report)), JSON_SCHEMA)
    assert report["schema_version"] == SCHEMA_VERSION == 1
    assert report["synth_version"] == __version__
    assert report["environment"] == "staging"
    assert report["started_at"] == "2024-05-01T12:00:00.250000Z"
    assert report["duration_s"] == 7.5
    assert report["summary"] == {"total": 5, "passed": 2, "failed": 3, "skipped": 0}
    assert [r["check"] for r in report["runs"]] == ["checkout", "browse", "cart", "search", "tls"]

    browse = report["runs"][1]
    assert list(browse) == [
        "run_id", "check", "service", "environment", "phase", "location", "status",
        "failure_type", "failed_step", "attempts", "outcome",
        "failed_attempts", "attempt_location", "trace_id", "started_at", "duration_s",
        "tags", "deploy", "failure", "steps", "findings", "artifacts",
    ]  # fmt: skip
    assert browse["status"] == "failed"
    assert browse["failure_type"] == "http_status"
    assert browse["failed_step"] == "list products"
    assert browse["attempts"] == 2
    assert browse["deploy"] is None
    assert browse["failure"]["response_excerpt"] == '{"error": "service unavailable"}'
    step = browse["steps"][1]
    assert step["failure"] == browse["failure"]
    assert step["requests"][0] == {
        "method": "GET",
        "url": URL,
        "status_code": 503,
        "bytes_received": 42,
        "body_truncated": False,
        "trace_id": TRACE,
        "span_id": "00f067aa0ba902b7",
        "timings": {
            "dns_s": 0.001,
            "connect_s": 0.002,
            "tls_s": None,
            "send_s": None,
            "first_byte_s": 0.2,
            "body_s": None,
            "total_s": 0.21,
        },
        "json_shape": [],
    }
    tls = report["runs"][4]
    assert tls["phase"] == "deploy"
    assert tls["deploy"] == {
        "deploy_id": "d-42",
        "service": "shop",
        "environment": "staging",
        "version": "1.4.2",
        "commit": "abc1234",
    }
    assert tls["steps"][0]["details"]["days_left"] == 12
    assert report["runs"][0]["failure"] is None
    assert report["runs"][0]["tags"] == ["smoke"]
    assert "Traceback (most recent call last)" in report["runs"][2]["failure"]["traceback"]
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
    assert all(rfc3339.match(r["started_at"]) for r in report["runs"])


def test_json_details_that_are_not_json_become_text() -> None:
    step = StepResult(
        "dns", Status.PASSED, 0.01, details={"at": T0, "ratio": float("nan"), "ips": ("a", "b")}
    )
    data = run_to_dict(run("dns", (step,)))
    assert data["steps"][0]["details"] == {
        "at": "2024-05-01T12:00:00.250000Z",
        "ratio": "nan",
        "ips": ["a", "b"],
    }
    json.dumps(data, allow_nan=False)


def test_run_from_dict_names_what_is_wrong() -> None:
    data = run_to_dict(http_status_failure())
    missing = {k: v for k, v in data.items() if k != "check"}
    with pytest.raises(ValueError, match="missing field 'check'"):
        run_from_dict(missing)
    with pytest.raises(ValueError, match="'attempts' must be an integer"):
        run_from_dict({**data, "attempts": "2"})
    steps = json.loads(json.dumps(data["steps"]))
    steps[1]["requests"][0]["status_code"] = "503"
    with pytest.raises(ValueError, match="'status_code' must be an integer"):
        run_from_dict({**data, "steps": steps})
    with pytest.raises(ValueError, match="'bogus' is not a valid Phase"):
        run_from_dict({**data, "phase": "bogus"})
    with pytest.raises(ValueError, match="UTC offset"):
        run_from_dict({**data, "started_at": "2024-05-01T12:00:00"})


def test_write_json_report_to_a_file_and_to_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out" / "report.json"
    write_json_report(path, samples(), env="staging", started_at=T0, duration_s=1.0)
    from_file = json.loads(path.read_text(encoding="utf-8"))
    assert from_file["summary"]["total"] == 5
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no temp file left
    write_json_report("-", samples(), env="staging", started_at=T0, duration_s=1.0)
    assert json.loads(capsys.readouterr().out) == from_file


# -- JUnit ------------------------------------------------------------------------------------

SUITE_ATTRIBUTES = {"name", "tests", "failures", "errors", "skipped", "time", "timestamp"}
CASE_CHILDREN = {"failure", "error", "skipped", "system-out", "system-err"}


def check_junit_structure(root: ET.Element) -> None:
    """The structure Jenkins, GitLab and GitHub's reporters read (the Ant JUnit schema)."""
    assert root.tag == "testsuites"
    for suite in root:
        assert suite.tag == "testsuite"
        assert set(suite.attrib) >= SUITE_ATTRIBUTES
        assert suite.get("hostname")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", suite.get("timestamp", ""))
        cases = suite.findall("testcase")
        assert [c.tag for c in suite] == ["properties"] + ["testcase"] * len(cases)
        assert int(suite.get("tests", "")) == len(cases)
        for kind in ("failures", "errors", "skipped"):
            tag = kind.rstrip("s") if kind != "skipped" else "skipped"
            assert int(suite.get(kind, "")) == sum(1 for c in cases if c.find(tag) is not None)
        for case in cases:
            assert case.get("name")
            assert case.get("classname")
            float(case.get("time", ""))
            assert {child.tag for child in case} <= CASE_CHILDREN
            for outcome in case.findall("failure") + case.findall("error"):
                assert outcome.get("message")
                assert outcome.get("type")
    for kind in ("tests", "failures", "errors", "skipped"):
        assert root.get(kind) == root[0].get(kind)


def test_junit_counts_outcomes_and_carries_the_detail_block() -> None:
    xml = junit_report(samples(), env="staging", hostname="ci-runner")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(xml)
    check_junit_structure(root)
    suite = root[0]
    assert suite.get("name") == "synth.staging"
    assert suite.get("hostname") == "ci-runner"
    assert suite.get("timestamp") == "2024-05-01T12:00:00"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "2", "1")
    assert suite.get("time") == "5.000"  # the search run's 5s timeout is the longest
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {"environment": "staging", "synth_version": __version__}

    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["checkout"].get("classname") == "synth.staging.checkout"
    assert cases["checkout"].get("time") == "1.234"
    assert list(cases["checkout"]) == [cases["checkout"][0]]  # system-out only
    out = cases["checkout"].findtext("system-out", "")
    assert "  PASS log in           45ms\n" in out
    assert "  PASS list products   120ms\n" in out

    failure = cases["browse"].find("failure")
    assert failure is not None
    assert failure.get("type") == "http_status"
    assert failure.get("message") == "http_status: expected status 200, got 503"
    assert failure.text == (
        "step:     list products\n"
        "expected status 200, got 503\n"
        f"GET {URL}\n"
        "expected: 200\n"
        "actual:   503\n"
        'response: {"error": "service unavailable"}\n'
        f"trace:    {TRACE}\n"
        "attempts: 2\n"
    )

    error = cases["cart"].find("error")
    assert error is not None
    assert cases["cart"].find("failure") is None
    assert error.get("type") == "script_error"
    assert error.get("message") == "script_error: check raised KeyError: 'price'"
    assert (error.text or "").count('File "') == 6  # the whole traceback

    assert cases["search"].find("failure") is not None
    tls_out = cases["tls"].findtext("system-out", "")
    assert "      days_left: 12\n" in tls_out
    assert "deploy:   d-42: shop 1.4.2 (abc1234)\n" in tls_out


def test_junit_counts_a_page_script_error_as_the_targets_failure() -> None:
    """The check's own exception is a JUnit error; an error the target's page threw fails
    the target, as the deploy verdict counts it."""
    thrown = Failure(FailureType.SCRIPT_ERROR, "uncaught error in the page", in_target=True)
    step = StepResult("open the shop", Status.FAILED, 0.1, 0.0, (), thrown)
    xml = junit_report([run("page-up", (step,)), script_error()], env="staging", hostname="h")
    suite = ET.fromstring(xml.encode("utf-8")).find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors")) == ("1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["page-up"].find("failure") is not None
    assert cases["page-up"].find("error") is None


def test_junit_escapes_markup_and_strips_characters_xml_forbids() -> None:
    nasty = 'bad <tag> & "quote"\x00\x08\x0b\x1b[31m\ud800\ufffe'
    failure = Failure(FailureType.ASSERTION, f"assertion failed: {nasty}", actual=nasty)
    step = StepResult(f"step {nasty}", Status.FAILED, 0.1, 0.0, (), failure)
    result = run(f"check{nasty}", (step,))
    xml = junit_report([result], env="staging", hostname="h")
    root = ET.fromstring(xml.encode("utf-8"))
    check_junit_structure(root)
    case = root[0][1]
    clean = 'bad <tag> & "quote"[31m'
    assert case.get("name") == f"check{clean}"
    outcome = case.find("failure")
    assert outcome is not None
    assert outcome.get("message") == f"assertion: assertion failed: {clean}"
    assert f"actual:   {clean}\n" in (outcome.text or "")
    for forbidden in ("\x00", "\x08", "\x0b", "\x1b", "\ud800", "\ufffe"):
        assert forbidden not in xml


def test_junit_skipped_and_empty_runs() -> None:
    skipped = dataclasses.replace(passing(), status=Status.SKIPPED)
    root = ET.fromstring(junit_report([skipped], env="prod", hostname="h"))
    check_junit_structure(root)
    assert root[0].get("name") == "synth.prod"
    assert root[0].get("skipped") == "1"
    assert root[0][1].find("skipped") is not None
    empty = ET.fromstring(junit_report([], env="prod", hostname="h"))
    check_junit_structure(empty)
    assert empty[0].get("tests") == "0"


def test_write_junit_report(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit_report(path, samples(), env="staging")
    root = ET.parse(path).getroot()
    check_junit_structure(root)
    assert root[0].get("tests") == "5"


# -- secrets ----------------------------------------------------------------------------------


def test_reports_render_only_the_fields_they_are_given() -> None:
    """A stored record may carry more than a RunResult (here the request's headers and
    body); the reports render the run's own, already-redacted fields and nothing else."""
    data = run_to_dict(http_status_failure())
    imaginary_request = data["steps"][1]["requests"][0]
    imaginary_request["headers"] = {"Authorization": f"Bearer {SECRET}", "X-Custom": SECRET}
    imaginary_request["body"] = f'{{"password": "{SECRET}"}}'
    data["request_headers"] = {"X-Api-Key": SECRET}
    result = run_from_dict(data)
    assert result == http_status_failure()

    stream = io.StringIO()
    reporter = TerminalReporter(stream, color=False, verbosity=VERBOSE)
    reporter.run_finished(result)
    reporter.summary([result])
    outputs = {
        "terminal": stream.getvalue(),
        "json": json.dumps(json_report([result], env="staging", started_at=T0, duration_s=1)),
        "junit": junit_report([result], env="staging", hostname="h"),
    }
    for name, text in outputs.items():
        assert SECRET not in text, name
        assert '{"error": "service unavailable"}' in text.replace('\\"', '"'), name
