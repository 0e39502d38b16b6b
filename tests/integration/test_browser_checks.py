"""Browser checks through the real path: the Runner, flow.page() and the YAML `browser:`
step driving Debian's Chromium (Playwright) against a real site on 127.0.0.1
(browser_site.py) — what passes, how each failure is classified, traceparent on the
requests the page makes, artifacts, secrets never leaving a run, and a killed browser.

Every test shares one event loop and so one browser (synth.browser.engine keeps one per
loop); tests with other `browser:` settings close it before and after (own_engine).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import signal
import textwrap
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import pytest_asyncio
from browser_site import PAGE_ERROR, SIGNED_IN, Site, refused_port
from otlp_receiver import OtlpHttpReceiver, otel_env, otlp_http_fixture, tree  # noqa: F401
from playwright.async_api import expect

import synth
from synth import Flow
from synth.baseline.compare import compare
from synth.baseline.record import fragments
from synth.baseline.window import RecentLatency
from synth.browser.engine import close_running_loop_engine, engine_for_running_loop
from synth.browser.facts import BrowserFacts
from synth.checks.loader import load_checks
from synth.codec import run_to_dict
from synth.config import BaselineSettings, Settings
from synth.model import (
    CheckSpec,
    FailureType,
    Finding,
    Phase,
    RunRequest,
    RunResult,
    Severity,
    Status,
)
from synth.outputs.tracing import TracingConfig, start_tracing
from synth.runner import Runner

pytestmark = pytest.mark.asyncio(loop_scope="module")

ENV = "test"
TRACEPARENT = re.compile(r"^00-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-01$")
SECRET = "Zq7 hunter/2+x=S3cr3t!"
"""Typed into a text field: a space, `/`, `+` and `=` so its percent-encoded and base64
forms differ from it."""
BASE_BROWSER: dict[str, Any] = {
    "navigation_timeout": "1s",
    "action_timeout": "1500ms",
    "artifacts": "on_failure",
}
RUN_BOUND_S = 30.0


# -- fixtures and helpers -------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_browser() -> AsyncIterator[None]:
    """Closes the module loop's browser once every test has run."""
    yield
    await close_running_loop_engine()


@pytest.fixture
def site(module_browser: None) -> Iterator[Site]:
    running = Site().start()
    yield running
    running.stop()


def settings_for(site: Site, *, browser: dict[str, Any] | None = None, **env: Any) -> Settings:
    environment: dict[str, Any] = {
        "services": {"web": {"base_url": site.base_url}},
        "secrets": {"login": {"value": SECRET}},
        **env,
    }
    return Settings.model_validate(
        {
            "environments": {ENV: environment},
            "browser": {**BASE_BROWSER, **(browser or {})},
        }
    )


async def run(settings: Settings, spec: CheckSpec, runner: Runner | None = None) -> RunResult:
    runner = runner or Runner(settings)
    request = RunRequest(check=spec, environment=ENV)
    return await asyncio.wait_for(runner.run(request), RUN_BOUND_S)


def spec_of(func: Any) -> CheckSpec:
    spec = getattr(func, "__synth_check__", None)
    assert isinstance(spec, CheckSpec)
    return spec


def yaml_check(directory: Path, text: str) -> CheckSpec:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "check.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    loaded = load_checks([directory])
    assert loaded.problems == ()
    (spec,) = loaded.checks
    return spec


@contextlib.asynccontextmanager
async def own_engine() -> AsyncIterator[None]:
    """For a test with other `browser:` settings: the loop's engine (launched with the
    shared settings) is closed first, so it is not left running beside a second one, and
    the test's own is closed after it."""
    await close_running_loop_engine()
    try:
        yield
    finally:
        await close_running_loop_engine()


def failure_of(result: RunResult) -> tuple[FailureType, str]:
    assert result.status is Status.FAILED, run_to_dict(result)
    assert result.failure is not None
    return result.failure.type, result.failure.message


def artifacts_of(result: RunResult) -> dict[str, bytes]:
    return {artifact.name: artifact.data for artifact in result.artifacts}


# -- the checks -----------------------------------------------------------------------

SIGN_IN_YAML = f"""\
    name: sign_in_yaml
    service: web
    retries: 0
    timeout: 20s
    steps:
      - name: sign in
        browser:
          - goto: /
          - fill: {{label: Username, value: demo}}
          - click: {{role: button, name: Log in}}
          - expect_text: {{role: status, text: "{SIGNED_IN}"}}
          - expect_url: /welcome
    """


@synth.check(service="web", retries=0, timeout="20s")
async def sign_in_py(flow: Flow) -> None:
    async with flow.step("sign in"):
        page = await flow.page()
        await page.goto("/")
        await page.get_by_label("Username").fill("demo")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("status")).to_have_text(SIGNED_IN)
        await expect(page).to_have_url(re.compile(r"/welcome$"))


@synth.check(service="web", retries=0, timeout="20s")
async def sign_in_wrong_text(flow: Flow) -> None:
    """Fails after the page did everything (console line, fetch): for artifacts."""
    async with flow.step("sign in"):
        page = await flow.page()
        await page.goto("/")
        await page.get_by_label("Username").fill("demo")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("status")).to_have_text("Welcome back", timeout=1500)


@synth.check(service="web", retries=0, timeout="20s")
async def wrong_locator(flow: Flow) -> None:
    async with flow.step("sign up"):
        page = await flow.page()
        await page.goto("/")
        await page.get_by_role("button", name="Create account").click()


@synth.check(service="web", retries=0, timeout="20s")
async def slow_document(flow: Flow) -> None:
    async with flow.step("open slow"):
        page = await flow.page()
        await page.goto("/slow?hold=3")  # 3 s: three times the navigation timeout


@synth.check(service="web", retries=0, timeout="40s")
async def hanging_document(flow: Flow) -> None:
    async with flow.step("open hanging"):
        page = await flow.page()
        await page.goto("/slow?hold=60")  # answered only when the site stops


@synth.check(service="web", retries=0, timeout="20s")
async def evaluate_throws(flow: Flow) -> None:
    async with flow.step("evaluate"):
        page = await flow.page()
        await page.goto("/")
        await page.evaluate("() => { throw new Error('bad-eval-5521') }")


@synth.check(service="web", retries=0, timeout="20s")
async def throwing_page(flow: Flow) -> None:
    async with flow.step("open throws"):
        page = await flow.page()
        await page.goto("/throws")


@synth.check(service="dead", retries=0, timeout="20s")
async def refused(flow: Flow) -> None:
    async with flow.step("open refused"):
        page = await flow.page()
        await page.goto("/")


@synth.check(service="web", retries=0, timeout="20s")
async def secret_typed_py(flow: Flow) -> None:
    async with flow.step("sign in"):
        page = await flow.page()
        await page.goto("/")
        await page.get_by_label("Username").fill(flow.secret("login"))
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("status")).to_have_text(SIGNED_IN)
        # Fails, naming the field's actual value: the secret.
        await expect(page.get_by_label("Username")).to_have_value("someone else", timeout=1000)


SECRET_YAML = f"""\
    name: secret_typed_yaml
    service: web
    retries: 0
    timeout: 20s
    steps:
      - name: sign in
        browser:
          - goto: /
          - fill: {{label: Username, value: "${{secrets.login}}"}}
          - click: {{role: button, name: Log in}}
          - expect_text: {{role: status, text: "{SIGNED_IN}"}}
          - expect_text: {{role: status, text: Welcome back}}
    """


# -- 1. passing checks and their facts ------------------------------------------------


def assert_browser_facts(result: RunResult) -> None:
    assert result.status is Status.PASSED, run_to_dict(result)
    (step,) = result.steps
    facts = step.facts
    assert isinstance(facts, BrowserFacts), facts
    assert facts.status == 200
    assert facts.navigations >= 1
    assert facts.ttfb_s is not None
    assert facts.ttfb_s >= 0
    assert facts.requests >= 1
    assert facts.url.endswith("/welcome")


async def test_python_and_yaml_browser_checks_pass_with_page_facts(
    site: Site, tmp_path: Path
) -> None:
    settings = settings_for(site)
    runner = Runner(settings)
    python = await run(settings, spec_of(sign_in_py), runner)
    yaml = await run(settings, yaml_check(tmp_path, SIGN_IN_YAML), runner)

    assert_browser_facts(python)
    assert_browser_facts(yaml)
    # Both really used the site: two documents and two sign-ins.
    assert len(site.seen("/")) == 2
    assert [s.body for s in site.seen("/api/login")] == [b"demo", b"demo"]
    assert python.artifacts == ()
    assert yaml.artifacts == ()


# -- 2. failures in the shared vocabulary ----------------------------------------------


async def test_missing_element_is_an_assertion_naming_the_locator(
    site: Site, tmp_path: Path
) -> None:
    settings = settings_for(site)
    runner = Runner(settings)
    python = await run(settings, spec_of(wrong_locator), runner)
    yaml = await run(
        settings,
        yaml_check(
            tmp_path,
            """\
            name: wrong_locator_yaml
            service: web
            retries: 0
            steps:
              - name: sign up
                browser:
                  - goto: /
                  - click: {role: button, name: Create account}
            """,
        ),
        runner,
    )
    for result in (python, yaml):
        failure_type, message = failure_of(result)
        assert failure_type is FailureType.ASSERTION, message
        assert "Create account" in message
        assert result.failed_step == "sign up"


@pytest.mark.parametrize(
    ("path", "status", "failure_type"),
    [("/500", 500, FailureType.HTTP_STATUS), ("/401", 401, FailureType.AUTH)],
)
async def test_document_status_fails_the_step(
    site: Site, tmp_path: Path, path: str, status: int, failure_type: FailureType
) -> None:
    spec = yaml_check(
        tmp_path,
        f"""\
        name: status_{status}
        service: web
        retries: 0
        steps:
          - name: open
            browser:
              - goto: {path}
        """,
    )
    result = await run(settings_for(site), spec)
    found_type, message = failure_of(result)
    assert found_type is failure_type, message
    assert result.failure is not None
    assert result.failure.actual == str(status)
    assert result.failure.url == site.base_url + path
    step_facts = result.steps[0].facts
    assert isinstance(step_facts, BrowserFacts)
    assert step_facts.status == status


async def test_document_slower_than_the_navigation_timeout_is_a_timeout(site: Site) -> None:
    result = await run(settings_for(site), spec_of(slow_document))
    failure_type, message = failure_of(result)
    assert failure_type is FailureType.TIMEOUT, message
    assert "1000ms" in message
    assert site.seen("/slow"), "the browser never asked for the slow page"


async def test_a_document_that_never_comes_is_a_timeout_with_its_artifacts(site: Site) -> None:
    """The most common outage of all: the server accepts and never answers. The step times
    out after `navigation_timeout`; the run must stay a `timeout` with its trace and
    console log, and the browser (which is fine) must not be killed for it."""
    settings = settings_for(site)
    engine = engine_for_running_loop(settings.browser)
    result = await run(settings, spec_of(hanging_document))
    failure_type, message = failure_of(result)
    assert site.seen("/slow"), "the browser never asked for the page"
    assert failure_type is FailureType.TIMEOUT, message
    assert "1000ms" in message
    assert {"trace.zip", "console.log"} <= set(artifacts_of(result))
    assert engine.pid() is not None, "the browser was killed"


async def test_uncaught_page_error_is_a_script_error_naming_it(site: Site) -> None:
    result = await run(settings_for(site), spec_of(throwing_page))
    failure_type, message = failure_of(result)
    assert failure_type is FailureType.SCRIPT_ERROR, message
    assert PAGE_ERROR in message


async def test_refused_port_is_connect(site: Site) -> None:
    settings = settings_for(
        site,
        services={
            "web": {"base_url": site.base_url},
            "dead": {"base_url": f"http://127.0.0.1:{refused_port()}"},
        },
    )
    result = await run(settings, spec_of(refused))
    failure_type, message = failure_of(result)
    assert failure_type is FailureType.CONNECT, message
    assert result.failure is not None
    assert "ERR_CONNECTION_REFUSED" in (result.failure.actual or "")


# -- 3. traceparent ------------------------------------------------------------------


async def test_traceparent_on_the_document_and_the_pages_fetch(site: Site) -> None:
    other = Site().start()  # an origin that is not one of the environment's services
    try:

        @synth.check(service="web", retries=0, timeout="20s")
        async def sign_in_and_call_out(flow: Flow) -> None:
            await sign_in_py(flow)
            async with flow.step("third party"):
                page = await flow.page()
                await page.evaluate(
                    "url => fetch(url, {mode: 'no-cors'})", other.base_url + "/elsewhere"
                )

        result = await run(settings_for(site), spec_of(sign_in_and_call_out))
    finally:
        other.stop()
    assert result.status is Status.PASSED, run_to_dict(result)

    documents, fetches = site.seen("/"), site.seen("/api/login")
    assert len(documents) == 1
    assert len(fetches) == 1
    for seen in (documents[0], fetches[0]):
        traceparent = seen.headers.get("traceparent", "")
        found = TRACEPARENT.match(traceparent)
        assert found, f"{seen.path}: traceparent {traceparent!r}"
        assert found.group("trace") == result.trace_id
    (elsewhere,) = other.seen("/elsewhere")
    assert "traceparent" not in elsewhere.headers  # never to an origin outside the services


async def test_a_page_used_outside_a_step_sends_no_empty_traceparent(site: Site) -> None:
    """flow.page() is meant for steps, but a check may navigate before its first one: the
    header it gets is then the run's (or none) — never an empty, invalid `traceparent`."""

    @synth.check(service="web", retries=0, timeout="20s")
    async def navigates_before_its_step(flow: Flow) -> None:
        page = await flow.page()
        await page.goto("/")
        async with flow.step("welcome"):
            await page.goto("/welcome")

    result = await run(settings_for(site), spec_of(navigates_before_its_step))
    assert result.status is Status.PASSED, run_to_dict(result)
    (before,) = site.seen("/")
    (inside,) = site.seen("/welcome")
    inside_match = TRACEPARENT.match(inside.headers.get("traceparent", ""))
    assert inside_match
    assert inside_match.group("trace") == result.trace_id
    if "traceparent" in before.headers:
        traceparent = before.headers["traceparent"]
        found = TRACEPARENT.match(traceparent)
        assert found, f"the document before the step had traceparent {traceparent!r}"
        assert found.group("trace") == result.trace_id


# -- 4. artifacts --------------------------------------------------------------------


def assert_png(data: bytes) -> None:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")


def assert_zip(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert names
    return names


async def test_artifacts_on_failure_are_kept_only_when_the_run_fails(site: Site) -> None:
    settings = settings_for(site)
    runner = Runner(settings)
    failed = await run(settings, spec_of(sign_in_wrong_text), runner)
    passed = await run(settings, spec_of(sign_in_py), runner)

    assert failure_of(failed)[0] is FailureType.ASSERTION
    kept = artifacts_of(failed)
    assert set(kept) == {"screenshot.png", "trace.zip", "console.log"}
    assert_png(kept["screenshot.png"])
    assert any(name.endswith(".trace") for name in assert_zip(kept["trace.zip"]))
    assert "typed demo" in kept["console.log"].decode()

    assert passed.status is Status.PASSED
    assert passed.artifacts == ()


async def test_artifacts_always_are_kept_on_a_pass(site: Site) -> None:
    settings = settings_for(site, browser={"artifacts": "always"})
    async with own_engine():
        result = await run(settings, spec_of(sign_in_py))
    assert result.status is Status.PASSED, run_to_dict(result)
    kept = artifacts_of(result)
    assert set(kept) == {"screenshot.png", "trace.zip", "console.log"}
    assert_png(kept["screenshot.png"])
    assert_zip(kept["trace.zip"])


async def test_an_artifact_over_the_cap_is_left_out_and_the_console_log_says_so(
    site: Site,
) -> None:
    settings = settings_for(site, browser={"max_artifact_bytes": 2048})
    async with own_engine():
        result = await run(settings, spec_of(sign_in_wrong_text))
    assert failure_of(result)[0] is FailureType.ASSERTION
    kept = artifacts_of(result)
    assert "trace.zip" not in kept
    assert all(len(data) <= 2048 for data in kept.values())
    console = kept["console.log"].decode()
    assert "trace.zip left out" in console
    assert "2048-byte cap" in console


# -- 5. secrets ----------------------------------------------------------------------


def secret_forms(secret: str) -> dict[str, bytes]:
    """The secret as it may appear anywhere: raw, base64 (standard and URL-safe, without
    padding), percent-encoded (Python's and JavaScript's encodeURIComponent's safe sets,
    either hex case)."""
    b64 = base64.b64encode(secret.encode()).decode().rstrip("=")
    forms = {
        "raw": secret,
        "base64": b64,
        "base64url": b64.replace("+", "-").replace("/", "_"),
        "percent": quote(secret, safe=""),
        "percent-plus": quote_plus(secret, safe=""),
        "encodeURIComponent": quote(secret, safe="!~*'()"),
    }
    forms |= {
        f"{k}-lower": re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), v)
        for k, v in forms.items()
        if k.startswith(("percent", "encode"))
    }
    return {name: value.encode() for name, value in forms.items()}


def assert_no_secret(where: str, data: bytes) -> None:
    for form, needle in secret_forms(SECRET).items():
        assert needle not in data, f"the secret ({form}) is in {where}"


async def test_a_secret_typed_with_fill_leaves_the_run_nowhere(site: Site, tmp_path: Path) -> None:
    await secret_typed_leaves_nothing(site, tmp_path, settings_for(site))


async def secret_typed_leaves_nothing(site: Site, tmp_path: Path, settings: Settings) -> None:
    runner = Runner(settings)
    results = [
        await run(settings, spec_of(secret_typed_py), runner),
        await run(settings, yaml_check(tmp_path, SECRET_YAML), runner),
    ]
    # The secret was really typed and sent: the site received it, raw.
    assert [s.body for s in site.seen("/api/login")] == [SECRET.encode()] * 2

    for result in results:
        failure_type, message = failure_of(result)
        assert failure_type is FailureType.ASSERTION, message
        assert_no_secret(f"{result.check}'s JSON", json.dumps(run_to_dict(result)).encode())
        kept = artifacts_of(result)
        assert set(kept) == {"screenshot.png", "trace.zip", "console.log"}
        for name, data in kept.items():
            assert_no_secret(f"{result.check}'s {name}", data)
        with zipfile.ZipFile(io.BytesIO(kept["trace.zip"])) as archive:
            for entry in archive.namelist():
                assert_no_secret(f"{result.check}'s trace.zip:{entry}", archive.read(entry))
        console = kept["console.log"].decode()
        # The page echoed it in three encodings: the line is there, every one masked
        # (base64's padding may stay: it is not the secret).
        assert re.search(r"typed \*\*\* b64 \*\*\*=* pct \*\*\*$", console, re.M), console

    python = results[0]
    assert python.failure is not None
    assert python.failure.actual == "***"


# -- 6. a browser killed mid-run -----------------------------------------------------


def is_synth_chromium(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(arg.startswith(b"--synth-browser=") for arg in argv)


async def kill_mid_run(settings: Settings, runner: Runner) -> tuple[RunResult, int]:
    """Run a check that waits on its page forever and SIGKILL the browser (found by the
    engine's PID, checked to be the Chromium synth started) once the check is on the
    page. Returns the run's result and the PID killed."""
    on_page = asyncio.Event()

    @synth.check(service="web", retries=0, timeout="20s")
    async def waits_forever(flow: Flow) -> None:
        async with flow.step("wait on the page"):
            page = await flow.page()
            await page.goto("/")
            on_page.set()
            await page.evaluate("new Promise(() => {})")  # never settles

    engine = engine_for_running_loop(settings.browser)
    task = asyncio.create_task(run(settings, spec_of(waits_forever), runner))
    try:
        await asyncio.wait_for(on_page.wait(), 15)
    finally:
        if not on_page.is_set():
            task.cancel()
    pid = engine.pid()
    assert pid is not None
    assert is_synth_chromium(pid)
    os.kill(pid, signal.SIGKILL)
    assert await exited(pid, 5)
    return await asyncio.wait_for(task, 15), pid


async def test_a_killed_browser_fails_the_run_and_the_next_run_gets_a_new_one(
    site: Site,
) -> None:
    settings = settings_for(site)
    runner = Runner(settings)
    engine = engine_for_running_loop(settings.browser)
    result, pid = await kill_mid_run(settings, runner)
    launches = engine.launches

    failure_type, message = failure_of(result)
    assert failure_type is FailureType.SCRIPT_ERROR, message
    assert "browser went away" in message
    assert result.failed_step == "wait on the page"

    after = await run(settings, spec_of(sign_in_py), runner)
    assert after.status is Status.PASSED, run_to_dict(after)
    assert engine.launches == launches + 1
    new_pid = engine.pid()
    assert new_pid is not None
    assert new_pid != pid
    assert is_synth_chromium(new_pid)


async def test_a_script_error_after_a_relaunch_is_not_blamed_on_the_old_crash(
    site: Site,
) -> None:
    settings = settings_for(site)
    runner = Runner(settings)
    crashed, _ = await kill_mid_run(settings, runner)
    assert "cause: the browser process exited" in failure_of(crashed)[1]
    assert (await run(settings, spec_of(sign_in_py), runner)).status is Status.PASSED

    result = await run(settings, spec_of(evaluate_throws), runner)
    failure_type, message = failure_of(result)
    assert failure_type is FailureType.SCRIPT_ERROR, message
    assert "bad-eval-5521" in message
    assert "cause:" not in message, "a healthy browser's script error blamed on a past crash"


async def exited(pid: int, timeout: float) -> bool:
    """Wait (bounded) for process `pid` to end: its pidfd becomes readable when it does."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    loop.add_reader(fd, gone.set)
    try:
        async with asyncio.timeout(timeout):
            await gone.wait()
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return True


async def test_changed_browser_settings_do_not_leave_the_old_browser_running(
    site: Site,
) -> None:
    """The agent's reload builds a new Runner with new settings; a browser worker's loop
    then gets an engine for them. The previous engine's Chromium must not live on."""
    first = settings_for(site)
    second = settings_for(site, browser={"action_timeout": "2s"})
    async with own_engine():
        old = engine_for_running_loop(first.browser)
        try:
            assert (await run(first, spec_of(sign_in_py))).status is Status.PASSED
            old_pid = old.pid()
            assert old_pid is not None
            assert (await run(second, spec_of(sign_in_py))).status is Status.PASSED
            new_pid = engine_for_running_loop(second.browser).pid()
            assert new_pid is not None
            assert new_pid != old_pid
            assert await exited(old_pid, 5), (
                f"the first settings' Chromium (pid {old_pid}) is still running"
            )
        finally:
            await old.aclose()  # never leave it behind, whatever the engine did


# -- traces ---------------------------------------------------------------------------------


async def test_a_browser_step_is_a_span_with_a_navigation_span_the_page_joined(
    site: Site, otlp_http: Callable[..., OtlpHttpReceiver]
) -> None:
    receiver = otlp_http()
    config = TracingConfig.from_env(otel_env(receiver.endpoint))
    tracing = start_tracing(config, location="local", environment=ENV)
    try:
        runner = Runner(settings_for(site), tracer=tracing.tracer)
        result = await run(runner.settings, spec_of(sign_in_py), runner)
        assert result.status is Status.PASSED, failure_of(result)
        assert tracing.flush(5.0), "the receiver did not take the spans"
    finally:
        tracing.shutdown(2.0)
    spans = receiver.wait_for(lambda got: any(s.name == "navigate" for s in got))
    children = tree(spans, result.trace_id)
    (root,) = children[""]
    (step,) = children[root.span_id]
    assert step.name == "sign in"
    (navigate,) = [s for s in children.get(step.span_id, []) if s.name == "navigate"]
    assert navigate.kind == "client"
    assert navigate.attributes["url.full"] == site.base_url + "/"
    assert navigate.attributes["http.response.status_code"] == 200
    assert navigate.attributes["synth.browser.ttfb_s"] >= 0
    # Timed by the browser's clock (millisecond precision), inside its step.
    slack_ns = 5_000_000
    assert step.start_ns - slack_ns <= navigate.start_ns <= navigate.end_ns
    assert navigate.end_ns <= step.end_ns + slack_ns
    # The page's document request carried the step span's context.
    (document,) = site.seen("/")
    found = TRACEPARENT.match(document.headers["traceparent"])
    assert found is not None
    assert (found["trace"], found["span"]) == (result.trace_id, step.span_id)


async def test_trace_requests_off_sends_no_traceparent_and_routes_nothing(site: Site) -> None:
    # Routing the page's requests to add the header costs Chromium its HTTP cache; a user
    # who does not join backend spans turns it off and the page talks to the site as is.
    settings = settings_for(site, browser={"trace_requests": False, "navigation_timeout": "10s"})
    result = await run(settings, spec_of(sign_in_py))
    assert result.status is Status.PASSED, failure_of(result)
    (document,) = site.seen("/")
    assert "traceparent" not in document.headers
    traced_settings = settings_for(site, browser={"navigation_timeout": "10s"})
    traced = await run(traced_settings, spec_of(sign_in_py))
    assert traced.status is Status.PASSED, failure_of(traced)
    assert "traceparent" in site.seen("/")[-1].headers


# -- the baseline ---------------------------------------------------------------------------


@synth.check(service="web", retries=0, timeout="20s")
async def open_page(flow: Flow) -> None:
    """Opens the page; in `slow-prod` the page's document comes 0.6 s later."""
    async with flow.step("open"):
        page = await flow.page()
        await page.goto("/slow?hold=0.6" if flow.vars.get("slow") else "/")


@synth.check(service="web", retries=0, timeout="20s")
async def just_a_page(flow: Flow) -> None:
    """Gets its page inside the step and does nothing with it."""
    async with flow.step("get a page"):
        await flow.page()


async def test_chromiums_session_gets_browser_nice(site: Site) -> None:
    # Playwright starts Chromium in its own session; with autogroups the kernel shares the
    # CPU between sessions before nice counts, so two browsers took 2/3 of the machine and
    # API runs started ~0.7 s late (p99). The session's own nice is lowered to browser.nice.
    settings = settings_for(site, browser={"nice": 10})
    engine = engine_for_running_loop(settings.browser)
    result = await run(settings, spec_of(just_a_page))
    assert result.status is Status.PASSED, failure_of(result)
    pid = engine.pid()
    assert pid is not None
    assert os.getsid(pid) != os.getsid(0), "Chromium is not in a session of its own any more"
    autogroup = Path(f"/proc/{pid}/autogroup")
    if autogroup.exists():  # a kernel with autogroups (a session's nice: "/autogroup-N nice K")
        assert int(autogroup.read_text().rsplit("nice", 1)[1]) >= 10


async def test_launching_the_browser_is_not_the_steps_latency(site: Site) -> None:
    # The first run on a loop launches Chromium inside its step. That (and waiting for a
    # slot, and the context) is synth's time: in the step it made a baseline of pre-prod
    # runs hold synth's cold start, and regressions hid behind it.
    # Settings no other test uses: an engine of their own, launched by this run.
    settings = settings_for(site, browser={"max_heap": "320MiB", "navigation_timeout": "10s"})
    engine = engine_for_running_loop(settings.browser)
    assert engine.launches == 0
    result = await run(settings, spec_of(just_a_page))
    assert result.status is Status.PASSED, failure_of(result)
    assert engine.launches == 1
    (step,) = result.steps
    assert engine.launched_in_s > 0
    assert step.duration_s < engine.launched_in_s, (step.duration_s, engine.launched_in_s)


async def test_a_browser_step_is_judged_against_its_pre_prod_baseline(site: Site) -> None:
    settings = settings_for(site, browser={"navigation_timeout": "5s"})
    runner = Runner(settings)
    spec = spec_of(open_page)

    async def runs(phase: Phase, slow: bool, count: int) -> list[RunResult]:
        async def body(flow: Flow) -> None:
            flow.vars["slow"] = slow
            await open_page(flow)

        check = replace(spec, func=body)
        done = []
        for _ in range(count):
            request = RunRequest(check=check, environment=ENV, phase=phase)
            result = await asyncio.wait_for(runner.run(request), RUN_BOUND_S)
            assert result.status is Status.PASSED, failure_of(result)
            done.append(result)
        return done

    preprod = await runs(Phase.PREPROD, slow=False, count=4)
    baselines = {b.step: b for b in fragments(preprod, "v1")}
    assert baselines["open"].latency.count == 4
    limits = BaselineSettings(min_samples=4, window_min_samples=3, min_increase="100ms")

    def judged(results: list[RunResult]) -> list[Finding]:
        window = RecentLatency()
        for result in results:
            window.add(result)
        recent = lambda step: window.stats(spec.name, ENV, step)  # noqa: E731
        return list(compare(results[-1], baselines, recent, limits).findings)

    same = judged(await runs(Phase.SCHEDULED, slow=False, count=3))
    assert [f for f in same if f.kind == "latency"] == [], same
    slower = judged(await runs(Phase.SCHEDULED, slow=True, count=3))
    (regression,) = [f for f in slower if f.kind == "latency"]
    assert regression.step == "open"
    assert regression.type is FailureType.REGRESSION
    assert regression.severity is Severity.FAIL
    assert regression.ratio is not None
    assert regression.ratio > 2


# -- settings of their own (last: each starts another browser) --------------------------


async def test_a_secret_typed_with_fill_leaves_no_trace_with_dom_snapshots(
    site: Site, tmp_path: Path
) -> None:
    # With DOM snapshots the trace holds the field's value in the page's markup too.
    browser = {"trace_snapshots": True, "navigation_timeout": "10s"}
    await secret_typed_leaves_nothing(site, tmp_path, settings_for(site, browser=browser))
