"""The output seam: a chain of sinks where one failing sink costs no other sink a result,
the one place the chain is built, and the one-shot sinks' report order."""

from __future__ import annotations

import ast
import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from synth.model import Phase, RunResult, Status
from synth.outputs.metrics import Metrics
from synth.outputs.report import TerminalReporter
from synth.outputs.sinks import OutputPlan, RunLog, SinkChain, build_sinks

SYNTH = Path(__file__).resolve().parents[2] / "synth"


def result(check: str, status: Status = Status.PASSED) -> RunResult:
    return RunResult(
        run_id=f"run-{check}",
        check=check,
        service="shop",
        environment="prod",
        phase=Phase.ADHOC,
        location="eu-1",
        status=status,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=0.05,
        steps=(),
        trace_id="ab",
    )


class Broken:
    def __init__(self) -> None:
        self.closed = False

    async def publish(self, result: RunResult) -> None:
        raise OSError("disk full")

    async def close(self) -> None:
        self.closed = True
        raise OSError("still full")


def test_a_failing_sink_costs_the_others_nothing() -> None:
    broken, after = Broken(), RunLog()
    chain = SinkChain([broken, after])
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(chain.publish(result("a")))
    assert [r.check for r in after.results] == ["a"]
    with pytest.raises(OSError, match="still full"):
        asyncio.run(chain.close())
    assert broken.closed


def test_one_shot_sinks_report_in_check_order() -> None:
    out = io.StringIO()
    runs = RunLog(order=["first", "second"])
    metrics = Metrics()
    chain = build_sinks(
        OutputPlan(metrics=metrics, runs=runs, terminal=TerminalReporter(out, color=False))
    )

    async def finish_out_of_order() -> None:
        await chain.publish(result("second", Status.FAILED))
        await chain.publish(result("first"))
        await chain.close()

    asyncio.run(finish_out_of_order())
    assert [r.check for r in runs.results] == ["first", "second"]
    text = out.getvalue()
    assert text.index("second") < text.index("first")  # progress: as they finished
    assert "2 checks: 1 passed, 1 failed" in text  # the summary at close
    assert b'check="first"' in metrics.exposition()  # counted by the counters sink


def test_end_sinks_need_a_run_log() -> None:
    with pytest.raises(ValueError, match="RunLog"):
        build_sinks(OutputPlan(metrics=Metrics(), json_path="-"))


def test_the_chain_is_built_in_one_place() -> None:
    """Agent, `synth run`, the demo and the pytest plugin all call build_sinks; nothing
    else assembles a SinkChain or calls a result output directly."""
    callers = set()
    for path in SYNTH.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                where = path.relative_to(SYNTH).as_posix()
                if name == "SinkChain":
                    assert where == "outputs/sinks.py", where
                if name == "build_sinks":
                    callers.add(where)
    assert callers == {"agent/app.py", "cli.py", "demo/walkthrough.py", "pytest_plugin.py"}
