"""The shipped Grafana dashboard: valid JSON of a current schema, datasources only through
template variables, every PromQL expression parses (checked by promtool), names only
metrics synth exports, and latency panels carry exemplars."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus import (
    PROMETHEUS_SERIES,
    as_promql,
    dashboard,
    exported_series_names,
    expressions,
    metric_names,
    panels,
    recording_rule_names,
    run_promtool,
)

PROMETHEUS_DS = {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_is_a_current_grafana_dashboard() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["uid"]
    assert board["title"]
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    kinds = {p["type"] for p in panels(board)}
    assert kinds <= {"row", "timeseries", "stat", "state-timeline", "bargauge", "table"}


def test_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard()):
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_variables_include_templated_datasources_and_filters() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert {"datasource", "tempo", "env", "check", "location", "phase"} <= variables.keys()
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert (variables["tempo"]["type"], variables["tempo"]["query"]) == ("datasource", "tempo")
    for name in ("env", "check", "location", "phase"):
        assert variables[name]["datasource"] == PROMETHEUS_DS
        assert variables[name]["multi"]
        assert variables[name]["includeAll"]


def test_every_datasource_is_the_template_variable() -> None:
    def datasources(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    yield value
                else:
                    yield from datasources(value)
        elif isinstance(node, list):
            for item in node:
                yield from datasources(item)

    board = dashboard()
    found = [
        ds
        for ds in datasources({k: v for k, v in board.items() if k != "templating"})
        if ds != {"type": "grafana", "uid": "-- Grafana --"}  # the built-in annotations
    ]
    assert found
    assert all(ds == PROMETHEUS_DS for ds in found), found
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert variable["datasource"] == PROMETHEUS_DS


def test_every_expression_parses(tmp_path: Path) -> None:
    # promtool has no bare "parse this expression" command: each expression becomes a
    # recording rule whose name says where it came from, and `check rules` parses them.
    where = dict(enumerate(expressions(dashboard())))
    rules = [{"record": f"dashboard:expr_{n}", "expr": as_promql(e)} for n, (_, e) in where.items()]
    path = tmp_path / "dashboard-exprs.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run_promtool("check", "rules", str(path))
    legend = "\n".join(f"dashboard:expr_{n} = {w}: {e}" for n, (w, e) in where.items())
    assert done.returncode == 0, f"{done.stdout}{done.stderr}\n{legend}"
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_expressions_name_only_metrics_synth_exports() -> None:
    known = exported_series_names() | PROMETHEUS_SERIES | recording_rule_names()
    unknown = {
        (where, name)
        for where, expr in expressions(dashboard())
        for name in metric_names(expr)
        if name not in known
    }
    assert unknown == set()


def test_panels_cover_the_issue() -> None:
    exprs = " ".join(e for _, e in expressions(dashboard()))
    for needle in (
        "synth_check_up",  # status grid
        "synth_check_run_duration_seconds_bucket",  # run latency by phase
        "synth_http_phase_seconds{",  # the last run's HTTP phases
        "synth_step_duration_seconds_bucket",  # step latency by phase (opt-in)
        "sum by (failure_type) (increase(synth_check_failures_total{",  # failure types
        "synth_scheduler_lag_seconds_bucket",
        "synth_runs_in_flight",
        "synth_scheduler_skipped_overlaps_total",
        "synth_store_errors_total",
        "synth_telemetry_spans_dropped_total",
        "synth_event_loop_blocked_seconds_total",
        "synth_cluster_members{",  # cluster: members seen vs expected
        "synth_cluster_members_expected{",
        "synth_cluster_owned_checks{",
        "synth_cluster_rebalances_total{",
        "synth_cluster_leases_lost_total{",
    ):
        assert needle in exprs, needle
    annotations = [a for a in dashboard()["annotations"]["list"] if "expr" in a]
    assert annotations
    assert all("synth_deploy_verdicts_total" in a["expr"] for a in annotations)


def test_panels_on_opt_in_metrics_say_so() -> None:
    # A family only `metrics.detail` exports leaves its panel empty by default: the panel
    # must say what to set, and the core of the board must not need it.
    default = exported_series_names(detail=())
    opt_in_panels = set()
    for panel in panels(dashboard()):
        names = {n for t in panel.get("targets", []) for n in metric_names(t["expr"])}
        if any(n.startswith("synth_") and n not in default for n in names):
            opt_in_panels.add(panel["title"])
            assert "metrics.detail" in panel["title"], panel["title"]
            assert "metrics: {detail: [" in panel["description"], panel["title"]
    assert opt_in_panels == {"Step latency p95 / p50 by phase (metrics.detail: [steps])"}


@pytest.mark.parametrize(
    "panel",
    [p for p in panels(dashboard()) if "_duration_seconds_bucket" in json.dumps(p)],
    ids=lambda p: p["title"],
)
def test_latency_panels_show_phases_together_with_exemplars(panel: dict[str, Any]) -> None:
    for target in panel["targets"]:
        assert target.get("exemplar") is True
        assert re.search(r"by \([^)]*\bphase\b", target["expr"]), "phases side by side"
        assert 'phase=~"$phase"' in target["expr"]
