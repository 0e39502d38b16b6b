"""DeployManager against a real SQLite store: a deploy that nothing covers, or whose record
the store refuses, is refused whole — nothing of it stays in memory, so a clean retry with
the same idempotency id is a new deploy (before, every retry answered 500 until restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from synth.agent.deploys import DeployEvent, DeployManager, DeployRefused
from synth.config import DeploySettings
from synth.model import CheckSpec, RunRequest, RunResult
from synth.outputs.metrics import Metrics
from synth.store import DeployStatus, Store

COVERED = ("shop", "staging")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/synth.db")
    yield opened
    await opened.close()


def manager(store: Store, announced: list[str]) -> DeployManager:
    def checks_for(service: str, env: str, tags: Sequence[str]) -> Sequence[CheckSpec]:
        # A stand-in check object: these tests never get as far as running one.
        return [object()] if (service, env) == COVERED and not tags else []  # type: ignore[list-item]

    async def execute(request: RunRequest) -> RunResult:
        raise AssertionError("nothing may run")

    async def on_created(record: object) -> None:
        announced.append(getattr(record, "version", ""))

    return DeployManager(
        settings=DeploySettings(settle=3600),  # verification waits: nothing runs here
        store=store,
        metrics=Metrics(),
        checks_for=checks_for,
        execute=execute,
        location="test",
        on_created=on_created,
    )


def event(**fields: object) -> DeployEvent:
    return DeployEvent.model_validate(
        {"service": "shop", "environment": "staging", "version": "1.0", "id": "same-id"} | fields
    )


async def test_a_record_the_store_refuses_is_not_kept(store: Store) -> None:
    announced: list[str] = []
    deploys = manager(store, announced)
    try:
        # (validation would refuse the surrogate: this is the store's last line of defence)
        unkeepable = event().model_copy(update={"version": "1.0-\ud800"})
        with pytest.raises(DeployRefused, match="refused the data"):
            await deploys.submit(unkeepable)
        assert announced == []
        record, created = await deploys.submit(event())
        assert created
        assert record.status is DeployStatus.PENDING
        assert (await store.find_deploy_by_idempotency_key("same-id")) is not None
        assert announced == ["1.0"]
    finally:
        await deploys.shutdown()


@pytest.mark.parametrize(
    "fields",
    [{"service": "nosuch"}, {"environment": "nowhere"}, {"tags": ["no-such-tag"]}],
)
async def test_a_deploy_no_check_covers_is_refused_and_not_stored(
    store: Store, fields: dict[str, object]
) -> None:
    deploys = manager(store, [])
    try:
        with pytest.raises(DeployRefused, match="no configured check covers"):
            await deploys.submit(event(**fields))
        assert await store.find_deploy_by_idempotency_key("same-id") is None
    finally:
        await deploys.shutdown()


async def test_one_announcement_per_service_environment_and_version(store: Store) -> None:
    announced: list[str] = []
    deploys = manager(store, announced)
    try:
        for version in ("1.0", "1.0", "1.0", "2.0", "2.0"):
            await deploys.submit(event(version=version, id=None))
        assert announced == ["1.0", "2.0"]
    finally:
        await deploys.shutdown()
