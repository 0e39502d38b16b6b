"""Rendezvous (highest-random-weight) hashing: each key belongs to the member whose hash
of (member, key) is highest. Every member computes the same owner from the same member
list with no coordination, and a member joining or leaving moves only the keys it wins or
held: ~1/N of them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def weight(member: str, key: str) -> int:
    """The stable 64-bit weight of `key` at `member` (the same in every process)."""
    digest = hashlib.blake2b(f"{member}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(key: str, members: Sequence[str]) -> str | None:
    """The member that owns `key`; None without members. Ties (astronomically rare) go to
    the smaller member id, so every process agrees."""
    best: tuple[int, str] | None = None
    for member in members:
        candidate = (weight(member, key), member)
        if best is None or candidate[0] > best[0] or (candidate[0] == best[0] and member < best[1]):
            best = candidate
    return None if best is None else best[1]


def owned_by(member: str, keys: Iterable[str], members: Sequence[str]) -> set[str]:
    """The keys of `keys` that `member` owns among `members`."""
    return {key for key in keys if owner(key, members) == member}
