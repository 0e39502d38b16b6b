"""The agent's HTTP API, with its OpenAPI document at /openapi.json.

Requests are size-bounded and authenticated in an ASGI middleware, before routing or
parsing: writes (every non-GET request) always, reads too with `server.read_auth`, and
`/metrics` with `server.metrics_tokens`; no or bad credentials get 401 and nothing runs.
Every JSON body is then read by the one strict reader (`json_body`): too deep, not JSON
or holding values no store can keep gets 400/422 with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from synth import __version__
from synth.agent import artifacts, json_body, openapi
from synth.agent.adapters import hooks_router
from synth.agent.auth import AuthError, request_target
from synth.agent.cluster_status import cluster_status
from synth.agent.deploy_pages import deploy_with_pages
from synth.agent.deploys import DeployEvent, DeployRefused
from synth.agent.silences_api import silences_router
from synth.alerting.policy import retries_for
from synth.baseline.record import StepBaseline
from synth.baseline.sketch import DEFAULT_ACCURACY
from synth.codec import run_to_dict
from synth.model import Phase, RunRequest, Status
from synth.outputs.page_links import run_page_url
from synth.store import StoreError, StoreRefused
from synth.store.records import DeployRecord
from synth.ui.routes import ui_router
from synth.uptime import SINCE_PATTERN, build_report, report_to_dict, report_window

if TYPE_CHECKING:
    from synth.agent.app import Agent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_WAIT_S = 300.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Kubelet probes carry no credentials: these stay open whatever `server.read_auth` says.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
MAX_FRAGMENTS = 1000


class RunNow(BaseModel):
    """Body of `POST /v1/runs`."""

    model_config = ConfigDict(extra="forbid")

    check: str = Field(min_length=1, max_length=80)
    environment: str = Field(min_length=1, max_length=100)


_COUNT = {"type": "integer", "minimum": 0}
_NAME_FIELD = {"type": "string", "minLength": 1, "maxLength": 200}
# As StepBaseline.to_dict writes it. JSON Schema cannot say the rest StepBaseline.from_dict
# checks (passed <= runs; a sketch's count == zeros + the sum of its buckets): a fragment
# breaking those is a 422 naming it.
FRAGMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        *("check", "environment", "step", "version"),
        *("runs", "passed", "latency", "contract"),
    ],
    "properties": {
        "check": _NAME_FIELD,
        "environment": _NAME_FIELD,
        "step": _NAME_FIELD,
        "version": _NAME_FIELD,
        "runs": _COUNT,
        "passed": _COUNT,
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "latency": {
            "type": "object",
            "required": ["accuracy", "count", "buckets"],
            "properties": {
                "accuracy": {"const": DEFAULT_ACCURACY},
                "count": _COUNT,
                "zeros": _COUNT,
                "min": {"type": ["number", "null"]},
                "max": {"type": ["number", "null"]},
                "buckets": {"type": "object", "additionalProperties": _COUNT},
            },
        },
        "contract": {
            "type": "object",
            "required": ["samples", "fields"],
            "properties": {"samples": _COUNT, "fields": {"type": "object"}},
        },
    },
}


class BaselineBatch(BaseModel):
    """Body of `POST /v1/baselines`: fragments as `StepBaseline.to_dict` writes them."""

    model_config = ConfigDict(extra="forbid")

    fragments: list[Annotated[dict[str, Any], WithJsonSchema(FRAGMENT_SCHEMA)]] = Field(
        min_length=1, max_length=MAX_FRAGMENTS
    )


def build_api(agent: Agent) -> ASGIApp:
    """The ASGI application serving `agent`."""
    app = FastAPI(
        title="synth agent API",
        version=__version__,
        description="Run checks, announce deploys and read verdicts.",
    )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the event loop answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Readiness: config and checks loaded, scheduler running, store reachable and
        taking writes."""
        parts = await agent.ready()
        ready = all(v for k, v in parts.items() if k != "stopping") and not parts["stopping"]
        body = {"ready": ready, **parts, "reload": asdict(agent.last_reload)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics; OpenMetrics (with exemplars) when the scraper asks for it."""
        # Seconds of pure Python at thousands of checks: rendered chunk by chunk on a
        # worker thread as it is sent (Starlette iterates a plain iterator off the loop),
        # so a scrape neither holds up the scheduler nor holds the whole page in memory.
        chunks, content_type = agent.metrics.stream(request.headers.get("accept"))
        return StreamingResponse(chunks, media_type=content_type)

    @app.get("/debug/scheduler-lag", include_in_schema=False)
    async def scheduler_lag(after: int = Query(default=0, ge=0)) -> dict[str, Any]:
        """Recent schedule lags in seconds, numbered: poll with `after` = the last `count`
        seen to get each sample once (`missed`: dropped before it was read)."""
        count, missed, samples = agent.lags.since(after)
        return {"count": count, "missed": missed, "lags_s": samples}

    @app.get("/v1/checks", tags=["checks"])
    async def list_checks() -> dict[str, Any]:
        """The active checks."""
        return {
            "checks": [
                {
                    "name": c.name,
                    "service": c.service,
                    "environments": list(c.environments),
                    "schedule": c.schedule.describe(),
                    "timeout_s": c.timeout_s,
                    "retries": retries_for(c, agent.settings),
                    "sensitivity": c.sensitivity.value if c.sensitivity else None,
                    "flaky": {
                        env: {
                            "ratio": round(f.ratio, 4),
                            "runs_24h": f.runs,
                            "transient_failures_24h": f.transient,
                            "step": f.step,
                            "failure_type": f.failure_type.value if f.failure_type else None,
                        }
                        for env in agent.settings.environments
                        if c.applies_to(env)
                        and (f := agent.alerts.flaky.flakiness(c.name, env)).runs
                    },
                    "tags": list(c.tags),
                    "playbook": c.playbook,
                    "description": c.description,
                    "runbook_url": c.runbook_url,
                    "source": str(c.source) if c.source else None,
                    "kind": c.kind,
                }
                for c in agent.state.checks
            ],
            "problems": list(agent.state.problems),
        }

    @app.get("/v1/runs", tags=["runs"])
    async def list_runs(
        check: str | None = Query(default=None, max_length=80),
        env: str | None = Query(default=None, max_length=100),
        phase: Phase | None = None,
        deploy_id: str | None = Query(default=None, max_length=64),
        status: Status | None = None,
        limit: int = Query(default=50, ge=1, le=500),
    ) -> dict[str, Any]:
        """Recent runs, newest first; `status` passed or failed (a run that passed on a
        retry is passed)."""
        store = _store(agent)
        try:
            runs = await store.list_runs(
                check=check, env=env, phase=phase, deploy_id=deploy_id, limit=limit, status=status
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return {"runs": [_summary(r) for r in runs]}

    @app.get("/v1/report", tags=["runs"])
    async def uptime_report(
        since: str = Query(
            default="30d", pattern=SINCE_PATTERN, description="30d, 12h, 90m, ... (≤ 400d)"
        ),
        service: str | None = Query(default=None, max_length=100),
        env: str | None = Query(default=None, max_length=100),
    ) -> dict[str, Any]:
        """Uptime over the period up to now: availability, failures by type and transient
        failures per check × environment; incidents with their time to detect and to
        recover (the numbers of `synth report`)."""
        try:
            window = report_window(since)
        except ValueError as exc:
            raise HTTPException(400, f"since: {exc}") from None
        store = _store(agent)
        try:
            report = await build_report(
                store, since=window[0], until=window[1], service=service, environment=env
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return report_to_dict(report)

    @app.get("/v1/runs/{run_id}", tags=["runs"])
    async def get_run(run_id: str) -> dict[str, Any]:
        """One run with full step detail."""
        store = _store(agent)
        try:
            result = await store.get_run(run_id[:64])
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if result is None:
            raise HTTPException(404, f"no run {run_id[:64]!r}")
        try:
            stored = await store.list_artifacts(result.run_id)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        body = run_to_dict(result)
        body["artifacts"] = _linked(result.run_id, map(artifacts.info_to_dict, stored))
        body["page_url"] = run_page_url(agent.settings.server.public_url, result.run_id)
        return body

    @app.get(
        "/v1/runs/{run_id}/artifacts/{name}",
        tags=["runs"],
        response_class=Response,
        responses=artifacts.OPENAPI_200,
    )
    async def get_artifact(
        run_id: str,
        name: Annotated[str, Path(json_schema_extra={"pattern": artifacts.NAME_PATTERN})],
    ) -> Response:
        """One artifact of a run (a browser step's screenshot, Playwright trace or console
        log), served with its content type: `url` in the run's `artifacts` points here."""
        if not artifacts.valid_name(name):
            raise HTTPException(
                404, f"no artifact {name[:100]!r}: names match {artifacts.NAME_PATTERN}"
            )
        store = _store(agent)
        try:
            found = await store.get_artifact(run_id[:64], name)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if found is None:
            raise HTTPException(404, f"no artifact {name!r} of run {run_id[:64]!r}")
        content_type, data = found
        return artifacts.response(name, content_type, data)

    @app.post("/v1/runs", tags=["runs"])
    async def run_now(body: RunNow) -> dict[str, Any]:
        """Run a check now and return its result."""
        check = next((c for c in agent.state.checks if c.name == body.check), None)
        if check is None:
            raise HTTPException(404, f"no check named {body.check!r}")
        if body.environment not in agent.settings.environments:
            raise HTTPException(404, f"no environment named {body.environment!r}")
        if not agent.checks_for(check.service, body.environment, ()):
            raise HTTPException(404, f"check {check.name!r} does not run in {body.environment!r}")
        if agent.stopping:
            raise HTTPException(503, "agent is stopping")
        result = await agent.execute(
            RunRequest(
                check=check,
                environment=body.environment,
                phase=Phase.ADHOC,
                location=agent.settings.location,
            )
        )
        ran = run_to_dict(result)
        ran["artifacts"] = _linked(result.run_id, ran["artifacts"])
        ran["page_url"] = run_page_url(agent.settings.server.public_url, result.run_id)
        return ran

    @app.post("/v1/deploys", tags=["deploys"], status_code=202)
    async def announce_deploy(event: DeployEvent, response: Response) -> dict[str, Any]:
        """Verify a deploy: runs the service's checks in that environment. 202 with the
        deploy id; the same idempotency id again answers 200 with the existing deploy."""
        if agent.stopping:
            raise HTTPException(503, "agent is stopping")
        try:
            record, created = await agent.deploys.submit(event)
        except DeployRefused as exc:
            raise HTTPException(exc.status, str(exc)) from None
        if not created:
            response.status_code = 200
        return _deploy(record)

    @app.get("/v1/deploys/{deploy_id}", tags=["deploys"])
    async def get_deploy(
        deploy_id: str,
        wait: float = Query(default=0, ge=0, le=MAX_WAIT_S, description="long-poll seconds"),
    ) -> dict[str, Any]:
        """A deploy's status and verdict; `wait` long-polls until it is finished."""
        try:
            if wait > 0:
                record = await agent.deploys.wait(deploy_id[:64], wait)
            else:
                record = await agent.deploys.get(deploy_id[:64])
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if record is None:
            raise HTTPException(404, f"no deploy {deploy_id[:64]!r}")
        return _deploy(record)

    @app.post("/v1/baselines", tags=["baselines"])
    async def record_baselines(batch: BaselineBatch) -> dict[str, Any]:
        """Merge pre-prod baseline fragments (from `synth run --record-baseline` or the
        pytest plugin) into the store."""
        fragments = []
        for index, data in enumerate(batch.fragments):
            try:
                fragment = StepBaseline.from_dict(data)
            except ValueError as exc:
                raise HTTPException(422, f"fragments[{index}]: {exc}") from None
            if fragment.latency.accuracy != DEFAULT_ACCURACY:  # sketches merge only alike
                raise HTTPException(
                    422, f"fragments[{index}]: latency.accuracy must be {DEFAULT_ACCURACY}"
                )
            fragments.append(fragment)
        store = _store(agent)
        try:
            merged = await store.merge_baselines(fragments)
        except StoreRefused as exc:
            raise HTTPException(422, str(exc)) from None
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        agent.baselines.invalidate({f.check for f in fragments})
        return {"merged": merged}

    @app.get("/v1/baselines", tags=["baselines"])
    async def list_baselines(
        check: str | None = Query(default=None, max_length=200),
        env: str | None = Query(default=None, max_length=100),
    ) -> dict[str, Any]:
        """Stored baselines (every kept version), most recently updated first."""
        store = _store(agent)
        try:
            rows = await store.list_baselines(check=check, env=env)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return {"baselines": [row.to_dict() for row in rows]}

    @app.get("/v1/cluster", tags=["cluster"])
    async def cluster() -> dict[str, Any]:
        """This agent's cluster (agents sharing its PostgreSQL store and location): every
        member row with its lease and the checks it runs, and this member's own state."""
        try:
            return await cluster_status(agent)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None

    @app.post("/v1/reload", tags=["admin"])
    async def reload() -> JSONResponse:
        """Reload config and checks; with errors the previous set keeps running (422)."""
        outcome = await agent.reload()
        body = asdict(outcome)
        if not outcome.ok:  # like every 4xx, say why in `detail`
            body["detail"] = "reload rejected; the previous checks keep running: " + "; ".join(
                outcome.problems
            )
        return JSONResponse(body, status_code=200 if outcome.ok else 422)

    def _linked(run_id: str, listed: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return artifacts.linked(agent.settings.server.public_url, run_id, listed)

    def _deploy(record: DeployRecord) -> dict[str, Any]:
        return deploy_with_pages(record, agent.settings.server.public_url)

    app.include_router(hooks_router(agent))
    app.include_router(silences_router(agent))
    app.include_router(ui_router(agent))
    openapi.install(app)
    return WriteGuard(app, agent)


def _store(agent: Agent) -> Any:
    if agent.store is None:
        raise HTTPException(503, "store unavailable")
    return agent.store


def _summary(summary: Any) -> dict[str, Any]:
    data = asdict(summary)
    for key, value in data.items():
        if hasattr(value, "isoformat"):
            data[key] = value.isoformat()
        elif hasattr(value, "value"):
            data[key] = value.value
    return data


class WriteGuard:
    """ASGI middleware: bounded request bodies everywhere; authentication on writes (and
    reads, with `server.read_auth`); one strict reading of every JSON body."""

    def __init__(self, app: ASGIApp, agent: Agent) -> None:
        self.app = app
        self.agent = agent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.agent.settings.server.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _reply(send, 413, f"request body over the {limit} byte limit")
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _reply(send, 413, f"request body over the {limit} byte limit")
                return
        path = str(scope.get("path", ""))
        # CD-tool hooks authenticate, and read their bodies, the way their tool sends them
        # (synth/agent/adapters).
        hook = path.startswith("/v1/hooks/")
        try:
            self._authenticate(scope, path, hook, headers, body)
        except AuthError as exc:
            # The pages are read by browsers: ask them for Basic credentials (a token).
            challenge = (
                'Basic realm="synth", charset="UTF-8"' if path.startswith("/ui") else "Bearer"
            )
            await _reply(send, 401, str(exc), {"www-authenticate": challenge})
            return
        if body and not hook:
            try:
                json_body.load(body)
            except json_body.BadJson as exc:
                await _reply(send, exc.status, exc.reason)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authenticate(
        self, scope: Scope, path: str, hook: bool, headers: dict[str, str], body: bytes
    ) -> None:
        """Writes always; reads too with `server.read_auth`, except the probes' endpoints;
        `/metrics` with its own `server.metrics_tokens` when set."""
        authenticator = self.agent.authenticator
        method = str(scope["method"])
        if path == "/metrics":
            authenticator.verify_metrics(headers)
            return
        if hook or path in PROBE_PATHS:
            return
        if method in SAFE_METHODS and not self.agent.settings.server.read_auth:
            return
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        authenticator.verify(headers, body, method=method, target=request_target(path, query))


async def _reply(send: Send, status: int, detail: str, extra: dict[str, str] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
