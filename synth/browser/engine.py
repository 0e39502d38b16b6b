"""One Chromium per event loop: launched on first use, relaunched after it crashed or was
killed, killed (by the PID synth started it with) when it stops answering.

The agent runs browser checks on `browser.concurrency` worker threads, each with its own
loop (synth.agent.browser_workers), so "one engine per loop" is "one browser per worker";
`synth run` and the pytest plugin get one for their own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from synth.browser.settings import BrowserSettings
from synth.errors import SynthError

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

log = logging.getLogger("synth.browser")

CLOSE_TIMEOUT_S = 5.0
# Chromium on a closed network: background services would try (and fail) to reach Google's
# hosts at every start. Its sandbox is `browser.sandbox` (Playwright passes --no-sandbox
# unless asked for it): it needs unprivileged user namespaces, which the container
# runtimes' default seccomp profiles refuse.
LAUNCH_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


LAUNCH_HOOKS: list[Callable[[], None]] = []
"""Called (from the launching thread) each time a Chromium starts: the agent counts them."""


class BrowserUnavailable(SynthError):
    """Browser checks cannot run here: Playwright or Chromium is missing or will not start."""


class BrowserEngine:
    """The browser of one event loop."""

    def __init__(self, settings: BrowserSettings) -> None:
        self.settings = settings
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._marker = ""
        self._lock = asyncio.Lock()
        self.slots = asyncio.Semaphore(settings.concurrency)
        """Browser runs at once on this loop (each a context of the one browser)."""
        self.launches = 0
        self.launched_in_s = 0.0
        """How long the latest launch took (kept out of the steps' durations)."""
        self.last_exit: str | None = None
        """Why the previous browser went away (crash, kill), for the next failure message."""

    async def browser(self) -> Browser:
        """The running browser, launched (again) if there is none."""
        async with self._lock:
            browser = self._browser
            if browser is None or not browser.is_connected():
                browser = await self._launch()
            return browser

    async def _launch(self) -> Browser:
        try:
            from playwright.async_api import Error, async_playwright
        except ImportError:
            raise BrowserUnavailable(
                "browser checks need Playwright's Python package: pip install 'synth[browser]'"
            ) from None
        executable = self.settings.executable
        if not executable.is_file() or not os.access(executable, os.X_OK):
            raise BrowserUnavailable(
                f"no Chromium at {executable}: install it (Debian: apt-get install chromium) "
                "or set browser.executable"
            )
        if self._playwright is None:
            self._playwright = await async_playwright().start()
        marker = uuid.uuid4().hex
        launching = time.perf_counter()
        heap_mb = self.settings.max_heap // (1024 * 1024)
        args = [
            *LAUNCH_ARGS,
            f"--js-flags=--max-old-space-size={heap_mb}",
            f"--synth-browser={marker}",  # how kill() finds the process it started
        ]
        try:
            browser = await self._playwright.chromium.launch(
                executable_path=str(executable),
                headless=True,
                args=args,
                timeout=self.settings.launch_timeout * 1000,
                chromium_sandbox=self.settings.sandbox,
                handle_sigint=False,
                handle_sigterm=False,
                handle_sighup=False,
            )
        except Error as error:
            raise BrowserUnavailable(
                f"Chromium at {executable} did not start: {first_line(error.message)}"
            ) from None
        browser.on("disconnected", lambda _: self._gone(marker))
        self._browser, self._marker = browser, marker
        self.launched_in_s = time.perf_counter() - launching
        if self.settings.nice > 0:
            lower_session_priority(self.pid(), self.settings.nice)
        self.launches += 1
        for hook in list(LAUNCH_HOOKS):
            hook()
        if self.launches > 1:
            log.warning(
                "browser relaunched",
                extra={"launches": self.launches, "cause": self.last_exit or "unknown"},
            )
        self.last_exit = None
        return browser

    def _gone(self, marker: str) -> None:
        if marker == self._marker and self.last_exit is None:
            self.last_exit = "the browser process exited"

    def forget(self, browser: Browser) -> None:
        """`browser` is dead though it has not said so yet: launch a new one next time."""
        if self._browser is browser:
            self._browser = None
            self.last_exit = self.last_exit or "the browser process exited"

    def pid(self) -> int | None:
        """The PID of the Chromium this engine launched, if it is running."""
        return _find_pid(f"--synth-browser={self._marker}") if self._marker else None

    def kill(self, reason: str) -> int | None:
        """Kill the browser this engine started (SIGKILL by its PID); the next run gets a
        new one. Returns the PID killed."""
        pid = self.pid()
        self.last_exit = reason
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            log.warning("browser killed", extra={"pid": pid, "cause": reason})
        self._browser = None
        return pid

    async def aclose(self) -> None:
        """Close the browser and the Playwright driver, killing what does not stop."""
        browser, self._browser = self._browser, None
        if browser is not None:
            try:
                await asyncio.wait_for(browser.close(), CLOSE_TIMEOUT_S)
            except Exception:
                self._browser = browser
                self.kill("it did not close within 5 s at shutdown")
        playwright, self._playwright = self._playwright, None
        if playwright is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(playwright.stop(), CLOSE_TIMEOUT_S)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def lower_session_priority(pid: int | None, nice: int) -> None:
    """Give the session of `pid` (its autogroup) at least `nice`; never raises.

    Playwright starts Chromium in a session of its own, and with the kernel's autogroups
    (on by default) the CPU is shared between sessions before nice values count: two
    busy browsers took two thirds of a 2-CPU machine from the agent whatever their nice,
    and scheduled API runs started up to ~0.7 s late (p99)."""
    if pid is None:
        return
    path = Path(f"/proc/{pid}/autogroup")
    with contextlib.suppress(OSError, ValueError):
        current = int(path.read_text().rsplit("nice", 1)[1])
        if current < nice:
            path.write_text(f"{nice}\n")


def _find_pid(marker: str) -> int | None:
    """The process whose command line carries `marker` (one synth put there)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in argv:
            return int(entry.name)
    return None


_closing: set[asyncio.Task[None]] = set()
_engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BrowserEngine] = (
    weakref.WeakKeyDictionary()
)


def engine_for_running_loop(settings: BrowserSettings) -> BrowserEngine:
    """The browser engine of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    engine = _engines.get(loop)
    if engine is None or engine.settings != settings:
        if engine is not None:  # new settings (a reload): the old browser must not linger
            closing = loop.create_task(engine.aclose())
            _closing.add(closing)
            closing.add_done_callback(_closing.discard)
        engine = BrowserEngine(settings)
        _engines[loop] = engine
    return engine


async def close_running_loop_engine() -> None:
    """Close the browser of the running loop, if it has one (at the end of `synth run`,
    a pytest session, or a browser worker)."""
    engine = _engines.pop(asyncio.get_running_loop(), None)
    if engine is not None:
        await engine.aclose()
