"""Runtime fault switches for the demo shop.

A `Faults` value describes how the shop misbehaves right now. Everything is off by default;
the server consults it on every request, so flipping a field takes effect on the next one.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

HEALTH_PATH = "/health"
ADMIN_PATH = "/_faults"

_NUMBER_FIELDS = ("latency_ms", "error_rate", "slow_body_bytes_per_s")
_BOOL_FIELDS = (
    "expired_credentials",
    "schema_change",
    "corrupt_json",
    "connection_reset",
    "broken_js",
)


@dataclass
class Faults:
    """Faults the demo shop injects; all off by default.

    `path_prefix` confines every fault to request paths starting with it. `/health` is only
    affected when the prefix targets it explicitly, and the `/_faults` admin API never is.
    """

    latency_ms: float = 0
    error_rate: float = 0
    status: int | None = None
    expired_credentials: bool = False
    schema_change: bool = False
    corrupt_json: bool = False
    slow_body_bytes_per_s: float = 0
    connection_reset: bool = False
    path_prefix: str | None = None
    seed: int | None = None
    type_change: str | None = None
    """A field path (`order.total`, `items[].price`) whose value is sent as a string."""
    path_latency_ms: dict[str, float] = field(default_factory=dict)
    """Extra latency by request path prefix (`{"/api/products": 300}`), apart from
    `path_prefix`: one endpoint slow while the others misbehave differently, or not at all."""
    broken_js: bool = False
    """The web front end's script (`/static/shop.js`) has a bug: on the product page it
    throws an uncaught TypeError before wiring the Checkout button, so only a browser sees
    checkout fail (every API answers as usual). Confined by `path_prefix` like the others."""
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.validate()
        self._rng = random.Random(self.seed)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The public fault names, in declaration order."""
        return tuple(f.name for f in fields(cls) if f.init)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """Build from a JSON-like mapping; raise ValueError naming the first bad key."""
        if not isinstance(data, Mapping):
            raise ValueError(f"faults must be a JSON object, got {type(data).__name__}")
        known = cls.names()
        for key in data:
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The public fields as a JSON-serialisable dict."""
        return {name: getattr(self, name) for name in self.names()}

    def validate(self) -> None:
        """Raise ValueError naming the first field with a bad type or value."""
        for name in _NUMBER_FIELDS:
            _check_number(name, getattr(self, name))
        if self.error_rate > 1:
            raise ValueError(f"fault 'error_rate' must be between 0 and 1, got {self.error_rate}")
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"fault {name!r} must be a boolean, got {getattr(self, name)!r}")
        _check_status(self.status)
        _check_prefix(self.path_prefix)
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"fault 'seed' must be an integer or null, got {self.seed!r}")
        _check_type_change(self.type_change)
        _check_path_latency(self.path_latency_ms)

    def applies_to(self, path: str) -> bool:
        """Whether faults apply to a request for `path`."""
        if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
            return False
        if self.path_prefix is not None:
            if _is_health(path):
                return self.path_prefix.startswith(HEALTH_PATH)
            return path.startswith(self.path_prefix)
        return not _is_health(path)

    def extra_latency_ms(self, path: str) -> float:
        """The `path_latency_ms` delay for `path` (the longest matching prefix wins)."""
        if path == ADMIN_PATH or path.startswith(ADMIN_PATH + "/"):
            return 0.0
        matches = [prefix for prefix in self.path_latency_ms if path.startswith(prefix)]
        return float(self.path_latency_ms[max(matches, key=len)]) if matches else 0.0

    def roll_error(self) -> bool:
        """Draw whether this request fails with an injected 500."""
        return self.error_rate > 0 and self._rng.random() < self.error_rate


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_health(path: str) -> bool:
    return path == HEALTH_PATH or path.startswith(HEALTH_PATH + "/")


def _check_number(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"fault {name!r} must be a non-negative number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"fault {name!r} must be a non-negative number, got {value!r}")


def _check_status(status: object) -> None:
    if status is None:
        return
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"fault 'status' must be an HTTP error status 400-599, got {status!r}")


def _check_type_change(path: object) -> None:
    if path is None:
        return
    if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
        raise ValueError(
            f"fault 'type_change' must be a field path like 'order.total', got {path!r}"
        )


def _check_path_latency(mapping: object) -> None:
    if not isinstance(mapping, dict):
        raise ValueError(f"fault 'path_latency_ms' must be an object, got {mapping!r}")
    for prefix, delay in mapping.items():
        _check_prefix(prefix)
        _check_number("path_latency_ms", delay)


def change_type(payload: object, path: str) -> object:
    """The `type_change` contract: the value at `path` (`a.b`, `items[].price`) is sent as
    a string (numbers as "12.50")."""
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        key = head[:-2]
        if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
            return payload
        items = payload[key]
        return {
            **payload,
            key: [change_type(item, rest) if rest else _as_string(item) for item in items],
        }
    if not isinstance(payload, dict) or head not in payload:
        return payload
    value = payload[head]
    return {**payload, head: change_type(value, rest) if rest else _as_string(value)}


def _as_string(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int | float):
        return f"{value:.2f}"
    if isinstance(value, str):
        return value
    return str(value)


def _check_prefix(prefix: object) -> None:
    if prefix is None:
        return
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"fault 'path_prefix' must be a path starting with '/', got {prefix!r}")


_MONEY_KEYS = frozenset({"price", "unit_price", "total"})


def change_schema(payload: object) -> object:
    """The `schema_change` contract: money becomes strings ("12.50"), `in_stock` disappears."""
    if isinstance(payload, dict):
        return {
            key: _money_string(value) if key in _MONEY_KEYS else change_schema(value)
            for key, value in payload.items()
            if key != "in_stock"
        }
    if isinstance(payload, list):
        return [change_schema(item) for item in payload]
    return payload


def truncate(body: bytes) -> bytes:
    """The `corrupt_json` body: cut mid-document, so it can never parse."""
    return body[: len(body) // 2] or b"{"


def _money_string(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.2f}"
    return value
