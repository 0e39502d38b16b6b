"""Where the agent keeps run results, deploys and verdicts: SQLite by default, PostgreSQL
by URL, through one code path.

    store = await Store.open("sqlite+aiosqlite:///var/lib/synth/synth.db")
    await store.save_run(result)
    recent = await store.list_runs(check="checkout", env="prod", limit=20)
    await store.close()
"""

from synth.store.records import (
    AlertUpdate,
    ArtifactInfo,
    DeployRecord,
    DeployStatus,
    IdempotencyKeyConflict,
    NewOutboxEvent,
    OutboxEvent,
    OutboxStatus,
    RunSummary,
    StoreError,
    StoreRefused,
)
from synth.store.store import Store

__all__ = [
    "AlertUpdate",
    "ArtifactInfo",
    "DeployRecord",
    "DeployStatus",
    "IdempotencyKeyConflict",
    "NewOutboxEvent",
    "OutboxEvent",
    "OutboxStatus",
    "RunSummary",
    "Store",
    "StoreError",
    "StoreRefused",
]
