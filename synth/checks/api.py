"""`@synth.check`: declare a check. The loader collects every check a file declares."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable, Iterable
from typing import Any

from synth.errors import SynthError
from synth.model import CheckFunc, CheckSpec, Schedule, Sensitivity, SourceLocation
from synth.units import parse_duration

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.")
_SENSITIVITIES = tuple(s.value for s in Sensitivity)


class CheckDefinitionError(SynthError, ValueError):
    """A check's declaration is invalid; carries where it was declared."""

    def __init__(self, message: str, source: SourceLocation | None) -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.reason = message
        self.source = source


class _Collector:
    """Checks declared while a file loads; the loader swaps it in and out."""

    def __init__(self) -> None:
        self.active: list[CheckSpec] | None = None


collector = _Collector()


def check(
    name: str | None = None,
    *,
    service: str,
    envs: Iterable[str] = (),
    every: str | float | None = None,
    cron: str | None = None,
    timeout: str | float = "30s",
    retries: int | None = None,
    sensitivity: str | None = None,
    tags: Iterable[str] = (),
    playbook: str | None = None,
    description: str | None = None,
    runbook: str | None = None,
    follow_redirects: bool = True,
    max_redirects: int = 10,
    browser: bool | None = None,
) -> Callable[[CheckFunc], CheckFunc]:
    """Declare an async check function that receives a `Flow`.

    Args:
        name: check name (default: the function's name); a metric label, so keep it short.
        service: the service whose base URL relative requests use, and that deploy events
            select checks by.
        envs: environments it runs in (default: every environment that defines `service`).
        every: run interval ("30s", "5m"); default 60s unless `cron` is given.
        cron: a crontab expression ("*/5 * * * *") instead of an interval.
        timeout: the whole check's time limit.
        retries: extra attempts after a failed run before the run counts as failed
            (default: from the sensitivity, 1 at `medium`).
        sensitivity: `low`, `medium` or `high`: the (retries, trigger, resolve) preset this
            check pages with (default: its playbook's).
        tags: labels to select checks by (`--tag`, deploy events, pytest markers).
        playbook: the incident playbook that pages for it (default playbook otherwise).
        description: one line on what the flow proves; shown in reports and pages.
        runbook: URL of the runbook on-call should open.
        follow_redirects: follow 3xx redirects (default on; each hop is recorded).
        max_redirects: how many redirects a request may follow before it fails.
        browser: the check drives a browser (default: found in its code, a call of
            `flow.page()` or `flow.probe("browser", ...)`); the agent runs such checks on
            its browser workers.

    Example:
        @synth.check(service="shop", every="30s", tags=["checkout"])
        async def checkout(flow: Flow) -> None:
            async with flow.step("log in"):
                r = await flow.post("/api/login", json={"password": flow.secret("password")})
                r.expect_status(200)
    """

    def decorate(func: CheckFunc) -> CheckFunc:
        source = _source_of(func)
        if not inspect.iscoroutinefunction(func):
            raise CheckDefinitionError(
                f"check {func.__name__!r} must be declared with 'async def'", source
            )
        spec = build_spec(
            name=name or func.__name__,
            func=func,
            service=service,
            envs=envs,
            every=every,
            cron=cron,
            timeout=timeout,
            retries=retries,
            sensitivity=sensitivity,
            tags=tags,
            playbook=playbook,
            description=description if description is not None else inspect.getdoc(func) or "",
            runbook=runbook,
            source=source,
            kind="python",
            follow_redirects=follow_redirects,
            max_redirects=max_redirects,
            uses_browser=browser if browser is not None else calls_browser(func),
        )
        if collector.active is not None:
            collector.active.append(spec)
        func.__synth_check__ = spec  # type: ignore[attr-defined]
        return func

    return decorate


def build_spec(
    *,
    name: str,
    func: CheckFunc,
    service: str,
    envs: Iterable[str],
    every: str | float | None,
    cron: str | None,
    timeout: str | float,
    retries: int | None,
    tags: Iterable[str],
    playbook: str | None,
    description: str,
    runbook: str | None,
    source: SourceLocation | None,
    kind: str,
    follow_redirects: bool = True,
    max_redirects: int = 10,
    sensitivity: str | None = None,
    uses_browser: bool = False,
) -> CheckSpec:
    """Validate check metadata into a CheckSpec; shared by the Python and YAML forms."""

    def bad(message: str) -> CheckDefinitionError:
        return CheckDefinitionError(f"check {name!r}: {message}", source)

    if not name or not set(name.lower()) <= _NAME_CHARS or len(name) > 80:
        raise bad("name must be 1-80 characters of letters, digits, '_', '-' or '.'")
    if not service:
        raise bad("service is required")
    if every is not None and cron is not None:
        raise bad("give either every= or cron=, not both")
    try:
        schedule = _schedule(every, cron)
        timeout_s = parse_duration(timeout)
    except ValueError as exc:
        raise bad(str(exc)) from None
    if timeout_s <= 0:
        raise bad("timeout must be positive")
    if retries is not None and (
        not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10
    ):
        raise bad("retries must be a whole number from 0 to 10")
    if sensitivity is not None and sensitivity not in _SENSITIVITIES:
        known = ", ".join(_SENSITIVITIES)
        raise bad(f"sensitivity must be one of {known}, got {sensitivity!r}")
    if not isinstance(max_redirects, int) or isinstance(max_redirects, bool) or max_redirects < 0:
        raise bad("max_redirects must be a whole number, 0 or more")
    envs_tuple = tuple(envs) if not isinstance(envs, str) else (envs,)
    tags_tuple = tuple(tags) if not isinstance(tags, str) else (tags,)
    return CheckSpec(
        name=name,
        func=func,
        service=service,
        environments=envs_tuple,
        schedule=schedule,
        timeout_s=timeout_s,
        retries=retries,
        sensitivity=Sensitivity(sensitivity) if sensitivity is not None else None,
        tags=tags_tuple,
        playbook=playbook,
        description=description,
        runbook_url=runbook,
        source=source,
        kind=kind,
        follow_redirects=bool(follow_redirects),
        max_redirects=max_redirects,
        uses_browser=uses_browser,
    )


def calls_browser(func: Callable[..., Any]) -> bool:
    """Whether the function's code asks for a page: `<x>.page()` or
    `<x>.probe("browser", ...)` (read from its source; False when there is none)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "page":
                return True
            if node.func.attr == "probe" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and first.value == "browser":
                    return True
    return False


def _schedule(every: str | float | None, cron: str | None) -> Schedule:
    if cron is not None:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(cron)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {cron!r}: {exc}") from None
        return Schedule(cron=cron)
    seconds = parse_duration(every) if every is not None else 60.0
    if seconds < 1:
        raise ValueError(f"every must be at least 1s, got {every!r}")
    return _every(seconds)


@functools.lru_cache(maxsize=256)
def _every(seconds: float) -> Schedule:
    """One (immutable) Schedule for every check of the same interval."""
    return Schedule(every_s=seconds)


def _source_of(func: Callable[..., Any]) -> SourceLocation | None:
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    return SourceLocation(path=code.co_filename, line=code.co_firstlineno)
