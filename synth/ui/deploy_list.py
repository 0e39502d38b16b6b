"""The deploys timeline: deploys newest first, a page at a time, by service and environment."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from synth.store import DeployRecord, Store
from synth.store.rows import get_deploy
from synth.store.schema import deploys


async def list_deploys(
    store: Store,
    *,
    service: str | None,
    env: str | None,
    before: datetime | None,
    limit: int,
) -> tuple[list[DeployRecord], datetime | None]:
    """Up to `limit` deploys created before `before`, and the cursor of the next page."""
    query = sa.select(deploys.c.id)
    if service is not None:
        query = query.where(deploys.c.service == service)
    if env is not None:
        query = query.where(deploys.c.environment == env)
    if before is not None:
        query = query.where(deploys.c.created_at < before)
    query = query.order_by(deploys.c.created_at.desc(), deploys.c.id.desc()).limit(limit + 1)
    found = []
    async with store.reading("list deploys") as connection:
        ids = (await connection.execute(query)).scalars().all()
        for deploy_id in ids[:limit]:
            record = await get_deploy(connection, deploys.c.id == deploy_id)
            if record is not None:
                found.append(record)
    older = found[-1].created_at if len(ids) > limit and found else None
    return found, older
