"""Fixtures shared by every test: building Settings and running one check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import pytest

from synth.config import Settings
from synth.model import CheckSpec, RunRequest, RunResult
from synth.runner import Runner

TEST_ENV = "test"
TEST_SERVICE = "web"


class SettingsFor(Protocol):
    def __call__(
        self, base_url: str, *, runner: dict[str, Any] | None = None, **env: Any
    ) -> Settings: ...


RunCheck = Callable[[Settings, Callable[..., Any]], Awaitable[RunResult]]


def build_settings(base_url: str, *, runner: dict[str, Any] | None = None, **env: Any) -> Settings:
    """Settings with one environment `test` whose service `web` lives at `base_url`;
    `env` adds environment fields (secrets, headers, tls) and `runner` runner limits."""
    environment: dict[str, Any] = {"services": {TEST_SERVICE: {"base_url": base_url}}, **env}
    return Settings.model_validate(
        {"environments": {TEST_ENV: environment}, "runner": runner or {}}
    )


@pytest.fixture
def settings_for() -> SettingsFor:
    """`settings_for(base_url, runner={...}, secrets={...}, tls={...})` → Settings."""
    return build_settings


def spec_of(func: Callable[..., Any]) -> CheckSpec:
    """The CheckSpec `@synth.check` attached to a function."""
    spec = getattr(func, "__synth_check__", None)
    assert isinstance(spec, CheckSpec), f"{func!r} is not decorated with @synth.check"
    return spec


async def run_once(settings: Settings, func: Callable[..., Any]) -> RunResult:
    """Run a decorated check against the `test` environment with a fresh Runner."""
    return await Runner(settings).run(RunRequest(check=spec_of(func), environment=TEST_ENV))


@pytest.fixture
def run_check() -> RunCheck:
    """`await run_check(settings, decorated_check)` → RunResult."""
    return run_once
