"""The response contract of a step, learned from the shapes of its JSON bodies.

For each field path (`order.total`, `items[].id`) it keeps how many sampled responses had
the field and how often each JSON type was seen, so a production response can be judged:
a field every baseline response had is missing, a field has a type it never had, or a
field is new. Values are never seen here, only paths and types (see `synth.baseline.shape`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_FIELDS = 512
"""Bound on learned paths per step; later new paths are not learned."""


@dataclass(slots=True)
class FieldStats:
    """How often one path was present, and with which types."""

    present: int = 0
    types: dict[str, int] = field(default_factory=dict)

    def type_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.types))


@dataclass(slots=True)
class Contract:
    """Field paths → presence and types over `samples` responses."""

    samples: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)

    def add(self, shape: Iterable[tuple[str, str]]) -> None:
        """Learn one response's shape (path, type pairs; a path may repeat with several
        types)."""
        self.samples += 1
        seen: dict[str, set[str]] = {}
        for path, kind in shape:
            seen.setdefault(path, set()).add(kind)
        for path, kinds in seen.items():
            stats = self.fields.get(path)
            if stats is None:
                if len(self.fields) >= MAX_FIELDS:
                    continue
                stats = self.fields[path] = FieldStats()
            stats.present += 1
            for kind in kinds:
                stats.types[kind] = stats.types.get(kind, 0) + 1

    def merge(self, other: Contract) -> None:
        """Add `other`'s observations into this contract."""
        self.samples += other.samples
        for path, theirs in other.fields.items():
            mine = self.fields.get(path)
            if mine is None:
                if len(self.fields) >= MAX_FIELDS:
                    continue
                mine = self.fields[path] = FieldStats()
            mine.present += theirs.present
            for kind, n in theirs.types.items():
                mine.types[kind] = mine.types.get(kind, 0) + n

    def presence(self, path: str) -> float:
        """Share of sampled responses that had `path` (0 when never seen)."""
        stats = self.fields.get(path)
        return stats.present / self.samples if stats and self.samples else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "fields": {
                path: {"present": s.present, "types": dict(sorted(s.types.items()))}
                for path, s in sorted(self.fields.items())
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Contract:
        """The contract `to_dict` described; ValueError naming what is wrong."""
        try:
            samples = _count(data["samples"])
            fields = {
                str(path): FieldStats(
                    present=_count(stats["present"]),
                    types={str(k): _count(n) for k, n in dict(stats["types"]).items()},
                )
                for path, stats in dict(data["fields"]).items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a response contract: {exc}") from None
        if len(fields) > MAX_FIELDS:
            raise ValueError(f"not a response contract: more than {MAX_FIELDS} fields")
        return cls(samples, fields)


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"counts must be non-negative integers, got {value!r}")
    return value
