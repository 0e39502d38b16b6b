"""Whether and as whom this agent joins a cluster (synth.cluster.membership)."""

from __future__ import annotations

import socket
from collections.abc import Callable

from synth import __version__
from synth.cluster.membership import Membership
from synth.config import Settings
from synth.store import StoreError
from synth.store.cluster import ClusterTable
from synth.store.engine import parse_url


def cluster_membership(
    settings: Settings,
    table: Callable[[], ClusterTable | None],
    *,
    api_port: int | None,
    on_view: Callable[[], None],
    on_lease_lost: Callable[[], None],
    owned_count: Callable[[], int],
) -> Membership | None:
    """This agent's cluster membership: agents on one PostgreSQL store share the checks of
    their location; on SQLite (one agent, synth.store.single_agent) there is none. The
    member id defaults to host name and API port: unique among agents, and the same
    after a restart (so a restarted member takes back the same checks)."""
    cluster = settings.cluster
    try:
        shared = parse_url(settings.store.url).get_backend_name() == "postgresql"
    except StoreError:
        shared = False
    if not (shared and cluster.enabled):
        return None
    host = socket.gethostname()
    return Membership(
        table,
        location=settings.location,
        member_id=cluster.member_id or (f"{host}-{api_port}" if api_port else host),
        version=__version__,
        lease_s=cluster.lease,
        on_view=on_view,
        on_lease_lost=on_lease_lost,
        owned_count=owned_count,
    )
