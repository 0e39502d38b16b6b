"""Rows of the store's tables ⇄ the records the rest of synth uses."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.codec import run_to_dict
from synth.model import FailureType, Phase, RunResult, Status
from synth.store.records import DeployRecord, DeployStatus, RunSummary
from synth.store.schema import deploys, runs

SUMMARY_COLUMNS = (
    runs.c.run_id,
    runs.c.check_name,
    runs.c.service,
    runs.c.environment,
    runs.c.phase,
    runs.c.location,
    runs.c.status,
    runs.c.failure_type,
    runs.c.failed_step,
    runs.c.started_at,
    runs.c.duration_s,
    runs.c.attempts,
    runs.c.trace_id,
    runs.c.deploy_id,
)


async def get_deploy(
    connection: AsyncConnection, condition: sa.ColumnElement[bool]
) -> DeployRecord | None:
    row = (await connection.execute(sa.select(deploys).where(condition))).first()
    if row is None:
        return None
    m = row._mapping
    return DeployRecord(
        id=m["id"],
        idempotency_key=m["idempotency_key"],
        service=m["service"],
        environment=m["environment"],
        version=m["version"],
        commit=m["commit_sha"],
        url=m["url"],
        labels={str(k): str(v) for k, v in m["labels"].items()},
        tags=tuple(m["tags"]),
        status=DeployStatus(m["status"]),
        verdict=m["verdict"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        finished_at=m["finished_at"],
        run_ids=tuple(m["run_ids"]),
        owner=m["owner"],
        request=m["request"],
    )


def summary(m: sa.RowMapping) -> RunSummary:
    return RunSummary(
        run_id=m["run_id"],
        check=m["check_name"],
        service=m["service"],
        environment=m["environment"],
        phase=Phase(m["phase"]),
        location=m["location"],
        status=Status(m["status"]),
        failure_type=FailureType(m["failure_type"]) if m["failure_type"] else None,
        failed_step=m["failed_step"],
        started_at=m["started_at"],
        duration_s=m["duration_s"],
        attempts=m["attempts"],
        trace_id=m["trace_id"],
        deploy_id=m["deploy_id"],
    )


def run_row(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "check_name": result.check,
        "service": result.service,
        "environment": result.environment,
        "phase": result.phase.value,
        "location": result.location,
        "status": result.status.value,
        "failure_type": result.failure_type.value if result.failure_type else None,
        "failed_step": result.failed_step,
        "started_at": result.started_at,
        "duration_s": result.duration_s,
        "attempts": result.attempts,
        "trace_id": result.trace_id,
        "deploy_id": result.deploy.deploy_id if result.deploy else None,
        "result": run_to_dict(result),
    }
