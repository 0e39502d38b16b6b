"""What the reports share: durations people can read, the failure detail block, text made
safe to print, and writing a report to a file or stdout."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from synth.model import Failure

LABEL_WIDTH = len("expected: ")
DEFAULT_TRACEBACK_FRAMES = 3

# C0 controls except tab and newline, DEL and C1 controls (0x9b is a one-byte CSI): a
# response excerpt must not be able to move the cursor or recolour the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TRACEBACK_START = "Traceback (most recent call last):"
_FRAME_START = '  File "'


def format_duration(seconds: float) -> str:
    """A duration as people read it: "<1ms", "45ms", "1.23s", "1.5s", "2m05s", "1h02m"."""
    seconds = max(seconds, 0.0)
    millis = seconds * 1000
    if millis < 1:
        return "0ms" if seconds == 0 else "<1ms"
    if round(millis) < 1000:
        return f"{millis:.0f}ms"
    if round(seconds, 2) < 60:
        return _trim_zeros(f"{seconds:.2f}") + "s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _trim_zeros(number: str) -> str:
    return number.rstrip("0").rstrip(".") if "." in number else number


def printable(text: str) -> str:
    """`text` with control characters shown as `\\xNN` escapes (newlines and tabs kept)."""
    text = text.replace("\r\n", "\n")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def split_lines(text: str) -> list[str]:
    """Lines split at newlines only (`str.splitlines` also splits at \\v, \\f, \\x1c and
    friends, which then bypass `printable`)."""
    text = text.replace("\r\n", "\n")
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def detail_value(value: Any) -> str:
    """A step detail's value on one line: text as is, containers as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def failure_lines(
    failure: Failure,
    *,
    trace_id: str = "",
    traceback_frames: int | None = DEFAULT_TRACEBACK_FRAMES,
) -> list[str]:
    """The detail block of a failure, unindented and uncoloured: the message, the request,
    expected and actual, the response excerpt, the trace id and (for a script error) the
    traceback trimmed to its last `traceback_frames` frames (None: all of it)."""
    lines = split_lines(failure.message) if failure.message else [str(failure.type)]
    if failure.url:
        lines.append(f"{failure.method} {failure.url}" if failure.method else failure.url)
    _labelled(lines, "expected", failure.expected)
    _labelled(lines, "actual", failure.actual)
    _labelled(lines, "response", failure.response_excerpt)
    _labelled(lines, "trace", trace_id or None)
    if failure.traceback:
        lines.append("traceback:")
        lines.extend("  " + line for line in trim_traceback(failure.traceback, traceback_frames))
    return lines


def _labelled(lines: list[str], label: str, value: str | None) -> None:
    if value is None:
        return
    first, *rest = split_lines(value)
    lines.append(f"{label + ':':<{LABEL_WIDTH}}{first}")
    lines.extend(" " * LABEL_WIDTH + line for line in rest)


def trim_traceback(text: str, frames: int | None) -> list[str]:
    """The lines of a formatted traceback; with `frames`, only the exception that escaped
    (not its chained causes) and its last `frames` frames."""
    lines = split_lines(text.rstrip("\n"))
    if frames is None:
        return lines
    starts = [i for i, line in enumerate(lines) if line.startswith(_TRACEBACK_START)]
    block = lines[starts[-1] :] if starts else lines
    frame_at = [i for i, line in enumerate(block) if line.startswith(_FRAME_START)]
    if len(frame_at) <= frames:
        return block
    omitted = len(frame_at) - frames
    head = block[: frame_at[0]]
    plural = "s" if omitted > 1 else ""
    return [*head, f"  ... {omitted} earlier frame{plural} omitted", *block[frame_at[-frames] :]]


def write_report_text(path_or_dash: str | os.PathLike[str], text: str) -> None:
    """Write a report to standard output ("-") or to a file, atomically (a reader never
    sees half a report), creating missing parent directories."""
    if str(path_or_dash) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(path_or_dash)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; a report is for others to read
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
