"""Structured logs: one JSON object per line for the agent, readable lines in a terminal.
A record logged while a run's span is open (by synth or by check code) carries that
span's trace_id and span_id."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from synth.redact import RedactingStream, install_redacting_streams, redact_output
from synth.spans import current_span_ids

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class TraceContext(logging.Filter):
    """Adds trace_id and span_id of the span open where the record was made, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_span_ids()
        if ids is not None and not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = ids
        return True


class JsonFormatter(logging.Formatter):
    """{"ts", "level", "logger", "msg", ...extra fields}."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        event.update(_extras(record))
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        # The whole line, so a secret in any field, argument or traceback is masked.
        return redact_output(json.dumps(event, default=str))


class TextFormatter(logging.Formatter):
    """`12:00:01 info  synth.agent  agent started  checks=3 jobs=3`."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{when} {record.levelname.lower():<7} {record.name:<14} {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact_output(line)


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Route synth's logs to stderr as JSON (`json`), text (`text`) or by terminal (`auto`)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    install_redacting_streams()  # what check code prints is masked too
    stderr = sys.stderr
    # The formatters mask whole lines already: write past the wrapper.
    handler = logging.StreamHandler(stderr.inner if isinstance(stderr, RedactingStream) else stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(TraceContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn", "uvicorn.error", "httpx2", "httpcore2", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
