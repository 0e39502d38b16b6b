"""`/ui/`: the agent's web pages — overview, check, run, deploys, caught before production
and silences. Reads follow `server.read_auth` (a browser gives a token as the password of
Basic credentials); every page says how long it took the server (`Server-Timing`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from synth.agent import artifacts
from synth.alerting.silences import Silence, Target
from synth.store import StoreError
from synth.ui.caught import caught_by_week, production_test
from synth.ui.check_page import check_page
from synth.ui.deploy_list import list_deploys
from synth.ui.overview import Filters, Overview, check_rows
from synth.ui.render import Pages

if TYPE_CHECKING:
    from synth.agent.app import Agent
    from synth.store import Store

NO_NUL = r"^[^\x00]*$"  # PostgreSQL refuses NUL in text: a 422 here, not a store error
Name = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]
PathName = Annotated[str, Path(max_length=200, pattern=NO_NUL)]
StatusFilter = Literal["failing", "passing", "silenced", "no runs"]


def ui_router(agent: Agent) -> APIRouter:
    """The pages of `agent`, rendered from its checks and its store."""
    # Pages for people, not the API: kept out of the OpenAPI document.
    router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    pages = Pages()
    overview = Overview()

    def store() -> Store:
        if agent.store is None:
            raise HTTPException(503, "store unavailable: the pages read the store")
        return agent.store

    def render(template: str, started: float, **context: Any) -> HTMLResponse:
        context.setdefault("now", datetime.now(UTC))
        html = pages.render(template, **context)
        took = (time.perf_counter() - started) * 1000
        return HTMLResponse(html, headers={"server-timing": f"app;dur={took:.1f}"})

    def silences(now: datetime) -> list[Silence]:
        """The silences in force or to come, their free text through the redactor."""
        redactor = agent.alerts.redactor()
        return [s.redacted(redactor) for s in agent.alerts.silences.listing(now)]

    def covering(now: datetime) -> Any:
        """The silence book's lookup, or None when nothing is silenced (no lookup per row)."""
        book = agent.alerts.silences
        return book.covering if any(s.active_at(now) for s in book.listing(now)) else None

    def environments() -> list[str]:
        return sorted(agent.settings.environments) or sorted(
            {env for c in agent.state.checks for env in c.environments}
        )

    @router.get("/ui", include_in_schema=False)
    async def ui_root() -> Response:
        return RedirectResponse("/ui/", status_code=308)

    @router.get("/ui/")
    async def overview_page(
        service: Name = None,
        env: Name = None,
        tag: Name = None,
        status: StatusFilter | None = None,
        q: Name = None,
        page: int = Query(default=1, ge=1, le=100_000),
        per_page: int = Query(default=50, ge=10, le=200),
    ) -> HTMLResponse:
        """Every check × environment with its status, last run, last failure, uptime over
        24 h and 7 d and its latest durations; filtered, failing first, a page at a time."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        filters = Filters(service, env, tag, status, q)
        await agent.alerts.silences.refresh(now)
        try:
            shown = await overview.page(
                store(),
                agent.state.checks,
                environments(),
                covering(now),
                filters=filters,
                page=page,
                per_page=per_page,
                now=now,
                location=agent.settings.location,
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        checks = agent.state.checks
        return render(
            "overview.html",
            started,
            now=now,
            shown=shown,
            filters=filters,
            per_page=per_page,
            services=sorted({c.service for c in checks}),
            environments=environments(),
            tags=sorted({t for c in checks for t in c.tags}),
            silences=silences(now),
            problems=agent.state.problems,
        )

    @router.get("/ui/checks/{name}")
    async def check_view(
        name: PathName,
        env: Name = None,
        before: datetime | None = None,
        per_page: int = Query(default=50, ge=10, le=200),
    ) -> HTMLResponse:
        """A check: its status per environment, its runs over time, failure types per day
        and each step's pre-prod baseline beside its latency here."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        check = next((c for c in agent.state.checks if c.name == name), None)
        if check is None:
            raise HTTPException(404, f"no check {name[:100]!r} is loaded")
        await agent.alerts.silences.refresh(now)
        try:
            data = await check_page(
                store(),
                check=check.name,
                env=env,
                before=before,
                per_page=per_page,
                baseline_env=agent.settings.baseline.from_env,
                now=now,
            )
            status = await check_rows(
                store(),
                check,
                environments(),
                covering(now),
                env=env,
                now=now,
                location=agent.settings.location,
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        matching = [
            s
            for s in silences(now)
            for e in check.environments or environments()
            if s.matches(Target(check.name, e, check.service, check.tags))
        ]
        return render(
            "check.html",
            started,
            now=now,
            check=check,
            env=env,
            data=data,
            status=status,
            per_page=per_page,
            silences=list({s.id: s for s in matching}.values()),
            baseline_env=agent.settings.baseline.from_env,
        )

    @router.get("/ui/runs/{run_id}")
    async def run_view(run_id: PathName) -> HTMLResponse:
        """One run: every step with its timings as a phase bar, the request (redacted),
        expected vs actual, the response excerpt, the trace and the browser's artifacts."""
        started = time.perf_counter()
        try:
            result = await store().get_run(run_id)
            stored = await store().list_artifacts(run_id) if result else []
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if result is None:
            raise HTTPException(404, f"no run {run_id[:100]!r}")
        check = next((c for c in agent.state.checks if c.name == result.check), None)
        name = (check.playbook if check else None) or agent.settings.default_playbook
        playbook = agent.settings.playbooks.get(name) if name else None
        template = playbook.trace_url_template if playbook else None
        trace_url = (
            template.format(trace_id=result.trace_id) if template and result.trace_id else None
        )
        return render(
            "run.html",
            started,
            run=result,
            check=check,
            trace_url=trace_url,
            artifacts=stored,
        )

    @router.get("/ui/runs/{run_id}/artifacts/{name}", response_class=Response)
    async def run_artifact(run_id: PathName, name: PathName) -> Response:
        """A run's artifact for its page (the same bytes as the API's)."""
        if not artifacts.valid_name(name):
            raise HTTPException(404, f"no artifact {name[:100]!r}")
        try:
            found = await store().get_artifact(run_id, name)
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if found is None:
            raise HTTPException(404, f"no artifact {name!r} of run {run_id[:100]!r}")
        return artifacts.response(name, *found)

    @router.get("/ui/deploys")
    async def deploys_view(
        service: Name = None,
        env: Name = None,
        before: datetime | None = None,
        per_page: int = Query(default=50, ge=10, le=200),
    ) -> HTMLResponse:
        """Deploys per service and environment, newest first, with their verdicts, failing
        checks and baseline findings."""
        started = time.perf_counter()
        try:
            found, older = await list_deploys(
                store(), service=service, env=env, before=before, limit=per_page
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        return render(
            "deploys.html",
            started,
            deploys=found,
            older=older,
            service=service,
            env=env,
            per_page=per_page,
            services=sorted({c.service for c in agent.state.checks}),
            environments=environments(),
        )

    @router.get("/ui/deploys/{deploy_id}")
    async def deploy_view(deploy_id: PathName) -> HTMLResponse:
        """One deploy: its verdict, failing checks, findings and verification runs."""
        started = time.perf_counter()
        try:
            record = await store().get_deploy(deploy_id)
            runs = await store().list_runs(deploy_id=deploy_id, limit=200) if record else []
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        if record is None:
            raise HTTPException(404, f"no deploy {deploy_id[:100]!r}")
        return render("deploy.html", started, deploy=record, runs=runs)

    @router.get("/ui/caught")
    async def caught_view(
        service: Name = None, weeks: int = Query(default=12, ge=1, le=60)
    ) -> HTMLResponse:
        """Distinct failures per week, service and failure type: first seen before
        production or in production."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        since = now - timedelta(weeks=weeks)
        try:
            counts = await caught_by_week(
                store(),
                is_production=production_test(agent.settings),
                since=since,
                service=service,
            )
        except StoreError as exc:
            raise HTTPException(503, f"store unavailable: {exc}") from None
        before = sum(c.before_production for c in counts)
        total = before + sum(c.in_production for c in counts)
        return render(
            "caught.html",
            started,
            now=now,
            counts=counts,
            weeks=weeks,
            service=service,
            services=sorted({c.service for c in agent.state.checks}),
            before=before,
            total=total,
            production=[e for e in environments() if production_test(agent.settings)(e)],
        )

    @router.get("/ui/silences")
    async def silences_view() -> HTMLResponse:
        """Active and upcoming silences and maintenance windows."""
        started = time.perf_counter()
        now = datetime.now(UTC)
        await agent.alerts.silences.refresh(now, force=True)
        return render("silences.html", started, now=now, silences=silences(now))

    return router
