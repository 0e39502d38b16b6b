"""The overview's duration sparkline: every run it covers is visible, the first one too."""

from __future__ import annotations

from synth.ui.format import spark, spark_marks


def test_a_lone_run_is_drawn_as_a_dot() -> None:
    points = spark([0.25], [False])
    assert [(p.x, p.y, p.failed) for p in spark_marks(points)] == [(0.0, 2.0, False)]


def test_many_runs_mark_only_the_failures_on_the_line() -> None:
    points = spark([0.1, 0.4, 0.2], [False, True, False])
    assert [p.x for p in points] == [0.0, 48.0, 96.0]
    assert [(p.x, p.failed) for p in spark_marks(points)] == [(48.0, True)]
    # the slowest run at the top of the 20-pixel box, the others scaled to it
    assert [p.y for p in points] == [14.0, 2.0, 10.0]


def test_no_runs_draw_nothing() -> None:
    assert spark([], []) == []
    assert spark_marks([]) == []
