"""The JSON report (`synth run --json`): a summary and every run in the one JSON form of
a run (synth.codec). The schema is versioned (`SCHEMA_VERSION`), described by
`JSON_SCHEMA` and documented in docs/json-report.md. Fields may be added within a
version; renaming, removing or changing the meaning of one bumps it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from synth import __version__
from synth.codec import TIMING_FIELDS, format_time, run_to_dict
from synth.model import (
    PASSED_AFTER_RETRY,
    FailureType,
    Phase,
    RunResult,
    Severity,
    Status,
)
from synth.outputs.artifact_links import ArtifactLink
from synth.outputs.report_text import write_report_text
from synth.probes.facts import KINDS

SCHEMA_VERSION = 1


def json_report(
    results: Sequence[RunResult],
    *,
    env: str,
    started_at: datetime,
    duration_s: float,
    artifact_link: ArtifactLink | None = None,
) -> dict[str, Any]:
    """The whole report: when and where the runs happened, a summary, and every run (with
    each artifact's `url`: where it was written, when `artifact_link` says)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "synth_version": __version__,
        "environment": env,
        "started_at": format_time(started_at),
        "duration_s": duration_s,
        "summary": {
            "total": len(results),
            "passed": sum(1 for r in results if r.status is Status.PASSED),
            "failed": sum(1 for r in results if r.status is Status.FAILED),
            "skipped": sum(1 for r in results if r.status is Status.SKIPPED),
        },
        "runs": [_with_links(run_to_dict(r), artifact_link) for r in results],
    }


def _with_links(run: dict[str, Any], link: ArtifactLink | None) -> dict[str, Any]:
    if link is not None:
        for artifact in run["artifacts"]:
            artifact["url"] = link(run["run_id"], artifact["name"])
    return run


def write_json_report(
    path_or_dash: str | os.PathLike[str],
    results: Sequence[RunResult],
    *,
    env: str,
    started_at: datetime,
    duration_s: float,
    artifact_link: ArtifactLink | None = None,
) -> None:
    """Write `json_report(...)` to a file, or to standard output for "-"."""
    report = json_report(
        results,
        env=env,
        started_at=started_at,
        duration_s=duration_s,
        artifact_link=artifact_link,
    )
    write_report_text(path_or_dash, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


# -- the schema ---------------------------------------------------------------------------

_NULLABLE_STR = {"type": ["string", "null"]}
_SECONDS = {"type": "number", "minimum": 0}
_FAILURE = {
    "type": ["object", "null"],
    "required": ["type", "message"],
    "properties": {
        "type": {"enum": [t.value for t in FailureType]},
        "message": {"type": "string"},
        **{
            name: _NULLABLE_STR
            for name in ("expected", "actual", "method", "url", "response_excerpt", "traceback")
        },
        "in_target": {"type": "boolean"},
        **{
            name: {
                "type": "array",
                "items": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 2,
                    "maxItems": 2,
                },
            }
            for name in ("request_headers", "response_headers")
        },
    },
}
_REQUEST = {
    "type": "object",
    "required": ["method", "url", "status_code", "timings"],
    "properties": {
        "method": {"type": "string"},
        "url": {"type": "string"},
        "status_code": {"type": ["integer", "null"]},
        "bytes_received": {"type": "integer", "minimum": 0},
        "body_truncated": {"type": "boolean"},
        "trace_id": {"type": "string"},
        "span_id": {"type": "string"},
        "json_shape": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "maxItems": 2,
            },
        },
        "timings": {
            "type": "object",
            "required": ["total_s"],
            "properties": {
                **{name: {"type": ["number", "null"]} for name in TIMING_FIELDS},
                "total_s": {"type": "number"},
            },
        },
    },
}
_STEP = {
    "type": "object",
    "required": ["name", "status", "duration_s", "started_offset_s", "failure", "requests"],
    "properties": {
        "name": {"type": "string"},
        "status": {"enum": [s.value for s in Status]},
        "duration_s": {"type": "number"},
        "started_offset_s": {"type": "number"},
        "failure": _FAILURE,
        "details": {"type": "object"},
        "facts": {
            "type": ["object", "null"],
            "required": ["kind"],
            "properties": {"kind": {"enum": sorted(KINDS)}},
        },
        "requests": {"type": "array", "items": _REQUEST},
    },
}
_RUN_FIELDS = (
    "run_id",
    "check",
    "service",
    "environment",
    "phase",
    "location",
    "status",
    "failure_type",
    "failed_step",
    "attempts",
    "trace_id",
    "started_at",
    "duration_s",
    "tags",
    "deploy",
    "failure",
    "steps",
)
_RUN = {
    "type": "object",
    "required": list(_RUN_FIELDS),
    "properties": {
        "run_id": {"type": "string"},
        "check": {"type": "string"},
        "service": {"type": "string"},
        "environment": {"type": "string"},
        "phase": {"enum": [p.value for p in Phase]},
        "location": {"type": "string"},
        "status": {"enum": [s.value for s in Status]},
        "failure_type": {"enum": [None, *(t.value for t in FailureType)]},
        "failed_step": _NULLABLE_STR,
        "attempts": {"type": "integer", "minimum": 1},
        "outcome": {"enum": ["passed", PASSED_AFTER_RETRY, "failed"]},
        "attempt_location": _NULLABLE_STR,
        "failed_attempts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["attempt", "failed_step", "trace_id", "failure"],
                "properties": {
                    "attempt": {"type": "integer", "minimum": 1},
                    "failed_step": _NULLABLE_STR,
                    "trace_id": {"type": "string"},
                    "failure": _FAILURE,
                },
            },
        },
        "trace_id": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "duration_s": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "deploy": {
            "type": ["object", "null"],
            "required": ["deploy_id", "service", "environment", "version"],
            "properties": {
                "deploy_id": {"type": "string"},
                "service": {"type": "string"},
                "environment": {"type": "string"},
                "version": {"type": "string"},
                "commit": _NULLABLE_STR,
            },
        },
        "failure": _FAILURE,
        "steps": {"type": "array", "items": _STEP},
        "findings": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["step", "kind", "type", "severity", "message"],
                "properties": {
                    "step": {"type": "string"},
                    "kind": {"enum": ["latency", "missing", "type_changed", "new_field"]},
                    "type": {"enum": [t.value for t in FailureType]},
                    "severity": {"enum": [s.value for s in Severity]},
                    "message": {"type": "string"},
                    "field": _NULLABLE_STR,
                    "baseline": _NULLABLE_STR,
                    "actual": _NULLABLE_STR,
                    "ratio": {"type": ["number", "null"]},
                },
            },
        },
        "artifacts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "content_type", "size", "step"],
                "properties": {
                    "name": {"type": "string"},
                    "content_type": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "step": _NULLABLE_STR,
                    "url": {"type": "string"},
                },
            },
        },
    },
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "synth run report",
    "type": "object",
    "required": [
        "schema_version",
        "synth_version",
        "environment",
        "started_at",
        "duration_s",
        "summary",
        "runs",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "synth_version": {"type": "string"},
        "environment": {"type": "string"},
        "started_at": {"type": "string", "format": "date-time"},
        "duration_s": _SECONDS,
        "summary": {
            "type": "object",
            "required": ["total", "passed", "failed"],
            "properties": {
                name: {"type": "integer", "minimum": 0}
                for name in ("total", "passed", "failed", "skipped")
            },
        },
        "runs": {"type": "array", "items": _RUN},
    },
}
"""JSON Schema (draft 2020-12) of `json_report`'s output; `JSON_SCHEMA["properties"]["runs"]
["items"]` describes one `run_to_dict` record."""
