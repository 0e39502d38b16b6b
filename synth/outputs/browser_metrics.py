"""Browser steps in /metrics: the last run's navigation timings and web vitals per step
(gauges, as blackbox_exporter exports a probe's phases), what the page loaded, and how
often a browser had to be launched (more than once per worker: it crashed or hung)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from synth.browser.facts import BrowserFacts
from synth.model import StepResult
from synth.outputs.lean_scalars import LeanScalars

BROWSER_TIMINGS = ("dns", "connect", "tls", "ttfb", "dom_content_loaded", "load", "lcp", "tbt")


class BrowserMetrics:
    """The browser families; `observe_step` takes a step's labels (check, env, phase,
    location, step) and its result."""

    def __init__(self, lean: CollectorRegistry, others: CollectorRegistry) -> None:
        labels = ("check", "env", "phase", "location", "step")
        self.timing = LeanScalars(
            "synth_browser_timing_seconds",
            "Last run of a browser step: the main document's navigation timings and the "
            "Core Web Vitals Chromium measured (timing=dns|connect|tls|ttfb|"
            "dom_content_loaded|load|lcp|tbt).",
            (*labels, "timing"),
            kind="gauge",
            registry=lean,
        )
        self.layout_shift = LeanScalars(
            "synth_browser_layout_shift",
            "Last run of a browser step: Cumulative Layout Shift (unitless).",
            labels,
            kind="gauge",
            registry=lean,
        )
        self.requests = LeanScalars(
            "synth_browser_requests",
            "Last run of a browser step: requests the page made.",
            labels,
            kind="gauge",
            registry=lean,
        )
        self.transfer = LeanScalars(
            "synth_browser_transfer_bytes",
            "Last run of a browser step: bytes transferred for the document and resources.",
            labels,
            kind="gauge",
            registry=lean,
        )
        self.launches = Counter(
            "synth_browser_launches",
            "Chromium processes started; more than browser.concurrency means some crashed, "
            "hung and were killed, or ran out of memory.",
            registry=others,
        )

    def observe_step(self, step_labels: tuple[str, ...], step: StepResult) -> None:
        facts = step.facts
        if not isinstance(facts, BrowserFacts):
            return
        measured = facts.timings()
        for timing in BROWSER_TIMINGS:
            if timing in measured:
                self.timing.set((*step_labels, timing), measured[timing])
        if facts.cls is not None:
            self.layout_shift.set(step_labels, facts.cls)
        self.requests.set(step_labels, float(facts.requests))
        self.transfer.set(step_labels, float(facts.bytes))

    def launched(self) -> None:
        self.launches.inc()
