"""Sending baseline fragments to where they are kept, and reading them back: a store URL
(SQLite or PostgreSQL, opened directly) or an agent's API (`POST /v1/baselines`, with the
agent's credentials from SYNTH_TOKEN or SYNTH_HMAC_SECRET)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Sequence

import httpx2

from synth.agent.auth import credentials_from_env
from synth.baseline.record import RecentWindow, StepBaseline, newest_window
from synth.errors import SynthError
from synth.store import Store
from synth.store.store import MAX_LIST_LIMIT

VERSION_ENV = "SYNTH_VERSION"
CHUNK_BYTES = 48 * 1024
"""Fragments per request are chunked below the agent's default 64 KiB body limit."""
HTTP_TIMEOUT_S = 30.0


class BaselineError(SynthError):
    """Baselines could not be sent or read; the message says where and why."""


def default_version() -> str:
    """The version label of a recording: $SYNTH_VERSION, else `git describe`, else
    "unknown"."""
    from_env = os.environ.get(VERSION_ENV)
    if from_env:
        return from_env[:200]
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "describe", "--tags", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=2.0,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    label = done.stdout.strip()
    return label[:200] if done.returncode == 0 and label else "unknown"


def send(
    fragments: Sequence[StepBaseline], *, store_url: str | None = None, agent_url: str | None = None
) -> int:
    """Merge `fragments` into a store or post them to an agent; returns how many."""
    if (store_url is None) == (agent_url is None):
        raise BaselineError("give exactly one of a store URL or an agent URL")
    if not fragments:
        return 0
    if store_url is not None:
        return asyncio.run(_merge(store_url, list(fragments)))
    assert agent_url is not None
    return _post(agent_url.rstrip("/"), fragments)


def fetch(
    *,
    check: str | None,
    env: str | None,
    store_url: str | None = None,
    agent_url: str | None = None,
) -> list[StepBaseline]:
    """Stored baselines matching the filters, most recently updated first."""
    if (store_url is None) == (agent_url is None):
        raise BaselineError("give exactly one of a store URL or an agent URL")
    if store_url is not None:
        return asyncio.run(_list(store_url, check, env))
    assert agent_url is not None
    params = {k: v for k, v in (("check", check), ("env", env)) if v is not None}
    url = agent_url.rstrip("/") + "/v1/baselines"
    try:
        with httpx2.Client(timeout=HTTP_TIMEOUT_S, trust_env=False) as client:
            response = client.get(url, params=params)
    except httpx2.HTTPError as exc:
        raise BaselineError(f"cannot reach the agent at {agent_url}: {exc}") from None
    if response.status_code != 200:
        raise BaselineError(f"agent answered {response.status_code}: {response.text[:300]}")
    try:
        return [StepBaseline.from_dict(d) for d in response.json()["baselines"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise BaselineError(f"the agent's answer is not a list of baselines: {exc}") from None


async def _merge(url: str, fragments: list[StepBaseline]) -> int:
    store = await Store.open(url)
    try:
        return await store.merge_baselines(fragments)
    finally:
        await store.close()


async def _list(url: str, check: str | None, env: str | None) -> list[StepBaseline]:
    store = await Store.open(url)
    try:
        return await store.list_baselines(check=check, env=env)
    finally:
        await store.close()


def _post(agent: str, fragments: Sequence[StepBaseline]) -> int:
    sent = 0
    with httpx2.Client(timeout=HTTP_TIMEOUT_S, trust_env=False) as client:
        for body in _chunks([f.to_dict() for f in fragments]):
            headers = {
                "Content-Type": "application/json",
                **credentials_from_env("POST", "/v1/baselines", body),
            }
            try:
                response = client.post(f"{agent}/v1/baselines", content=body, headers=headers)
            except httpx2.HTTPError as exc:
                raise BaselineError(f"cannot reach the agent at {agent}: {exc}") from None
            if response.status_code != 200:
                raise BaselineError(
                    f"agent refused the baselines ({response.status_code}): {response.text[:300]}"
                )
            sent += int(response.json().get("merged", 0))
    return sent


def _chunks(items: list[dict[str, object]]) -> list[bytes]:
    bodies: list[bytes] = []
    batch: list[str] = []
    size = 0
    for item in items:
        encoded = json.dumps(item, separators=(",", ":"))
        if batch and size + len(encoded) > CHUNK_BYTES:
            bodies.append(_body(batch))
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
    if batch:
        bodies.append(_body(batch))
    return bodies


def _body(encoded: list[str]) -> bytes:
    return ('{"fragments":[' + ",".join(encoded) + "]}").encode()


DEFAULT_WINDOW = 20
MAX_RUNS_READ = MAX_LIST_LIMIT
"""Stored runs read for a diff of every check (each check's newest window comes from them)."""


def recent_runs(
    store_url: str, *, env: str, check: str | None, window: int = DEFAULT_WINDOW
) -> RecentWindow:
    """What `env` looks like now, for `synth baseline diff`: per check, baselines made on
    the fly from its newest `window` stored runs (see `synth.baseline.record.newest_window`)."""
    return asyncio.run(_recent(store_url, env, check, window))


async def _recent(url: str, env: str, check: str | None, window: int) -> RecentWindow:
    store = await Store.open(url)
    try:
        summaries = await store.list_runs(
            check=check, env=env, limit=min(window, MAX_RUNS_READ) if check else MAX_RUNS_READ
        )
        per_check: dict[str, int] = {}
        chosen = []
        for summary in summaries:  # newest first
            if per_check.get(summary.check, 0) < window:
                per_check[summary.check] = per_check.get(summary.check, 0) + 1
                chosen.append(summary)
        results = [await store.get_run(s.run_id) for s in chosen]
    finally:
        await store.close()
    return newest_window([r for r in results if r is not None])
