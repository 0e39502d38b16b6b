"""`/v1/silences`: silence paging for a while (maintenance, a known outage).

`POST` makes one (authenticated like every write), `GET` lists the active and upcoming
ones with the config's maintenance windows (their current or next occurrence), `DELETE
/v1/silences/{id}` ends one now. They live in the store: a restart keeps them and every
agent sharing the store honours them (within `silence_book.REFRESH_S`). A silenced
failure is still run, stored and counted; it does not page (see
`synth.alerting.silences`). `reason` and `author` pass the agent's redactor before they
are stored and again before they are returned.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException

from synth.alerting.silences import Silence, SilenceRequest
from synth.store import StoreError, StoreRefused
from synth.store.silences import MAX_LISTED as MAX_SILENCES

if TYPE_CHECKING:
    from synth.agent.app import Agent
    from synth.store import Store

MAX_ID = 64


def silences_router(agent: Agent) -> APIRouter:
    api = APIRouter(tags=["silences"])

    def shown(silence: Silence) -> dict[str, Any]:
        # Again on the way out: maintenance windows come from the config, and a secret
        # may be known now that was not when an older silence was stored.
        return silence.redacted(agent.alerts.redactor()).to_dict()

    def store() -> Store:
        if agent.store is None:
            raise HTTPException(503, "store unavailable")
        return agent.store

    @api.post("/v1/silences", status_code=201)
    async def create_silence(body: SilenceRequest) -> dict[str, Any]:
        """Silence the checks the matchers name (or `all: true`) from `start` (default
        now) to `end` (at most 30 days later); 201 with the silence and its id."""
        now = datetime.now(UTC)
        try:
            # The store never holds a secret the agent knows (pasted into the free text).
            silence = body.silence(uuid.uuid4().hex, now).redacted(agent.alerts.redactor())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            if len(await store().silences.current(now)) >= MAX_SILENCES:
                raise HTTPException(
                    422, f"{MAX_SILENCES} silences are active or upcoming already: end some"
                )
            await store().silences.add(silence)
        except StoreRefused as exc:
            raise HTTPException(422, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        agent.alerts.silences.added(silence)
        await agent.alerts.refresh_silences(force=False)
        return shown(silence)

    @api.get("/v1/silences")
    async def list_silences() -> dict[str, Any]:
        """Active and upcoming silences, and each maintenance window's current or next
        occurrence (`source`: api or config), soonest first."""
        now = datetime.now(UTC)
        store()
        await agent.alerts.silences.refresh(now, force=True)
        return {"silences": [shown(s) for s in agent.alerts.silences.listing(now)]}

    @api.delete("/v1/silences/{silence_id}")
    async def end_silence(silence_id: str) -> dict[str, Any]:
        """End a silence now (an upcoming one never starts); ending one already over
        changes nothing. Maintenance windows end by editing the config."""
        now = datetime.now(UTC)
        try:
            ended = await store().silences.end(silence_id[:MAX_ID], now)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if ended is None:
            raise HTTPException(404, f"no silence {silence_id[:MAX_ID]!r}")
        agent.alerts.silences.ended(ended)
        await agent.alerts.refresh_silences(force=False)
        return shown(ended)

    return api
