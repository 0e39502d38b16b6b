"""The one JSON form of a `RunResult`: `run_to_dict` / `run_from_dict`.

They are the only serialisation of a run — the JSON report, the agent's store, its HTTP
API and the deploy verdict all use them — so a run reads the same everywhere. The form
is versioned with the report (synth.outputs.report_json: `SCHEMA_VERSION`, `JSON_SCHEMA`,
docs/json-report.md): fields may be added within a version; renaming, removing or
changing the meaning of one bumps it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from synth.model import (
    Artifact,
    DeployContext,
    FailedAttempt,
    Failure,
    FailureType,
    Finding,
    HttpTimings,
    Phase,
    RequestRecord,
    RunResult,
    Severity,
    Status,
    StepResult,
)
from synth.probes.facts import facts_from_dict, facts_to_dict

TIMING_FIELDS = ("dns_s", "connect_s", "tls_s", "send_s", "first_byte_s", "body_s")


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a "Z" suffix; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- RunResult → dict ---------------------------------------------------------------------


def run_to_dict(result: RunResult) -> dict[str, Any]:
    """A run as JSON-ready data (enums by value, datetimes as RFC 3339 UTC). Step `details`
    are kept as given when they are JSON values; anything else becomes its string."""
    return {
        "run_id": result.run_id,
        "check": result.check,
        "service": result.service,
        "environment": result.environment,
        "phase": result.phase.value,
        "location": result.location,
        "status": result.status.value,
        "failure_type": result.failure_type.value if result.failure_type else None,
        "failed_step": result.failed_step,
        "attempts": result.attempts,
        "outcome": result.outcome,
        "failed_attempts": [_attempt_to_dict(a) for a in result.failed_attempts],
        "attempt_location": result.attempt_location,
        "trace_id": result.trace_id,
        "started_at": format_time(result.started_at),
        "duration_s": result.duration_s,
        "tags": list(result.tags),
        "deploy": _deploy_to_dict(result.deploy) if result.deploy else None,
        "failure": failure_to_dict(result.failure) if result.failure else None,
        "steps": [_step_to_dict(step) for step in result.steps],
        "findings": [finding_to_dict(f) for f in result.findings],
        "artifacts": [artifact_to_dict(a) for a in result.artifacts],
    }


def artifact_to_dict(artifact: Artifact) -> dict[str, Any]:
    """An artifact's metadata, never its bytes (those are stored beside the run; the API
    serves them at `/v1/runs/{run_id}/artifacts/{name}`)."""
    return {
        "name": artifact.name,
        "content_type": artifact.content_type,
        "size": artifact.size,
        "step": artifact.step,
    }


def _attempt_to_dict(attempt: FailedAttempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "failed_step": attempt.failed_step,
        "trace_id": attempt.trace_id,
        "failure": failure_to_dict(attempt.failure),
    }


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """A baseline finding as JSON-ready data."""
    return {
        "step": finding.step,
        "kind": finding.kind,
        "type": finding.type.value,
        "severity": finding.severity.value,
        "message": finding.message,
        "field": finding.field,
        "baseline": finding.baseline,
        "actual": finding.actual,
        "ratio": finding.ratio,
    }


def _deploy_to_dict(deploy: DeployContext) -> dict[str, Any]:
    return {
        "deploy_id": deploy.deploy_id,
        "service": deploy.service,
        "environment": deploy.environment,
        "version": deploy.version,
        "commit": deploy.commit,
    }


def failure_to_dict(failure: Failure) -> dict[str, Any]:
    """A failure as JSON-ready data (also used for run-level and step-level failures)."""
    return {
        "type": failure.type.value,
        "message": failure.message,
        "expected": failure.expected,
        "actual": failure.actual,
        "method": failure.method,
        "url": failure.url,
        "response_excerpt": failure.response_excerpt,
        "traceback": failure.traceback,
        "in_target": failure.in_target,
        "request_headers": [list(pair) for pair in failure.request_headers],
        "response_headers": [list(pair) for pair in failure.response_headers],
    }


def _step_to_dict(step: StepResult) -> dict[str, Any]:
    return {
        "name": step.name,
        "status": step.status.value,
        "duration_s": step.duration_s,
        "started_offset_s": step.started_offset_s,
        "failure": failure_to_dict(step.failure) if step.failure else None,
        "details": {str(k): _jsonable(v) for k, v in step.details.items()},
        "facts": facts_to_dict(step.facts) if step.facts is not None else None,
        "requests": [_request_to_dict(r) for r in step.requests],
    }


def _request_to_dict(request: RequestRecord) -> dict[str, Any]:
    timings = request.timings
    return {
        "method": request.method,
        "url": request.url,
        "status_code": request.status_code,
        "bytes_received": request.bytes_received,
        "body_truncated": request.body_truncated,
        "trace_id": request.trace_id,
        "span_id": request.span_id,
        "timings": {
            **{name: getattr(timings, name) for name in TIMING_FIELDS},
            "total_s": timings.total_s,
        },
        "json_shape": [[path, kind] for path, kind in request.json_shape],
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return format_time(value)
    return str(value)


# -- dict → RunResult ---------------------------------------------------------------------


def run_from_dict(data: Mapping[str, Any]) -> RunResult:
    """The run `run_to_dict` described (unknown keys are ignored, so records written by a
    newer synth of the same schema version still load). `artifacts` lists metadata only:
    the decoded run has none (their bytes are not in the record). Raises ValueError naming
    the field when the data is not a run."""
    try:
        return _run(data)
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a synth run record: {error}") from error


def _run(d: Mapping[str, Any]) -> RunResult:
    deploy = _opt_mapping(d, "deploy")
    failure = _opt_mapping(d, "failure")
    return RunResult(
        run_id=_str(d, "run_id"),
        check=_str(d, "check"),
        service=_str(d, "service"),
        environment=_str(d, "environment"),
        phase=Phase(_str(d, "phase")),
        location=_str(d, "location"),
        status=Status(_str(d, "status")),
        started_at=_time(d, "started_at"),
        duration_s=_float(d, "duration_s"),
        steps=tuple(_step(s) for s in _list(d, "steps")),
        attempts=_int(d, "attempts", 1),
        trace_id=_str(d, "trace_id", ""),
        failure=_failure(failure) if failure is not None else None,
        failed_step=_opt_str(d, "failed_step"),
        deploy=_deploy(deploy) if deploy is not None else None,
        tags=tuple(_as_str(t, "tags[]") for t in _list(d, "tags", [])),
        findings=tuple(_finding(f) for f in _list(d, "findings", [])),
        failed_attempts=tuple(_failed_attempt(a) for a in _list(d, "failed_attempts", [])),
        attempt_location=_opt_str(d, "attempt_location"),
    )


def _failed_attempt(value: Any) -> FailedAttempt:
    d = _as_mapping(value, "failed_attempts[]")
    return FailedAttempt(
        attempt=_int(d, "attempt"),
        failure=_failure(_as_mapping(_get(d, "failure", None), "failure")),
        failed_step=_opt_str(d, "failed_step"),
        trace_id=_str(d, "trace_id", ""),
    )


def _finding(value: Any) -> Finding:
    d = _as_mapping(value, "findings[]")
    ratio = d.get("ratio")
    return Finding(
        step=_str(d, "step"),
        kind=_str(d, "kind"),
        type=FailureType(_str(d, "type")),
        severity=Severity(_str(d, "severity")),
        message=_str(d, "message"),
        field=_opt_str(d, "field"),
        baseline=_opt_str(d, "baseline"),
        actual=_opt_str(d, "actual"),
        ratio=None if ratio is None else _float(d, "ratio"),
    )


def _deploy(d: Mapping[str, Any]) -> DeployContext:
    return DeployContext(
        deploy_id=_str(d, "deploy_id"),
        service=_str(d, "service"),
        environment=_str(d, "environment"),
        version=_str(d, "version"),
        commit=_opt_str(d, "commit"),
    )


def _failure(d: Mapping[str, Any]) -> Failure:
    return Failure(
        type=FailureType(_str(d, "type")),
        message=_str(d, "message"),
        expected=_opt_str(d, "expected"),
        actual=_opt_str(d, "actual"),
        method=_opt_str(d, "method"),
        url=_opt_str(d, "url"),
        response_excerpt=_opt_str(d, "response_excerpt"),
        traceback=_opt_str(d, "traceback"),
        in_target=_bool(d, "in_target", False),
        request_headers=_headers(d, "request_headers"),
        response_headers=_headers(d, "response_headers"),
    )


def _headers(d: Mapping[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    """`[[name, value], ...]` (absent in runs stored before headers were kept)."""
    pairs = []
    for item in _list(d, key, []):
        if not isinstance(item, list | tuple) or len(item) != 2:
            raise TypeError(f"{key!r} must hold [name, value] pairs")
        pairs.append((_as_str(item[0], key), _as_str(item[1], key)))
    return tuple(pairs)


def _step(value: Any) -> StepResult:
    d = _as_mapping(value, "steps[]")
    failure = _opt_mapping(d, "failure")
    details = _opt_mapping(d, "details") or {}
    facts = _opt_mapping(d, "facts")
    return StepResult(
        name=_str(d, "name"),
        status=Status(_str(d, "status")),
        duration_s=_float(d, "duration_s"),
        started_offset_s=_float(d, "started_offset_s", 0.0),
        requests=tuple(_request(r) for r in _list(d, "requests", [])),
        failure=_failure(failure) if failure is not None else None,
        details=dict(details),
        facts=facts_from_dict(facts) if facts is not None else None,
    )


def _request(value: Any) -> RequestRecord:
    d = _as_mapping(value, "requests[]")
    t = _as_mapping(d["timings"], "timings")
    status_code = d.get("status_code")
    return RequestRecord(
        method=_str(d, "method"),
        url=_str(d, "url"),
        status_code=None if status_code is None else _int(d, "status_code"),
        timings=HttpTimings(
            **{name: _opt_float(t, name) for name in TIMING_FIELDS},
            total_s=_float(t, "total_s"),
        ),
        bytes_received=_int(d, "bytes_received", 0),
        body_truncated=_bool(d, "body_truncated", False),
        trace_id=_str(d, "trace_id", ""),
        span_id=_str(d, "span_id", ""),
        json_shape=tuple(
            (_as_str(pair[0], "json_shape[]"), _as_str(pair[1], "json_shape[]"))
            for pair in _list(d, "json_shape", [])
        ),
    )


_REQUIRED: Any = object()


def _get(d: Mapping[str, Any], key: str, default: Any) -> Any:
    if key in d:
        return d[key]
    if default is _REQUIRED:
        raise KeyError(f"missing field {key!r}")
    return default


def _as_str(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{key!r} must be a string, not {type(value).__name__}")
    return value


def _as_mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{key!r} must be an object, not {type(value).__name__}")
    return value


def _str(d: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> str:
    return _as_str(_get(d, key, default), key)


def _opt_str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return None if value is None else _as_str(value, key)


def _int(d: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> int:
    value = _get(d, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} must be an integer, not {type(value).__name__}")
    return value


def _float(d: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> float:
    value = _get(d, key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key!r} must be a number, not {type(value).__name__}")
    return float(value)


def _opt_float(d: Mapping[str, Any], key: str) -> float | None:
    return None if d.get(key) is None else _float(d, key)


def _bool(d: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> bool:
    value = _get(d, key, default)
    if not isinstance(value, bool):
        raise TypeError(f"{key!r} must be true or false, not {type(value).__name__}")
    return value


def _list(d: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> list[Any]:
    value = _get(d, key, default)
    if not isinstance(value, list | tuple):
        raise TypeError(f"{key!r} must be an array, not {type(value).__name__}")
    return list(value)


def _opt_mapping(d: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = d.get(key)
    return None if value is None else _as_mapping(value, key)


def _time(d: Mapping[str, Any], key: str) -> datetime:
    moment = datetime.fromisoformat(_str(d, key))
    if moment.tzinfo is None:
        raise ValueError(f"{key!r} must carry a UTC offset")
    return moment
