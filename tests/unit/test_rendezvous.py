"""Rendezvous hashing: one owner per key that every member agrees on, an even split, and a
join or leave that moves only ~1/N of the keys."""

from __future__ import annotations

from collections import Counter

from synth.cluster.rendezvous import owned_by, owner, weight

KEYS = [f"check-{i:04d}/production" for i in range(3000)]


def test_the_owner_is_a_member_and_stable() -> None:
    members = ["agent-a", "agent-b", "agent-c"]
    assert owner("x", []) is None
    for key in KEYS[:100]:
        chosen = owner(key, members)
        assert chosen in members
        assert owner(key, list(reversed(members))) == chosen  # order does not matter
    assert weight("agent-a", "k") == weight("agent-a", "k")
    assert weight("agent-a", "k") != weight("agent-b", "k")


def test_the_split_is_even() -> None:
    members = ["agent-a", "agent-b", "agent-c"]
    counts = Counter(owner(key, members) for key in KEYS)
    assert set(counts) == set(members)
    for count in counts.values():
        assert abs(count - 1000) < 120  # ~3.5 standard deviations of a fair split


def test_a_leave_moves_only_the_leavers_keys() -> None:
    before = ["agent-a", "agent-b", "agent-c"]
    after = ["agent-a", "agent-c"]
    moved = [key for key in KEYS if owner(key, before) != owner(key, after)]
    assert set(moved) == owned_by("agent-b", KEYS, before)
    assert abs(len(moved) / len(KEYS) - 1 / 3) < 0.04


def test_a_join_moves_about_one_in_n() -> None:
    before = ["agent-a", "agent-b", "agent-c"]
    after = [*before, "agent-d"]
    moved = [key for key in KEYS if owner(key, before) != owner(key, after)]
    assert all(owner(key, after) == "agent-d" for key in moved)  # only to the newcomer
    assert abs(len(moved) / len(KEYS) - 1 / 4) < 0.04
