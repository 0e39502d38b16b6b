"""/metrics at thousands of checks is sent in chunks rendered as they are read: the same
page as the whole body, never held in memory at once."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from synth.model import HttpTimings, Phase, RequestRecord, RunResult, Status, StepResult
from synth.outputs import metrics as metrics_module
from synth.outputs.metrics import Metrics

CHECKS = 1500  # ~4 MB of lean series: several chunks
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def result(check: str) -> RunResult:
    timings = HttpTimings(dns_s=0.001, connect_s=0.002, first_byte_s=0.01, body_s=0.001)
    request = RequestRecord(
        method="GET", url="http://shop.test/ok", status_code=200, timings=timings, trace_id="ab"
    )
    step = StepResult(name="get", status=Status.PASSED, duration_s=0.02, requests=(request,))
    return RunResult(
        run_id=f"run-{check}",
        check=check,
        service="shop",
        environment="prod",
        phase=Phase.SCHEDULED,
        location="eu-1",
        status=Status.PASSED,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.05,
        steps=(step,),
        trace_id="ab",
    )


def busy_metrics() -> Metrics:
    metrics = Metrics()
    for i in range(CHECKS):
        metrics.observe_run(result(f"c{i:04d}"))
    return metrics


def test_chunks_make_up_the_whole_page_in_both_formats() -> None:
    metrics = busy_metrics()
    for accept in (None, OPENMETRICS):
        chunks, content_type = metrics.stream(accept)
        parts = list(chunks)
        assert len(parts) >= 3  # the page is not built whole
        assert max(len(p) for p in parts) < 2 * metrics_module.CHUNK_CHARS
        body = b"".join(parts)
        assert (body, content_type) == metrics.negotiate(accept)
        text = body.decode()
        if accept == OPENMETRICS:
            assert text.endswith("# EOF\n")
            assert text.count("# EOF") == 1
        counts = [
            s
            for family in text_string_to_metric_families(text.replace("# EOF\n", ""))
            for s in family.samples
            if s.name == "synth_check_run_duration_seconds_count"
        ]
        assert len(counts) == CHECKS
