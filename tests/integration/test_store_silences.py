"""Silences in the store, on SQLite and PostgreSQL: stored, listed while not over (active
and upcoming), ended now, and seen by a second store opened on the same database (another
agent of the cluster)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from postgres import PostgresServer, postgres_server  # noqa: F401
from store_backends import new_url_fixture  # noqa: F401

from synth.alerting.silences import Silence
from synth.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def make(silence_id: str, start: datetime, hours: float, **extra: object) -> Silence:
    return Silence(
        id=silence_id,
        start=start,
        end=start + timedelta(hours=hours),
        matchers={"service": "shop", "env": "production"},
        reason="failover",
        author="alice",
        created_at=NOW,
        **extra,  # type: ignore[arg-type]
    )


async def test_silences_are_kept_listed_and_ended(new_url: Callable[[], str]) -> None:
    url = new_url()
    first = await Store.open(url)
    second = await Store.open(url)
    try:
        active = make("active", NOW - timedelta(hours=1), 2)
        upcoming = make("upcoming", NOW + timedelta(hours=1), 1, deploys=True)
        over = make("over", NOW - timedelta(hours=3), 1)
        everything = Silence(id="all", start=NOW, end=NOW + timedelta(minutes=5), all=True)
        for silence in (upcoming, active, over, everything):
            await first.silences.add(silence)

        listed = await second.silences.current(NOW)
        assert [s.id for s in listed] == ["active", "all", "upcoming"]
        assert listed[0] == active
        assert listed[2].deploys
        assert listed[1].all
        assert listed[1].matchers == {}

        ended = await second.silences.end("upcoming", NOW)
        assert ended is not None
        assert (ended.start, ended.end) == (NOW, NOW)
        assert await second.silences.end("nosuch", NOW) is None
        assert await first.silences.end("over", NOW) == over  # already over: unchanged
        assert [s.id for s in await first.silences.current(NOW)] == ["active", "all"]

        # Retention deletes silences that ended before its cutoff (30 days by default).
        assert await first.prune(now=NOW + timedelta(days=30, minutes=1)) == 2
        assert [s.id for s in await first.silences.current(NOW)] == ["active", "all"]
        assert await first.prune(now=NOW + timedelta(days=31)) == 2
        assert await first.silences.current(NOW) == []
    finally:
        await first.close()
        await second.close()
