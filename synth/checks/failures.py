"""Turning what went wrong inside a check into a `Failure` an on-call engineer can act on."""

from __future__ import annotations

import ast
import linecache
import traceback
from types import TracebackType

from synth.errors import SynthError
from synth.model import Failure, FailureType
from synth.redact import Redactor

_VALUE_CHARS = 120


class CheckFailure(SynthError):
    """Raised by expectations and `flow.fail()`; carries the (redacted) failure."""

    def __init__(self, failure: Failure, step: str | None = None) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.step = step


class FlowAborted(BaseException):
    """Stops the flow after a failed step. A BaseException so that a broad `except
    Exception` in check code cannot swallow it."""


def short_repr(value: object, limit: int = _VALUE_CHARS) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def assertion_failure(error: AssertionError, redactor: Redactor, check_file: str | None) -> Failure:
    """Describe a plain `assert` like pytest does: the expression and the values in it."""
    frame_tb = _user_frame(error.__traceback__, check_file)
    expression = None
    where: list[str] = []
    if frame_tb is not None:
        frame = frame_tb.tb_frame
        line = linecache.getline(frame.f_code.co_filename, frame_tb.tb_lineno).strip()
        expression = line
        where = _explain_names(line, {**frame.f_globals, **frame.f_locals})
    detail = str(error)
    message = f"assertion failed: {expression}" if expression else "assertion failed"
    if detail:
        message += f" — {detail}"
    return Failure(
        type=FailureType.ASSERTION,
        message=redactor.text(message),
        actual=redactor.text("; ".join(where)) if where else None,
    )


def _user_frame(tb: TracebackType | None, check_file: str | None) -> TracebackType | None:
    """The innermost traceback entry in the check's own file (or the innermost overall)."""
    chosen = None
    while tb is not None:
        if check_file is None or tb.tb_frame.f_code.co_filename == check_file:
            chosen = tb
        tb = tb.tb_next
    return chosen


def _explain_names(line: str, namespace: dict[str, object]) -> list[str]:
    source = line.removeprefix("assert").strip()
    try:
        tree = ast.parse(source, mode="exec")
    except SyntaxError:
        return []
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in names:
            names.append(node.id)
    explained = []
    for name in names:
        if name in namespace and not callable(namespace[name]):
            explained.append(f"{name} = {short_repr(namespace[name])}")
    return explained


def script_error(error: BaseException, redactor: Redactor) -> Failure:
    """An exception escaping check code: the check itself is broken, not the target."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-8))
    return Failure(
        type=FailureType.SCRIPT_ERROR,
        message=redactor.text(f"check raised {type(error).__name__}: {error}"),
        traceback=redactor.text(text),
    )
