"""The processes `browser_cost.py` measures: the demo shop, and one browser worker per
variant, each in its own process so its CPU and memory are its process tree's alone.

    python bench/browser_flows.py shop
        the demo shop (synth.demo.shop.run_in_thread) on 127.0.0.1; prints its base URL,
        serves until its stdin closes.
    python bench/browser_flows.py worker CONFIG.json
        CONFIG: {variant, base_url, check_dir, executable, launch_args, init_script,
        read_script} (the parent reads them from synth, so the bare variants import nothing
        of synth: their Python process is Playwright's alone). Launches one Chromium,
        prints `{"ready": ...}`, then for each line `run N` on stdin makes N runs of the
        3-step flow one after the other and prints one JSON line with each run's steps
        (name, seconds, load_s); `quit` (or EOF) closes the browser.

Variants (the same flow: log in, add to cart, check out on the demo shop):

- synth        synth.runner.Runner running checks/shop_ui_checkout.yaml (loaded with
               synth.checks.loader.load_checks); `browser.artifacts: on_failure`, the
               default: Playwright tracing runs for every run and is dropped when it passes
- synth-never  the same with `browser.artifacts: never` (no tracing)
- synth-nav    synth (defaults) running whatever check is in check_dir (a navigation-only
               check: browser_cost.py's part 2b)
- bare-nav     Playwright alone doing part 2b's navigation-only steps (`goto /`, then
               `goto /?again=1`), each timed with perf_counter and paired with its
               navigation entry's load time: Playwright's own floor
- synth-lean   `artifacts: never` and `browser.trace_requests: false` (no routing: no
               `traceparent` on the page's requests, Chromium's HTTP cache on)
- bare         Playwright alone: a fresh context per run, the same actions, locators and
               timeouts, each step timed with perf_counter (step 1 from its
               `new_page`: synth leaves the context's set-up out of the step too)
- bare-synthlike  bare plus what synth asks of the browser: every request to the shop
               routed through Python to add a `traceparent` header, synth's vitals init
               script, its read-out (`page.evaluate`) at each step's end, and
               `service_workers="block"` — not synth's code, synth's browser-side work

The bare variants launch the same executable with synth.browser.engine.LAUNCH_ARGS, the
same heap flag and `--no-sandbox` as root, as synth's engine does (the parent passes them).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import threading
import time
from pathlib import Path
from typing import Any

ENVIRONMENT = "bench"
PASSWORD = "demo-password"
USER = "demo"
RUN_BOUND_S = 30.0
ACTION_TIMEOUT_MS = 5000.0
NAVIGATION_TIMEOUT_MS = 15000.0
SHOP_URL = re.compile(r"^[a-z]+://[^/]+/shop/?(?:[?#].*)?$")  # synth's expect_url: /shop
VARIANTS = (
    "synth",
    "synth-never",
    "synth-lean",
    "synth-nav",
    "bare",
    "bare-synthlike",
    "bare-nav",
)


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


# -- the shop ---------------------------------------------------------------------------------


def serve_shop() -> None:
    from synth.demo.shop import run_in_thread

    with run_in_thread(password=PASSWORD) as shop:
        emit({"base_url": shop.base_url})
        sys.stdin.read()  # until the parent closes our stdin (or dies)


# -- the runs -------------------------------------------------------------------------------


class SynthFlow:
    """The YAML check run by synth's Runner, on this process's loop (its one engine)."""

    def __init__(self, base_url: str, check_dir: Path, browser: dict[str, Any]) -> None:
        from synth.checks.loader import load_checks
        from synth.config import Settings
        from synth.model import RunRequest
        from synth.runner import Runner

        settings = Settings.model_validate(
            {
                "environments": {
                    ENVIRONMENT: {
                        "services": {"shop": {"base_url": base_url}},
                        "secrets": {"shop_password": {"value": PASSWORD}},
                    }
                },
                "browser": browser,
            }
        )
        loaded = load_checks([check_dir])
        if loaded.problems or len(loaded.checks) != 1:
            raise RuntimeError(f"the browser check did not load: {loaded.problems}")
        self.runner = Runner(settings)
        self.request = RunRequest(check=loaded.checks[0], environment=ENVIRONMENT)

    async def start(self) -> None:
        pass  # synth's engine launches Chromium on the first run (a warm-up run)

    async def run(self) -> dict[str, Any]:
        result = await self.runner.run(self.request)
        steps = []
        for step in result.steps:
            load_s = getattr(step.facts, "load_s", None)
            steps.append({"name": step.name, "s": step.duration_s, "load_s": load_s})
        failure = None if result.passed else str(result.failure)
        return {"ok": result.passed, "error": failure, "steps": steps}

    async def close(self) -> None:
        from synth.browser.engine import close_running_loop_engine

        await close_running_loop_engine()


LOAD_SCRIPT = """(() => {
  const n = performance.getEntriesByType('navigation')[0];
  return n && n.loadEventEnd > 0 ? (n.loadEventEnd - n.startTime) / 1000 : null;
})()"""


class BareNavigation:
    """Two navigation-only steps in Playwright alone: the floor of part 2b."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.bare = BareFlow(config, synthlike=False)

    async def start(self) -> None:
        await self.bare.start()

    async def run(self) -> dict[str, Any]:
        context = await self.bare.browser.new_context(
            viewport={"width": 1280, "height": 720}, base_url=self.bare.base_url
        )
        steps: list[dict[str, Any]] = []
        try:
            page = await context.new_page()
            for name, url in (("open the shop", "/"), ("open it again", "/?again=1")):
                started = time.perf_counter()
                await page.goto(url)
                ended = time.perf_counter()
                load_s = await page.evaluate(LOAD_SCRIPT)
                steps.append({"name": name, "s": ended - started, "load_s": load_s})
        except Exception as error:
            return {"ok": False, "error": repr(error), "steps": steps}
        finally:
            await context.close()
        return {"ok": True, "error": None, "steps": steps}

    async def close(self) -> None:
        await self.bare.close()


class BareFlow:
    """The same flow in Playwright alone (optionally with synth's browser-side work)."""

    def __init__(self, config: dict[str, Any], synthlike: bool) -> None:
        self.config = config
        self.base_url = str(config["base_url"])
        self.synthlike = synthlike
        self.playwright: Any = None
        self.browser: Any = None
        self.traceparent = ""

    async def start(self) -> None:
        from playwright.async_api import async_playwright

        self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(
            executable_path=self.config["executable"],
            headless=True,
            args=self.config["launch_args"],
            handle_sigint=False,
            handle_sigterm=False,
            handle_sighup=False,
        )

    async def _route(self, route: Any, request: Any) -> None:
        headers = await request.all_headers()
        headers["traceparent"] = self.traceparent
        await route.continue_(headers=headers)

    def _step(self) -> None:
        self.traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"

    async def _step_end(self, page: Any) -> None:
        if self.synthlike:
            await page.evaluate(self.config["read_script"])

    async def run(self) -> dict[str, Any]:
        from playwright.async_api import expect

        steps: list[dict[str, Any]] = []
        self._step()
        options: dict[str, Any] = {"base_url": self.base_url}
        if self.synthlike:
            options["service_workers"] = "block"
        context = await self.browser.new_context(viewport={"width": 1280, "height": 720}, **options)
        try:
            context.set_default_timeout(ACTION_TIMEOUT_MS)
            context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
            if self.synthlike:
                await context.add_init_script(self.config["init_script"])
                await context.route(f"{self.base_url.rstrip('/')}/**", self._route)
            page = await context.new_page()
            # log in: timed from here, as synth leaves its context's set-up out of the step
            started = time.perf_counter()
            await page.goto("/")
            await page.get_by_label("Email", exact=False).fill(USER, timeout=ACTION_TIMEOUT_MS)
            await page.get_by_label("Password", exact=False).fill(
                PASSWORD, timeout=ACTION_TIMEOUT_MS
            )
            await page.get_by_role("button", name="Log in", exact=False).click(
                timeout=ACTION_TIMEOUT_MS
            )
            await expect(page).to_have_url(SHOP_URL, timeout=ACTION_TIMEOUT_MS)
            await self._step_end(page)
            ended = time.perf_counter()
            steps.append({"name": "log in", "s": ended - started, "load_s": None})
            # add to cart
            started = time.perf_counter()
            self._step()
            await page.get_by_role(
                "button", name="Add Espresso beans 1 kg to cart", exact=False
            ).click(timeout=ACTION_TIMEOUT_MS)
            await self._step_end(page)
            ended = time.perf_counter()
            steps.append({"name": "add to cart", "s": ended - started, "load_s": None})
            # check out
            started = time.perf_counter()
            self._step()
            await page.get_by_role("button", name="Checkout", exact=False).click(
                timeout=ACTION_TIMEOUT_MS
            )
            await expect(page.get_by_role("status")).to_contain_text(
                "Order confirmed", timeout=ACTION_TIMEOUT_MS
            )
            await self._step_end(page)
            ended = time.perf_counter()
            steps.append({"name": "check out", "s": ended - started, "load_s": None})
        except Exception as error:
            return {"ok": False, "error": repr(error), "steps": steps}
        finally:
            await context.close()
        return {"ok": True, "error": None, "steps": steps}

    async def close(self) -> None:
        if self.browser is not None:
            await self.browser.close()
        if self.playwright is not None:
            await self.playwright.stop()


async def work(config: dict[str, Any]) -> None:
    variant = config["variant"]
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}")
    flow: SynthFlow | BareFlow | BareNavigation
    if variant.startswith("synth"):
        browser: dict[str, Any] = {"artifacts": "on_failure"}
        if variant in ("synth-never", "synth-lean"):
            browser["artifacts"] = "never"
        if variant == "synth-lean":
            browser["trace_requests"] = False
        flow = SynthFlow(config["base_url"], Path(config["check_dir"]), browser)
    elif variant == "bare-nav":
        flow = BareNavigation(config)
    else:
        flow = BareFlow(config, synthlike=variant == "bare-synthlike")
    await flow.start()
    emit({"ready": True, "pid": os.getpid()})
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:  # a daemon thread: stdin is a pipe from the parent
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    try:
        while (command := (await lines.get()).split()) and command[0] == "run":
            runs = []
            for _ in range(int(command[1])):
                started = time.perf_counter()
                try:
                    run = await asyncio.wait_for(flow.run(), RUN_BOUND_S)
                except TimeoutError:
                    run = {"ok": False, "error": f"no result in {RUN_BOUND_S:g}s", "steps": []}
                run["wall_s"] = time.perf_counter() - started
                runs.append(run)
            emit({"runs": runs})
    finally:
        await flow.close()


def main() -> None:
    if sys.argv[1:2] == ["shop"]:
        serve_shop()
    elif sys.argv[1:2] == ["worker"] and len(sys.argv) == 3:
        asyncio.run(work(json.loads(Path(sys.argv[2]).read_text())))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
