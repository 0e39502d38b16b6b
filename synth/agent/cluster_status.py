"""`GET /v1/cluster`: the members of this agent's cluster as the store has them, and
what this member runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from synth.store import StoreError

if TYPE_CHECKING:
    from synth.agent.app import Agent


async def cluster_status(agent: Agent) -> dict[str, Any]:
    """The cluster as JSON. Alone (SQLite, or `cluster.enabled: false`), one member: this
    agent, running every scheduled check."""
    settings = agent.settings
    membership = agent.membership
    status: dict[str, Any] = {
        "location": settings.location,
        "clustered": membership is not None,
        "expected_members": settings.cluster.expected_members,
        "owned_checks": agent.sharing.owned_count,
        "scheduled_checks": agent.sharing.scheduled_count,
    }
    if membership is None:
        return status | {"member_id": None, "running": True, "members": []}
    status |= {
        "member_id": membership.member_id,
        "epoch": membership.epoch,
        "running": membership.may_run(),
        "lease_s": membership.timing.lease,
    }
    if agent.store is None:
        raise StoreError("the store is not open yet")
    view = await agent.store.cluster.members(settings.location)
    status["members"] = [
        {
            "member_id": m.member_id,
            "self": m.member_id == membership.member_id,
            "live": m.lease_until > view.now,
            "epoch": m.epoch,
            "version": m.version,
            "joined_at": m.joined_at.isoformat(),
            "runs_from": m.runs_from.isoformat(),
            "renewed_at": m.renewed_at.isoformat(),
            "lease_until": m.lease_until.isoformat(),
            "owned_checks": m.owned_checks,
        }
        for m in view.members
    ]
    status["live_members"] = sum(1 for m in status["members"] if m["live"])
    return status
