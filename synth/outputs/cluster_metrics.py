"""The cluster-mode metric families (synth.cluster): defined here once, registered on the
agent's registry by `Metrics`. Labelled by location only: the member is the scrape
target's own `instance`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ClusterMetrics:
    """How this member sees its cluster."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.members = Gauge(
            "synth_cluster_members",
            "Live members of this agent's cluster (agents sharing its store and location), "
            "as this member last read them; 1 for an agent that shares with nobody.",
            ("location",),
            registry=registry,
        )
        self.expected = Gauge(
            "synth_cluster_members_expected",
            "Members the cluster should have (cluster.expected_members; 0: not set).",
            ("location",),
            registry=registry,
        )
        self.owned_checks = Gauge(
            "synth_cluster_owned_checks",
            "Scheduled check × environment pairs this member runs now.",
            ("location",),
            registry=registry,
        )
        self.rebalances = Counter(
            "synth_cluster_rebalances",
            "Changes of the set of checks this member runs (a member joined or left).",
            ("location",),
            registry=registry,
        )
        self.leases_lost = Counter(
            "synth_cluster_leases_lost",
            "Times this member could not renew its lease in time and stopped running "
            "checks until it rejoined (fencing).",
            ("location",),
            registry=registry,
        )

        self.deploys_taken_over = Counter(
            "synth_cluster_deploys_taken_over",
            "Deploy verifications this member claimed from a member that died, stopped or "
            "was fenced, and finished.",
            ("location",),
            registry=registry,
        )

    def declare(self, location: str, *, expected: int, members: int, owned: int) -> None:
        """Export every family for `location`, at its start values."""
        self.expected.labels(location).set(expected)
        self.members.labels(location).set(members)
        self.owned_checks.labels(location).set(owned)
        self.rebalances.labels(location)
        self.leases_lost.labels(location)
        self.deploys_taken_over.labels(location)

    def seen(self, location: str, *, members: int, owned: int) -> None:
        """The member's current view: live members and the pairs it runs."""
        self.members.labels(location).set(members)
        self.owned_checks.labels(location).set(owned)

    def rebalanced(self, location: str) -> None:
        self.rebalances.labels(location).inc()

    def lease_lost(self, location: str) -> None:
        self.leases_lost.labels(location).inc()

    def deploy_taken_over(self, location: str) -> None:
        self.deploys_taken_over.labels(location).inc()
