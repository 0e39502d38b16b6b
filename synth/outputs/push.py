"""Push a `synth run`'s metrics to a Prometheus Pushgateway, so pre-prod runs land in the
same series as the agent's (job="synth", grouped by location and environment)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from prometheus_client.exposition import (
    basic_auth_handler,
    default_handler,
    push_to_gateway,
)

from synth.errors import SynthError
from synth.outputs.metrics import Metrics
from synth.redact import Redactor

JOB = "synth"
PUSH_TIMEOUT_S = 10.0


class PushError(SynthError):
    """The Pushgateway could not be reached or refused the metrics; the message says why
    (credentials masked)."""


def grouping_key(
    *, location: str, environment: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The group a push replaces: every push with the same key replaces the previous one."""
    return {"location": location, "env": environment, **(extra or {})}


def push_metrics(
    url: str,
    metrics: Metrics,
    *,
    location: str,
    environment: str,
    extra: Mapping[str, str] | None = None,
    timeout_s: float = PUSH_TIMEOUT_S,
) -> None:
    """PUT the metrics to `url` (user:password@ in it becomes basic auth); PushError when
    the gateway is unreachable or answers with an error."""
    gateway, handler = _gateway_and_handler(url)
    try:
        push_to_gateway(
            gateway,
            job=JOB,
            registry=metrics.registry,
            grouping_key=grouping_key(location=location, environment=environment, extra=extra),
            timeout=timeout_s,
            handler=handler,
        )
    except Exception as exc:  # urllib raises URLError, HTTPError, OSError, ValueError
        password = urlsplit(url).password
        redactor = Redactor([unquote(password), password] if password else [])
        shown = redactor.url(url)
        raise PushError(f"cannot push metrics to {shown}: {redactor.text(_reason(exc))}") from None


def check_gateway_url(url: str) -> None:
    """PushError unless `url` can name a Pushgateway (checked before any run starts)."""
    _gateway_and_handler(url)


def _gateway_and_handler(url: str) -> tuple[str, Callable[..., Callable[[], None]]]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"--push-metrics: not an http(s) URL: {Redactor().url(url)!r}")
    if parts.username is None:
        return urlunsplit(parts), default_handler
    host = parts.netloc.rpartition("@")[2]
    gateway = urlunsplit(parts._replace(netloc=host))
    auth = functools.partial(
        basic_auth_handler,
        username=unquote(parts.username),
        password=unquote(parts.password or ""),
    )
    return gateway, auth


def _reason(exc: Exception) -> str:
    code: Any = getattr(exc, "code", None)
    if isinstance(code, int):
        body = b""
        read = getattr(exc, "read", None)
        if callable(read):
            try:
                body = read()[:300]
            except OSError:
                body = b""
        detail = body.decode("utf-8", "replace").strip()
        return f"HTTP {code}" + (f": {detail}" if detail else "")
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or type(exc).__name__
