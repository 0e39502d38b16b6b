"""The report `synth run` prints: one block per check as it completes, then a summary
line. Colour only on a terminal (and never with NO_COLOR); PASS/FAIL where the stream
cannot encode the symbols::

    ✓ checkout  staging  1.23s
        ✓ log in           45ms
        ✓ list products   120ms
    ✗ browse  staging  310ms  (2 attempts)
        ✓ health            3ms
        ✗ list products   210ms   http_status
            expected status 200, got 503
            GET http://127.0.0.1:8080/api/products
            expected: 200
            actual:   503
            response: {"error": "service unavailable"}
            trace:    4bf92f3577b34da6a3ce929d0e0e4736
    2 checks: 1 passed, 1 failed (browse) in 1.54s
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO

from synth.model import RequestRecord, RunResult, Severity, Status, StepResult
from synth.outputs.artifact_links import ArtifactLink, artifact_lines
from synth.outputs.report_text import (
    DEFAULT_TRACEBACK_FRAMES,
    detail_value,
    failure_lines,
    format_duration,
    printable,
)

QUIET = 0
"""Passing checks as one line; failing checks with their failed step only."""
NORMAL = 1
"""Every step of every check (the default)."""
VERBOSE = 2
"""Also each request with its phase timings, whole tracebacks and a line as each check starts."""

_INDENT = "    "
_MAX_NAME_WIDTH = 40
_MAX_NAMED_FAILURES = 10


@dataclass(frozen=True, slots=True)
class Marks:
    """The status markers; ASCII words where the stream cannot encode the symbols."""

    passed: str
    failed: str
    skipped: str

    def of(self, status: Status) -> str:
        return {Status.PASSED: self.passed, Status.FAILED: self.failed}.get(status, self.skipped)


UNICODE_MARKS = Marks(passed="✓", failed="✗", skipped="○")
ASCII_MARKS = Marks(passed="PASS", failed="FAIL", skipped="SKIP")

_SGR = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
_STATUS_COLOR = {Status.PASSED: "green", Status.FAILED: "red", Status.SKIPPED: "yellow"}


class Style:
    """ANSI colouring, or none."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(_SGR[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def color_default(stream: TextIO, environ: Mapping[str, str] = os.environ) -> bool:
    """Colour when writing to a terminal, unless NO_COLOR is set (https://no-color.org)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not environ.get("NO_COLOR")


def can_encode(stream: TextIO, text: str) -> bool:
    """Whether `stream` can write `text` (streams without an encoding take any text)."""
    encoding = getattr(stream, "encoding", None)
    if not encoding:
        return True
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


class TerminalReporter:
    """Prints each run as it finishes and a summary at the end.

    `color` None means automatic (`color_default`); `unicode` None means symbols when the
    stream's encoding can carry them. Safe to call from several threads or tasks: each
    block is written whole.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        color: bool | None = None,
        verbosity: int = NORMAL,
        unicode: bool | None = None,
        artifact_link: ArtifactLink | None = None,
    ) -> None:
        self.stream = stream
        self.artifact_link = artifact_link
        self.verbosity = verbosity
        self._style = Style(color_default(stream) if color is None else color)
        symbols = UNICODE_MARKS.passed + UNICODE_MARKS.failed + UNICODE_MARKS.skipped
        use_unicode = can_encode(stream, symbols) if unicode is None else unicode
        self.marks = UNICODE_MARKS if use_unicode else ASCII_MARKS
        self._lock = threading.Lock()

    def run_started(self, check: str, env: str) -> None:
        """A progress line as a check starts; printed only when verbose."""
        if self.verbosity >= VERBOSE:
            ellipsis = "…" if self.marks is UNICODE_MARKS else "..."
            self._write(self._style(printable(f"{ellipsis} {check}  {env}"), "dim") + "\n")

    def run_finished(self, result: RunResult) -> None:
        """The block for one finished run."""
        text = render_run(
            result,
            marks=self.marks,
            style=self._style,
            verbosity=self.verbosity,
            artifact_link=self.artifact_link,
        )
        self._write(text)

    def summary(self, results: Sequence[RunResult], duration_s: float | None = None) -> None:
        """The closing line; `duration_s` is the wall time (default: the runs' durations
        added up)."""
        line = summary_line(results, duration_s)
        failed = any(r.status is Status.FAILED for r in results)
        self._write(self._style(line, "bold", "red" if failed else "green") + "\n")

    def _write(self, text: str) -> None:
        encoding = getattr(self.stream, "encoding", None)
        if encoding:
            # Results may hold text the stream cannot encode: never crash the run.
            with contextlib.suppress(LookupError):
                text = text.encode(encoding, errors="replace").decode(encoding)
        with self._lock:
            self.stream.write(text)
            self.stream.flush()


def render_run(
    result: RunResult,
    *,
    marks: Marks = UNICODE_MARKS,
    style: Style | None = None,
    verbosity: int = NORMAL,
    artifact_link: ArtifactLink | None = None,
) -> str:
    """One run's block, newline-terminated (no colour unless a `style` enables it)."""
    style = style or Style(False)
    header = [
        style(marks.of(result.status), _STATUS_COLOR[result.status]),
        style(printable(result.check), "bold"),
        printable(result.environment),
        format_duration(result.duration_s),
    ]
    elsewhere = f" in {result.attempt_location}" if result.attempt_location else ""
    if result.passed_after_retry:
        header.append(style(f"(passed on attempt {result.attempts}{elsewhere})", "yellow"))
    elif result.attempts > 1:
        header.append(
            f"({result.attempts} attempts, the last{elsewhere})"
            if elsewhere
            else f"({result.attempts} attempts)"
        )
    lines = [header[0] + " " + "  ".join(header[1:])]
    for attempt in result.failed_attempts:
        where = f" at step {attempt.failed_step!r}" if attempt.failed_step else ""
        text = f"attempt {attempt.attempt} failed{where}: {attempt.failure.type}: "
        text += attempt.failure.message
        if attempt.trace_id:
            text += f"  (trace {attempt.trace_id})"
        lines.append(_INDENT + style(printable(text), "yellow"))
    steps = result.steps
    if verbosity <= QUIET:
        steps = tuple(s for s in steps if s.status is Status.FAILED)
    width = min(max((len(s.name) for s in steps), default=0), _MAX_NAME_WIDTH)
    for step in steps:
        lines.extend(_step_lines(step, result, marks, style, width, verbosity))
    if result.failure is not None and all(s.failure != result.failure for s in result.steps):
        # A run-level failure (e.g. a regression found after the steps all passed).
        lines.append(_INDENT + style(f"{marks.failed} {result.failure.type}", "red"))
        detail = failure_lines(result.failure, trace_id=result.trace_id)
        lines.extend(_INDENT * 2 + printable(line) for line in detail)
    for line in artifact_lines(result, artifact_link):
        lines.append(_INDENT + style("artifact", "dim") + " " + printable(line))
    for finding in result.findings:
        if finding.severity is Severity.WARN:
            lines.append(_INDENT + style("! baseline", "yellow") + " " + printable(finding.message))
    return "\n".join(lines) + "\n"


def _step_lines(
    step: StepResult,
    result: RunResult,
    marks: Marks,
    style: Style,
    width: int,
    verbosity: int,
) -> list[str]:
    mark = style(marks.of(step.status), _STATUS_COLOR[step.status])
    name = printable(step.name)
    line = f"{_INDENT}{mark} {name:<{width}}  {format_duration(step.duration_s):>6}"
    if step.failure is not None:
        line += "   " + style(str(step.failure.type), "red")
    lines = [line]
    deeper = _INDENT * 2
    if step.failure is not None or verbosity >= VERBOSE:
        for key, value in step.details.items():
            if value is None:
                continue
            shown = (
                format_duration(value)
                if key.endswith("_s") and isinstance(value, float)
                else detail_value(value)
            )
            lines.append(deeper + printable(f"{key}: {shown}"))
    if verbosity >= VERBOSE:
        lines.extend(deeper + printable(request_line(r)) for r in step.requests)
    if step.failure is not None:
        trace_id = result.trace_id or next((r.trace_id for r in step.requests if r.trace_id), "")
        frames = None if verbosity >= VERBOSE else DEFAULT_TRACEBACK_FRAMES
        detail = failure_lines(step.failure, trace_id=trace_id, traceback_frames=frames)
        lines.extend(deeper + printable(text) for text in detail)
    return lines


def request_line(request: RequestRecord) -> str:
    """`GET http://…/api/products  200  120ms  (dns 1ms, connect 2ms, first_byte 110ms)`."""
    status = str(request.status_code) if request.status_code is not None else "no response"
    text = f"{request.method} {request.url}  {status}  {format_duration(request.timings.total_s)}"
    phases = request.timings.as_dict()
    if phases:
        text += "  (" + ", ".join(f"{k} {format_duration(v)}" for k, v in phases.items()) + ")"
    if request.body_truncated:
        text += "  [body truncated]"
    return text


def summary_line(results: Sequence[RunResult], duration_s: float | None = None) -> str:
    """`3 checks: 2 passed, 1 failed (browse) in 1.5s`."""
    if not results:
        return "no checks ran"
    passed = sum(1 for r in results if r.status is Status.PASSED)
    failed = [r for r in results if r.status is Status.FAILED]
    skipped = sum(1 for r in results if r.status is Status.SKIPPED)
    parts = [f"{passed} passed", f"{len(failed)} failed"]
    if failed:
        several_envs = len({r.environment for r in results}) > 1
        names = list(
            dict.fromkeys(f"{r.check}@{r.environment}" if several_envs else r.check for r in failed)
        )
        shown = ", ".join(names[:_MAX_NAMED_FAILURES])
        if len(names) > _MAX_NAMED_FAILURES:
            shown += f", +{len(names) - _MAX_NAMED_FAILURES} more"
        parts[1] += f" ({printable(shown)})"
    if skipped:
        parts.append(f"{skipped} skipped")
    elapsed = duration_s if duration_s is not None else sum(r.duration_s for r in results)
    noun = "check" if len(results) == 1 else "checks"
    return f"{len(results)} {noun}: {', '.join(parts)} in {format_duration(elapsed)}"
