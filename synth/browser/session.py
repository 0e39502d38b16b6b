"""One run's browser: a fresh context (no cookies or storage carried over) with the
service's base URL, a page, what each step saw (the main document's status, page errors,
console errors, requests), `traceparent` on every request to the environment's services,
and the run's artifacts at the end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from synth.browser import vitals
from synth.browser.artifacts import ArtifactCollector
from synth.browser.engine import BrowserEngine
from synth.browser.facts import BrowserFacts
from synth.browser.failures import classify
from synth.model import Artifact, Failure, FailureType

if TYPE_CHECKING:
    from playwright.async_api import (
        BrowserContext,
        ConsoleMessage,
        Page,
        Request,
        Response,
        Route,
    )

    from synth.checks.context import FlowContext, StepRecorder

log = logging.getLogger("synth.browser")

CLOSE_TIMEOUT_S = 5.0
ARTIFACT_TIMEOUT_S = 5.0


@dataclass(slots=True)
class StepWatch:
    """What the page did during one step."""

    document_status: int | None = None
    document_url: str | None = None
    navigations: int = 0
    requests: int = 0
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    """The page's requests to the services that failed or answered 5xx."""
    error_responses: list[str] = field(default_factory=list)
    """Requests to the services answered 4xx/5xx (not the document): the likely cause of
    an element that never appeared."""
    crashed: bool = False


class BrowserSession:
    """The browser side of one run (FlowContext.page() creates it on first use)."""

    def __init__(self, ctx: FlowContext, engine: BrowserEngine) -> None:
        self._ctx = ctx
        self._engine = engine
        self._settings = engine.settings
        self._context: BrowserContext | None = None
        self._page: Page | None = None
        self._watch = StepWatch()
        self._origins = _service_origins(ctx)
        self._console: list[str] = []
        self._traceparent = ""
        self._tracing = False
        self._hung: str | None = None
        self._measured: StepRecorder | None = None
        # Requests to the services that answered 4xx/5xx since the page's document loaded
        # (in this step or an earlier one): why an element may never have appeared.
        self._document_errors: list[str] = []
        self._named: list[Artifact] = []
        self._holding = False  # one of the engine's slots

    # -- the page ------------------------------------------------------------------------

    async def page(self) -> Page:
        if self._page is not None:
            return self._page
        setting_up = time.perf_counter()
        try:
            return await self._open_page()
        finally:
            # Waiting for a slot, launching Chromium, creating the context: synth's own
            # time, not the target's. Left in, the first run's step held the browser's
            # launch and a pre-prod baseline measured synth's cold start.
            recorder = self._ctx.current
            if recorder is not None:
                recorder.local_wait_s += time.perf_counter() - setting_up

    async def _open_page(self) -> Page:
        if not self._holding:
            await self._engine.slots.acquire()
            self._holding = True
        context = await self._new_context()
        settings = self._settings
        self._context = context
        context.set_default_timeout(settings.action_timeout * 1000)
        context.set_default_navigation_timeout(settings.navigation_timeout * 1000)
        await context.add_init_script(vitals.INIT_SCRIPT)
        if settings.artifacts != "never":
            await context.tracing.start(
                snapshots=settings.trace_snapshots, screenshots=False, sources=False
            )
            self._tracing = True
        for origin in self._origins if settings.trace_requests else ():
            await context.route(f"{origin}/**", self._traced)
        page = await context.new_page()
        page.on("response", self._on_response)
        page.on("request", self._on_request)
        page.on("requestfailed", self._on_request_failed)
        page.on("pageerror", self._on_page_error)
        page.on("console", self._on_console)
        page.on("crash", self._on_crash)
        self._page = page
        return page

    async def _new_context(self) -> BrowserContext:
        """A fresh context; once more on a new browser if the one at hand died between
        runs (killed or crashed before its disconnect was noticed)."""
        from playwright.async_api import Error

        settings = self._settings
        target = self._ctx.target(None)
        tls = target.tls or self._ctx.environment.tls
        for attempt in (1, 2):
            browser = await self._engine.browser()
            try:
                return await browser.new_context(
                    base_url=target.base_url,
                    viewport={
                        "width": settings.viewport.width,
                        "height": settings.viewport.height,
                    },
                    ignore_https_errors=not tls.verify,
                    service_workers="block",  # every request goes through the route below
                )
            except Error as error:
                if attempt == 2 or not _closed(error):
                    raise
                self._engine.forget(browser)
        raise AssertionError("unreachable")

    async def _traced(self, route: Route, request: Request) -> None:
        try:
            if not self._traceparent:  # before the first step: no span to carry
                await route.continue_()
                return
            headers = await request.all_headers()
            headers["traceparent"] = self._traceparent
            await route.continue_(headers=headers)
        except Exception as error:  # the page went away while the request was routed
            log.debug("route not continued: %s", error)

    def _on_request(self, request: Request) -> None:
        self._watch.requests += 1

    def _on_response(self, response: Response) -> None:
        request = response.request
        page = self._page
        if (
            page is not None
            and request.is_navigation_request()
            and response.frame == page.main_frame
        ):
            self._watch.document_status = response.status
            self._watch.document_url = self._ctx.redactor.url(response.url)
            self._watch.navigations += 1
            self._document_errors = []
        elif response.status >= 400 and _origin(response.url) in self._origins:
            path = urlsplit(self._ctx.redactor.url(response.url)).path
            seen = f"{request.method} {path} answered {response.status}"
            self._watch.error_responses.append(seen)
            self._document_errors.append(seen)
            if response.status >= 500:
                self._watch.failed_requests.append(seen)

    def _on_request_failed(self, request: Request) -> None:
        if _origin(request.url) in self._origins:
            reason = request.failure or "failed"
            self._watch.failed_requests.append(
                self._ctx.redactor.text(f"{request.method} {request.url}: {reason}")
            )

    def _on_page_error(self, error: Any) -> None:
        message = getattr(error, "message", None) or str(error)
        name = getattr(error, "name", None)
        first = message.strip().splitlines()[0] if message.strip() else "(no message)"
        text = self._ctx.redactor.text(f"{name}: {first}" if name else first)
        self._watch.page_errors.append(text)
        self._console.append(f"{_clock()} pageerror {text}")

    def _on_console(self, message: ConsoleMessage) -> None:
        text = self._ctx.redactor.text(message.text)
        if message.type == "error":
            self._watch.console_errors.append(text)
        self._console.append(f"{_clock()} {message.type} {text}")

    def _on_crash(self, page: Page) -> None:
        self._watch.crashed = True
        self._console.append(f"{_clock()} crash the page's renderer crashed")

    # -- steps ---------------------------------------------------------------------------

    def step_started(self, recorder: StepRecorder) -> None:
        self._watch = StepWatch()
        self._traceparent = recorder.traceparent

    def step_problem(self) -> Failure | None:
        """What fails a step whose code raised nothing: a 4xx/5xx document, an uncaught
        page error, and (when configured) console errors or failed requests."""
        watch = self._watch
        if watch.crashed:
            return Failure(
                FailureType.SCRIPT_ERROR,
                "the page crashed (its renderer ran out of memory or was killed)",
            )
        status = watch.document_status
        if status is not None and status >= 400:
            failure_type = FailureType.AUTH if status in (401, 403) else FailureType.HTTP_STATUS
            return Failure(
                failure_type,
                f"the page answered {status}",
                expected="a document with status below 400",
                actual=str(status),
                method="GET",
                url=watch.document_url,
            )
        if watch.page_errors:
            return Failure(
                FailureType.SCRIPT_ERROR,
                f"uncaught error in the page: {watch.page_errors[0]}",
                actual="; ".join(watch.page_errors[:3]),
                url=watch.document_url,
                in_target=True,
            )
        if self._settings.fail_on_console_errors and watch.console_errors:
            return Failure(
                FailureType.SCRIPT_ERROR,
                f"console error in the page: {watch.console_errors[0]}",
                actual="; ".join(watch.console_errors[:3]),
                in_target=True,
            )
        if self._settings.fail_on_failed_requests and watch.failed_requests:
            return Failure(
                FailureType.HTTP_STATUS,
                f"a request of the page failed: {watch.failed_requests[0]}",
                actual="; ".join(watch.failed_requests[:3]),
            )
        return None

    def failure_for(self, error: BaseException) -> Failure | None:
        """`error` raised in a browser step, as a failure: the document's status or an
        uncaught page error first (the cause a locator timeout is only a symptom of)."""
        classified = classify(error)
        if classified is None:
            return None
        problem = self.step_problem()
        if problem is not None and classified.type in (
            FailureType.ASSERTION,
            FailureType.TIMEOUT,
        ):
            return problem
        message = classified.message
        if classified.type is FailureType.SCRIPT_ERROR and self._engine.last_exit:
            message = f"{message} (cause: {self._engine.last_exit})"
        elif self._document_errors:
            answered = "; ".join(dict.fromkeys(self._document_errors[-3:]))
            message = f"{message}; the page's requests to the service: {answered}"
        redact = self._ctx.redactor.text
        return Failure(
            classified.type,
            redact(message),
            expected=redact(classified.expected) if classified.expected else None,
            actual=redact(classified.actual) if classified.actual else None,
            url=self._watch.document_url,
        )

    async def step_ended(self, recorder: StepRecorder) -> None:
        """Record the step's facts (navigation timings, vitals, requests) and a span per
        navigation; never fails the step."""
        page = self._page
        if page is None or page.is_closed() or self._watch.crashed:
            return
        if self._measured is recorder:
            return
        self._measured = recorder
        reading = time.perf_counter()
        try:
            measured = await asyncio.wait_for(page.evaluate(vitals.READ_SCRIPT), 1.0)
        except Exception as error:
            log.debug("no browser timings for step %s: %s", recorder.name, error)
            measured = None
        # Measured inside a step (a YAML browser step returns its facts): synth's own time,
        # not the page's, like the local time of an HTTP step.
        recorder.local_wait_s += time.perf_counter() - reading
        facts = vitals.facts(measured, self._watch, self._ctx.redactor.url(page.url))
        recorder.facts = facts
        recorder.details.update(_display(facts))
        if measured and self._watch.navigations:
            start_ns, end_ns = vitals.navigation_span_ns(measured)
            document = self._watch.document_url or facts.url
            attributes: dict[str, str | int | float | bool] = {"url.full": document}
            if facts.status is not None:
                attributes["http.response.status_code"] = facts.status
            attributes.update({f"synth.browser.{k}_s": v for k, v in facts.timings().items()})
            self._ctx.tracer.finished_span("navigate", start_ns, end_ns, attributes)

    async def named_screenshot(self, name: str) -> None:
        """A screenshot the check asked for (`screenshot: cart`), kept unless
        `browser.artifacts` is `never`."""
        if self._page is None or self._settings.artifacts == "never":
            return
        collector = ArtifactCollector(self._ctx.redactor, self._settings.max_artifact_bytes)
        await collector.screenshot(self._page, name=f"{name}.png")
        self._named.extend(collector.artifacts())

    # -- the end of the run --------------------------------------------------------------

    async def finish(self, failed: bool) -> tuple[Artifact, ...]:
        """Keep the run's artifacts (per `browser.artifacts`) and close its context; a
        browser that does not close in time is killed. Returns the artifacts."""
        context, page = self._context, self._page
        self._context = self._page = None
        try:
            if context is None:
                return ()
            keep = self._settings.artifacts == "always" or (
                failed and self._settings.artifacts == "on_failure"
            )
            collector = ArtifactCollector(self._ctx.redactor, self._settings.max_artifact_bytes)
            try:
                await self._collect(collector, context, page, keep=keep)
                await asyncio.wait_for(context.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                pid = self._engine.kill("it did not close a run's context within 5 s")
                self._hung = (
                    f"the browser stopped answering; chromium (pid {pid}) killed and restarted"
                )
            except Exception as error:  # the browser went away: nothing more to collect
                log.debug("browser context not closed: %s", error)
            if keep:
                collector.console(self._console)
            return (*self._named, *collector.artifacts())
        finally:
            if self._holding:
                self._holding = False
                self._engine.slots.release()

    async def _collect(
        self,
        collector: ArtifactCollector,
        context: BrowserContext,
        page: Page | None,
        *,
        keep: bool,
    ) -> None:
        """The screenshot and trace, each within its own bound: a page still waiting for
        its document (an outage that accepts connections and never answers) must not
        cost the run its trace, nor its browser."""
        if keep and page is not None and not page.is_closed() and not self._watch.crashed:
            with contextlib.suppress(Exception):
                session = await asyncio.wait_for(context.new_cdp_session(page), 1.0)
                await asyncio.wait_for(session.send("Page.stopLoading"), 1.0)
            try:
                await asyncio.wait_for(collector.screenshot(page), ARTIFACT_TIMEOUT_S)
            except TimeoutError:
                collector.note("no screenshot: the page did not render within 5 s")
        if self._tracing:
            try:
                await asyncio.wait_for(collector.trace(context, keep=keep), ARTIFACT_TIMEOUT_S)
            except TimeoutError:
                collector.note("no trace: the browser did not write it within 5 s")

    @property
    def hung(self) -> str | None:
        """Why the run's browser was killed at the end of the run, if it was."""
        return self._hung


def _closed(error: Exception) -> bool:
    return "closed" in str(error).lower() or "crashed" in str(error).lower()


def _service_origins(ctx: FlowContext) -> tuple[str, ...]:
    origins = {_origin(target.base_url) for target in ctx.environment.services.values()}
    return tuple(sorted(o for o in origins if o))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def _clock() -> str:
    return time.strftime("%H:%M:%S", time.gmtime())


def _display(facts: BrowserFacts) -> dict[str, Any]:
    details: dict[str, Any] = {"url": facts.url, "requests": facts.requests, "bytes": facts.bytes}
    if facts.status is not None:
        details["status"] = facts.status
    for name, seconds in facts.timings().items():
        details[f"{name}_ms"] = round(seconds * 1000, 1)
    if facts.cls is not None:
        details["cls"] = round(facts.cls, 4)
    return details
