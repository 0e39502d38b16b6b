"""One canary secret, used in a header, a JSON body, a query parameter, a path segment (a
request outside any step, so synth names the step), a Basic credential, a log line and a
print, in passing and failing runs — then every sink is searched for every encoding of
it: the terminal report, the JSON report, JUnit, the agent's JSON logs and `synth run`'s
text logs, /metrics, /v1/runs and /v1/runs/{id} (a retried run's failed attempts
included), the SQLite file's bytes, the raw OTLP export bodies and the PagerDuty payloads
(the flaky-check notification included, and the stored outbox)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote

import yaml
from agent_harness import (
    ENV,
    SYNTH,
    StartAgent,
    clean_env,
    wait_for,
    write_check,
    write_config,
)
from otlp_receiver import OtlpHttpReceiver, otel_env
from pagerduty_standin import PagerDutyStandIn

if TYPE_CHECKING:
    from tests.integration.conftest import Exchange, StartServer

CANARY = 'Cn4ry s3cr/t"@+%9q'
USER = "alice"
ROUTING_KEY = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12"

CHECKS = """
    import base64
    import logging

    import synth

    log = logging.getLogger("checks.canary")


    async def use_everywhere(flow, *, status):
        key = flow.secret("canary")
        log.warning("calling with key %s", key)
        print(f"printed key {key}")
        basic = base64.b64encode(f"alice:{key}".encode()).decode()
        # Outside any step: synth names this step after the request's path.
        (await flow.get(f"/x/{key}")).expect_status(404)
        async with flow.step("call api"):
            r = await flow.post(
                "/echo",
                params={"key": key, "q": "visible"},
                headers={"X-Custom": key, "Authorization": f"Basic {basic}"},
                json={"note": key},
            )
            r.expect_status(status)


    @synth.check(service="shop", timeout="5s")
    async def canary_pass(flow):
        await use_everywhere(flow, status=200)


    @synth.check(service="shop", timeout="5s", playbook="oncall")
    async def canary_fail(flow):
        await use_everywhere(flow, status=201)


    attempts = []


    @synth.check(service="shop", timeout="5s", playbook="oncall")
    async def canary_flaky(flow):
        # Fails its first attempt, passes its retry: a transient failure, kept in the run's
        # failed attempts and told in the flaky-check notification.
        attempts.append(1)
        await use_everywhere(flow, status=201 if len(attempts) % 2 else 200)
"""


def forms(secret: str) -> dict[str, str]:
    """Every encoding the canary can take on the wire or in an output."""
    percent = quote(secret, safe="")
    return {
        "raw": secret,
        "percent": percent,
        "percent-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), percent),
        "percent-path": quote(secret),
        "httpx-path": quote(secret, safe="!$&'()*+,;=:@/"),
        "form": quote_plus(secret),
        "json": json.dumps(secret)[1:-1],
        "json-twice": json.dumps(json.dumps(secret)[1:-1])[1:-1],
        "base64": base64.b64encode(secret.encode()).decode(),
        "basic": base64.b64encode(f"{USER}:{secret}".encode()).decode(),
    }


def echo(ex: Exchange) -> None:
    request = ex.request
    ex.respond(
        200,
        {
            "target": request.target,
            "headers": request.headers,
            "body": request.body.decode(errors="replace"),
        },
    )


def configure(directory: Path, target: str, pagerduty: PagerDutyStandIn) -> Path:
    path = write_config(directory, target, scheduler={"enabled": False})
    config = yaml.safe_load(path.read_text())
    config["environments"][ENV]["secrets"]["canary"] = {"value": CANARY}
    ca = directory / "pagerduty-ca.pem"
    pagerduty.ca.cert_pem.write_to_path(str(ca))
    config["pagerduty"] = {"api_url": pagerduty.url, "ca_file": str(ca), "timeout": "2s"}
    config["playbooks"] = {
        "oncall": {
            "routing_key": ROUTING_KEY,
            "trigger": {"consecutive": 1},
            "resolve_after": 1,
            "flaky": {"notify_above": 0.01, "min_runs": 1},
        }
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def leaks(sinks: dict[str, bytes]) -> list[str]:
    found = []
    for sink, content in sinks.items():
        for form, shown in forms(CANARY).items():
            if shown.encode() in content:
                found.append(f"{form} form in {sink}")
    return found


def test_a_canary_secret_reaches_no_sink_in_any_encoding(
    tmp_path: Path,
    http_server: StartServer,
    start_agent: StartAgent,
    pagerduty: PagerDutyStandIn,
    otlp_http: Callable[..., OtlpHttpReceiver],
) -> None:
    target = http_server({"/echo": echo})
    receiver = otlp_http()
    write_check(tmp_path, "canary.py", CHECKS)
    config = configure(tmp_path, target.base_url, pagerduty)
    agent = start_agent(config, "--log-format", "json", env=otel_env(receiver.endpoint))

    results = {}
    for check in ("canary_pass", "canary_fail", "canary_flaky"):
        response = agent.post("/v1/runs", {"check": check, "environment": ENV})
        assert response.status_code == 200, response.text
        results[check] = response.json()
    assert results["canary_pass"]["status"] == "passed", results["canary_pass"]
    assert results["canary_fail"]["status"] == "failed"
    assert results["canary_flaky"]["outcome"] == "passed_after_retry", results["canary_flaky"]
    assert results["canary_flaky"]["failed_attempts"], results["canary_flaky"]
    # The canary really went out, in every place the check put it.
    sent = target.requests
    assert any(CANARY in unquote(r.target) for r in sent)
    assert any(r.headers.get("x-custom") == CANARY for r in sent)

    trigger = wait_for(
        lambda: (
            [
                e
                for e in pagerduty.accepted("trigger")
                if "canary_fail" in e.body.get("dedup_key", "")
            ]
            or None
        ),
        timeout=15,
        what="the canary_fail page",
    )
    wait_for(
        lambda: (
            any(
                "flaky:canary_flaky" in e.body.get("dedup_key", "")
                for e in pagerduty.accepted("trigger")
            )
            or None
        ),
        timeout=15,
        what="the flaky-check notification of canary_flaky",
    )
    receiver.wait_for(
        lambda s: {"canary_pass", "canary_fail"} <= {x.name for x in s if not x.parent_span_id}
    )
    wait_for(
        lambda: any("printed key" in line for line in agent.stdout().splitlines()),
        timeout=10,
        what="the check's print on the agent's stdout",
    )
    sinks: dict[str, bytes] = {
        "agent stderr (JSON logs)": agent.stderr().encode(),
        "agent stdout (print)": agent.stdout().encode(),
        "/metrics": agent.get("/metrics").content,
        "/v1/runs": agent.get("/v1/runs", limit=50).content,
        "OTLP export bodies": b"".join(receiver.raw_bodies),
        "PagerDuty events": json.dumps(
            [{k: v for k, v in e.body.items() if k != "routing_key"} for e in pagerduty.accepted()]
        ).encode(),
    }
    for check, result in results.items():
        sinks[f"/v1/runs/{check}"] = agent.get(f"/v1/runs/{result['run_id']}").content
        sinks[f"POST /v1/runs {check}"] = json.dumps(result).encode()
    page = next(e for e in trigger if "canary_fail" in e.body.get("dedup_key", ""))
    assert "***" in json.dumps(page.body), "the page shows the secret masked"
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("synth.db*"))
    assert b"canary_fail" in stored
    sinks["SQLite files"] = stored

    # The same checks once more through `synth run`: terminal, JSON, JUnit, text logs.
    report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
    ran = subprocess.run(
        [
            SYNTH,
            "run",
            "--config",
            str(config),
            "--env",
            ENV,
            "--no-page",
            "--no-color",
            "--json",
            str(report),
            "--junit",
            str(junit),
            str(tmp_path / "checks"),
        ],
        capture_output=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert ran.returncode == 1, ran.stderr.decode()
    assert b"calling with key ***" in ran.stderr
    sinks |= {
        "synth run stdout (terminal report, print)": ran.stdout,
        "synth run stderr (text logs)": ran.stderr,
        "JSON report": report.read_bytes(),
        "JUnit": junit.read_bytes(),
    }
    assert b"printed key ***" in ran.stdout
    assert b"GET /x/***" in sinks["JSON report"], "the generated step name, masked"

    assert leaks(sinks) == []
