"""What the benchmarks run: a one-step synth GET check and its bare-httpx2 peers.

The synth side is the real public path: a `@synth.check` run by `synth.runner.Runner`
with today's default tracer (`IdTracer`). The peers make the same requests with nothing
around them. Like synth, which opens a fresh connection pool per run so each run measures
connect like a new user, the "fresh" peer opens a client per request; the "keep-alive"
peer shares one client and is there only for context.
"""

from __future__ import annotations

import math
import secrets
import ssl
from collections.abc import Sequence

import httpx2

import synth
from synth.config import EnvironmentSettings, ServiceTarget, Settings
from synth.model import RunRequest, RunResult
from synth.runner import Runner

ENVIRONMENT = "bench"


@synth.check(service="web", timeout="10s")
async def get_ok(flow: synth.Flow) -> None:
    """One implicit step: GET /ok answers 200."""
    (await flow.get("/ok")).expect_status(200)


def synth_request() -> RunRequest:
    return RunRequest(check=get_ok.__synth_check__, environment=ENVIRONMENT)  # type: ignore[attr-defined]


def synth_runner(base_url: str) -> Runner:
    services = {"web": ServiceTarget(base_url=base_url)}
    settings = Settings(environments={ENVIRONMENT: EnvironmentSettings(services=services)})
    return Runner(settings)


def require_passed(result: RunResult) -> RunResult:
    """A benchmark of failing runs measures the wrong thing: stop at the first one."""
    if not result.passed:
        raise RuntimeError(f"synth run failed: {result.failure}")
    return result


def peer_ssl_context() -> ssl.SSLContext:
    """Built once, as synth builds its contexts once (loading the CA bundle is costly)."""
    return ssl.create_default_context()


def peer_client(context: ssl.SSLContext) -> httpx2.AsyncClient:
    """A bare client. `trust_env=False` as synth's: reading proxy variables per client
    would be work synth does not do, and would flatter synth's ratio."""
    return httpx2.AsyncClient(verify=context, trust_env=False)


async def peer_fresh_get(context: ssl.SSLContext, url: str) -> httpx2.Response:
    """One request on a new client (new pool, new connection), as synth's runs do."""
    async with peer_client(context) as client:
        response = await client.get(url)
    return require_ok(response)


def require_ok(response: httpx2.Response) -> httpx2.Response:
    if response.status_code != 200:
        raise RuntimeError(f"peer request got HTTP {response.status_code}")
    return response


def traceparent() -> tuple[str, str]:
    """A fresh W3C traceparent and its span id, to find the request in nginx's log."""
    span_id = secrets.token_hex(8)
    return f"00-{secrets.token_hex(16)}-{span_id}-01", span_id


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]
