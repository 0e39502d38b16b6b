"""The files of runs (`run_artifacts`): written with their run in one transaction, read one
by one by (run_id, name), deleted with their run by retention."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from synth.model import RunResult
from synth.store.records import ArtifactInfo
from synth.store.schema import run_artifacts


def rows(results: Sequence[RunResult], run_ids: Collection[str]) -> list[dict[str, Any]]:
    """The artifact rows of those `results` whose run_id is in `run_ids` (the runs this
    transaction inserted: a run stored already keeps the artifacts it has)."""
    return [
        {
            "run_id": result.run_id,
            "name": artifact.name,
            "content_type": artifact.content_type,
            "size": artifact.size,
            "step": artifact.step,
            "data": bytes(artifact.data),
        }
        for result in results
        if result.run_id in run_ids
        for artifact in result.artifacts
    ]


async def list_for(connection: AsyncConnection, run_id: str) -> list[ArtifactInfo]:
    """Metadata of the artifacts of one run, by name."""
    query = (
        sa.select(
            run_artifacts.c.run_id,
            run_artifacts.c.name,
            run_artifacts.c.content_type,
            run_artifacts.c.size,
            run_artifacts.c.step,
        )
        .where(run_artifacts.c.run_id == run_id)
        .order_by(run_artifacts.c.name)
    )
    found = (await connection.execute(query)).all()
    return [
        ArtifactInfo(
            run_id=row.run_id,
            name=row.name,
            content_type=row.content_type,
            size=row.size,
            step=row.step,
        )
        for row in found
    ]


async def read(connection: AsyncConnection, run_id: str, name: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of one artifact, or None when there is none by that name."""
    query = sa.select(run_artifacts.c.content_type, run_artifacts.c.data).where(
        run_artifacts.c.run_id == run_id, run_artifacts.c.name == name
    )
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return str(row.content_type), bytes(row.data)


async def delete_for(connection: AsyncConnection, run_ids: Sequence[str]) -> int:
    """Delete the artifacts of these runs (before the runs themselves); returns how many."""
    if not run_ids:
        return 0
    result = await connection.execute(
        sa.delete(run_artifacts).where(run_artifacts.c.run_id.in_(list(run_ids)))
    )
    return int(result.rowcount)
