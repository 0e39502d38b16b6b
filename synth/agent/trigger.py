"""`synth trigger`: announce a deploy to the agent and, with --wait, gate on the verdict.

Exit codes: 0 pass, 1 fail, 2 error, timeout or a request the agent refused.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import quote

import httpx2

from synth.agent.auth import credentials_from_env

AGENT_ENV = "SYNTH_AGENT_URL"
DEFAULT_AGENT = "http://127.0.0.1:8484"
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 4.0


@dataclass(frozen=True, slots=True)
class TriggerArgs:
    service: str
    env: str
    version: str
    agent: str | None
    wait: bool
    timeout_s: float
    commit: str | None = None
    deploy_url: str | None = None
    event_id: str | None = None
    tags: tuple[str, ...] = ()
    junit: str | None = None
    """With `wait`: write the verification's runs as a JUnit XML report to this file."""


def trigger(args: TriggerArgs, out: TextIO = sys.stdout) -> int:
    """Post the deploy event; with `wait`, long-poll for the verdict and print it."""
    if args.junit and not args.wait:
        print(
            "synth trigger: --junit needs --wait (the runs come with the verdict)", file=sys.stderr
        )
        return 2
    agent = (args.agent or os.environ.get(AGENT_ENV) or DEFAULT_AGENT).rstrip("/")
    event: dict[str, Any] = {
        "service": args.service,
        "environment": args.env,
        "version": args.version,
    }
    if args.commit:
        event["commit"] = args.commit
    if args.deploy_url:
        event["url"] = args.deploy_url
    if args.event_id:
        event["id"] = args.event_id
    if args.tags:
        event["tags"] = list(args.tags)
    # An id of its own makes the POST safe to send again: behind a Service in front of a
    # cluster, the member that took it may stop (a rolling update) before answering.
    event["id"] = args.event_id or f"trigger-{uuid.uuid4().hex}"
    body = json.dumps(event).encode()
    deadline = time.monotonic() + args.timeout_s
    with httpx2.Client(timeout=30.0, trust_env=False) as client:

        def post() -> httpx2.Response:
            headers = {
                "Content-Type": "application/json",
                **credentials_from_env("POST", "/v1/deploys", body),  # fresh per attempt
            }
            return client.post(f"{agent}/v1/deploys", content=body, headers=headers)

        try:
            response = _retrying(post, deadline)
        except httpx2.HTTPError as exc:
            print(f"synth trigger: cannot reach the agent at {agent}: {exc}", file=sys.stderr)
            return 2
        if response.status_code not in (200, 202):
            print(
                f"synth trigger: agent refused the deploy ({response.status_code}): "
                f"{_detail(response)}",
                file=sys.stderr,
            )
            return 2
        record = response.json()
        deploy_url = f"{agent}/v1/deploys/{record['id']}"
        print(f"deploy {record['id']}: {args.service} {args.version} → {args.env}", file=out)
        if record.get("page_url"):  # with the agent's `server.public_url`
            print(f"  page: {record['page_url']}", file=out)
        if not args.wait:
            return 0
        while record["status"] in ("pending", "running"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print(f"synth trigger: no verdict within {args.timeout_s:g}s", file=sys.stderr)
                return 2

            def poll(wait_s: float = min(remaining, 60)) -> httpx2.Response:
                return client.get(
                    deploy_url,
                    params={"wait": f"{wait_s:.1f}"},
                    timeout=wait_s + 10,
                )

            try:
                response = _retrying(poll, deadline)
            except httpx2.HTTPError as exc:
                print(f"synth trigger: lost the agent: {exc}", file=sys.stderr)
                return 2
            if response.status_code != 200:
                print(
                    f"synth trigger: {response.status_code}: {_detail(response)}", file=sys.stderr
                )
                return 2
            record = response.json()
        code = _print_verdict(record, out)
        if args.junit:
            try:
                _write_junit(client, agent, record, args)
            except (httpx2.HTTPError, ValueError, OSError) as exc:
                print(f"synth trigger: JUnit report not written: {exc}", file=sys.stderr)
                return 2
    return code


def _retrying(send: Callable[[], httpx2.Response], deadline: float) -> httpx2.Response:
    """`send()`, again after a lost connection or a 502/503/504 (an agent stopping or
    restarting; another cluster member answers the retry), with backoff until
    `deadline`; the last answer or error after that."""
    delay = RETRY_FIRST_S
    while True:
        try:
            response = send()
        except httpx2.TransportError:
            if time.monotonic() + delay >= deadline:
                raise
        else:
            if response.status_code not in RETRY_STATUSES or time.monotonic() + delay >= deadline:
                return response
        time.sleep(delay)
        delay = min(delay * 2, RETRY_MAX_S)


def _print_verdict(record: dict[str, Any], out: TextIO) -> int:
    verdict = record.get("verdict") or {}
    result = verdict.get("result", "error")
    print(f"verdict: {result.upper()} — {verdict.get('reason', record['status'])}", file=out)
    for failing in verdict.get("failing", []):
        print(
            f"  ✗ {failing['check']} / {failing.get('step') or '-'}: "
            f"{failing['failure_type']}: {failing['message']}  (trace {failing['trace_id']})",
            file=out,
        )
        if failing.get("page_url"):
            print(f"    run: {failing['page_url']}", file=out)
    return {"pass": 0, "fail": 1}.get(result, 2)


def _write_junit(
    client: httpx2.Client, agent: str, record: dict[str, Any], args: TriggerArgs
) -> None:
    """The verification's runs, read back from the agent, as a JUnit report; each case
    names the run's page when the agent has a `server.public_url`, and links its artifacts
    (a browser run's screenshot, trace, console log) where the agent serves them."""
    from dataclasses import replace

    from synth.codec import run_from_dict
    from synth.model import Artifact
    from synth.outputs.report_junit import write_junit_report

    results = []
    pages: dict[str, str | None] = {}
    links: dict[tuple[str, str], str] = {}
    for run_id in record.get("run_ids") or []:
        path = f"/v1/runs/{quote(str(run_id), safe='')}"
        response = client.get(agent + path, headers=credentials_from_env("GET", path, b""))
        if response.status_code != 200:
            raise ValueError(f"run {run_id}: {response.status_code}: {_detail(response)}")
        data = response.json()
        served = [a for a in data.get("artifacts") or [] if isinstance(a, dict)]
        # The bytes stay in the agent: the report names each artifact and links it.
        listed = tuple(
            Artifact(str(a["name"]), str(a.get("content_type", "")), b"", a.get("step"))
            for a in served
        )
        results.append(replace(run_from_dict(data), artifacts=listed))
        pages[str(run_id)] = data.get("page_url")
        for a in served:
            url = str(a.get("url") or "")
            links[str(run_id), str(a["name"])] = url if "://" in url else agent + url
    write_junit_report(
        args.junit or "-",
        results,
        env=args.env,
        run_page=pages.get,
        artifact_link=lambda run_id, name: links.get((run_id, name), ""),
    )


def _detail(response: httpx2.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:200]
    return json.dumps(detail) if not isinstance(detail, str) else detail
