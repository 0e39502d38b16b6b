"""Generated step names are bounded labels without secrets; a check's step series are
capped whatever its step names."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from synth.checks.step_names import route_name
from synth.metrics_settings import MetricsSettings
from synth.outputs.metrics import MAX_STEP_LABELS, OTHER_STEPS, Metrics, StepLabels
from synth.redact import Redactor

SECRET = "p@ss word/1"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/orders/8412", "GET /orders/{id}"),
        ("/orders/8412/items/3?expand=1", "GET /orders/{id}/items/{id}"),
        ("/u/5f0c3e1a-9b7d-4c2e-8a1f-0d2b3c4e5f60", "GET /u/{id}"),
        ("/blob/4f9a0c3b2e1d", "GET /blob/{id}"),
        ("/o/ord_8F3k2LmQ9xZt7Wq1", "GET /o/{id}"),
        ("/api/v2/products", "GET /api/v2/products"),
        ("/health", "GET /health"),
        ("https://other.example/a/77", "GET /a/{id}"),
        ("/", "GET /"),
    ],
)
def test_route_name_folds_ids(path: str, expected: str) -> None:
    assert route_name("get", path, Redactor()) == expected


@pytest.mark.parametrize(
    "path",
    [
        f"/x/{SECRET}",
        "/x/p%40ss%20word%2F1",
        "/x/p@ss%20word%2f1",
        "/basic-auth/user/p@ss%20word%2F1",
    ],
)
def test_route_name_never_carries_a_secret(path: str) -> None:
    name = route_name("GET", path, Redactor([SECRET]))
    assert "p@ss" not in name
    assert "p%40ss" not in name
    assert "***" in name


def test_step_labels_fold_past_the_limit_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    folded: list[str] = []
    labels = StepLabels(folded.append, limit=3)
    with caplog.at_level(logging.WARNING):
        got = [labels.label("checkout", f"order {n}") for n in range(6)]
        again = labels.label("checkout", "order 1")
        other_check = labels.label("search", "order 99")
    assert got == ["order 0", "order 1", "order 2", OTHER_STEPS, OTHER_STEPS, OTHER_STEPS]
    assert again == "order 1"
    assert other_check == "order 99"
    assert folded == ["checkout"] * 3
    assert len([r for r in caplog.records if "distinct step names" in r.getMessage()]) == 1


def test_metrics_export_at_most_the_limit_of_step_series_per_check() -> None:
    from datetime import UTC, datetime

    from synth.model import Phase, RunResult, Status, StepResult

    # With the step histograms on (`metrics.detail: [steps]`): the most series per step.
    metrics = Metrics(CollectorRegistry(), settings=MetricsSettings(detail=("steps",)))
    metrics.set_schedule({("checkout", "prod"): 60.0}, "local")
    for n in range(MAX_STEP_LABELS + 30):
        step = StepResult(name=f"GET /orders/{n}", status=Status.PASSED, duration_s=0.01)
        metrics.observe_run(
            RunResult(
                run_id=f"r{n}",
                check="checkout",
                service="shop",
                environment="prod",
                phase=Phase.SCHEDULED,
                location="local",
                status=Status.PASSED,
                started_at=datetime.now(UTC),
                duration_s=0.01,
                steps=(step,),
            )
        )
    page = metrics.exposition().decode()
    steps = {
        line.split('step="', 1)[1].split('"', 1)[0]
        for line in page.splitlines()
        if line.startswith("synth_step_duration_seconds_count")
    }
    assert len(steps) == MAX_STEP_LABELS + 1
    assert OTHER_STEPS in steps
    assert 'synth_check_steps_folded_total{check="checkout"} 30\n' in page
