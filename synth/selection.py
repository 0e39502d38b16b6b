"""Choosing which checks run in an environment: by name, tag and service."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from synth.config import Settings
from synth.model import CheckSpec


@dataclass(frozen=True, slots=True)
class Selection:
    """The checks chosen for one environment, and why others could not be."""

    checks: tuple[CheckSpec, ...]
    problems: tuple[str, ...]


def select_checks(
    checks: Sequence[CheckSpec],
    settings: Settings,
    environment: str,
    *,
    names: Iterable[str] = (),
    tags: Iterable[str] = (),
    service: str | None = None,
) -> Selection:
    """Checks that apply to `environment`, narrowed by names, tags (any) and service.

    A check that names the environment but whose service has no base URL there, or a
    requested name that does not exist, is a problem (configuration, not a failure).
    """
    wanted_names = set(names)
    wanted_tags = set(tags)
    problems: list[str] = []
    known = {c.name for c in checks}
    for name in sorted(wanted_names - known):
        problems.append(f"no check named {name!r} (known: {', '.join(sorted(known)) or 'none'})")
    env = settings.environments.get(environment)
    if env is None:
        configured = ", ".join(sorted(settings.environments)) or "none"
        problems.append(f"unknown environment {environment!r} (configured: {configured})")
        return Selection((), tuple(problems))
    chosen: list[CheckSpec] = []
    for check in checks:
        if wanted_names and check.name not in wanted_names:
            continue
        if wanted_tags and not wanted_tags & set(check.tags):
            continue
        if service is not None and check.service != service:
            continue
        if not check.applies_to(environment):
            continue
        if check.service not in env.services:
            if check.environments or check.name in wanted_names:
                problems.append(
                    f"{check.source or check.name}: check {check.name!r} needs service "
                    f"{check.service!r}, which has no base URL in environment {environment!r}"
                )
            continue
        chosen.append(check)
    return Selection(tuple(chosen), tuple(problems))
