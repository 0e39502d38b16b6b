"""The seam between the runner and tracing.

The runner opens a span for the run, each step and each HTTP request through a `RunTracer`.
`IdTracer` (the default) only mints W3C trace and span ids, so every request carries a
`traceparent` and every report names its trace id even with telemetry off; the
OpenTelemetry implementation in `synth.outputs.tracing` exports real spans.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from synth.model import Failure, RunRequest

AttrValue = str | int | float | bool


class SpanHandle(Protocol):
    """What the runner needs from an open span."""

    @property
    def trace_id(self) -> str: ...

    @property
    def span_id(self) -> str: ...

    def traceparent(self) -> str: ...

    def set_attributes(self, attributes: Mapping[str, AttrValue]) -> None: ...

    def record_failure(self, failure: Failure) -> None: ...


class RunTracer(Protocol):
    """Opens the spans of one run; nested calls nest spans."""

    def run_span(self, request: RunRequest) -> contextlib.AbstractContextManager[SpanHandle]: ...

    def step_span(self, name: str) -> contextlib.AbstractContextManager[SpanHandle]: ...

    def http_span(
        self, method: str, url: str, attributes: Mapping[str, AttrValue]
    ) -> contextlib.AbstractContextManager[SpanHandle]: ...

    def finished_span(
        self, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, AttrValue]
    ) -> None:
        """A child of the current span that already happened elsewhere (a browser's
        navigation, timed by the browser): recorded with its own start and end."""


@dataclass(slots=True)
class IdSpan:
    """A span that is only an identity: enough for `traceparent` and reports."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttrValue] = field(default_factory=dict)
    failure: Failure | None = None

    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-01"

    def set_attributes(self, attributes: Mapping[str, AttrValue]) -> None:
        self.attributes.update(attributes)

    def record_failure(self, failure: Failure) -> None:
        self.failure = failure


_current_span: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "synth_current_span", default=None
)


def current_span_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the innermost span open in this context, for log records."""
    return _current_span.get()


@contextlib.contextmanager
def activated(span: SpanHandle) -> Iterator[None]:
    """Make `span` the current one for `current_span_ids()` while the block runs."""
    token = _current_span.set((span.trace_id, span.span_id))
    try:
        yield
    finally:
        # A generator finalised in another context cannot reset: nothing to undo there.
        with contextlib.suppress(ValueError, RuntimeError):
            _current_span.reset(token)


class IdTracer:
    """Mints trace ids per run and span ids per step and request; exports nothing."""

    @contextlib.contextmanager
    def run_span(self, request: RunRequest) -> Iterator[SpanHandle]:
        span = IdSpan(trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8))
        with activated(span):
            yield span

    def _child(self) -> IdSpan:
        current = _current_span.get()
        trace_id = current[0] if current else secrets.token_hex(16)
        return IdSpan(trace_id=trace_id, span_id=secrets.token_hex(8))

    @contextlib.contextmanager
    def step_span(self, name: str) -> Iterator[SpanHandle]:
        span = self._child()
        with activated(span):
            yield span

    @contextlib.contextmanager
    def http_span(
        self, method: str, url: str, attributes: Mapping[str, AttrValue]
    ) -> Iterator[SpanHandle]:
        span = self._child()
        with activated(span):
            yield span

    def finished_span(
        self, name: str, start_ns: int, end_ns: int, attributes: Mapping[str, AttrValue]
    ) -> None:
        return None
