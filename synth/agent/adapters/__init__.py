"""Adapters that let CD tools call synth with no glue code: each translates its tool's
webhook into the agent's `DeployEvent`, authenticated the way that tool authenticates.

This package's top level stays light (no web framework): the agent checks the hook config
at start before it imports the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synth.config import SecretRef, Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from synth.agent.adapters.port import DeployPort

__all__ = ["hook_problems", "hooks_router"]


def hooks_router(agent: DeployPort) -> APIRouter:
    """Every adapter's routes under /v1/hooks/."""
    from fastapi import APIRouter

    from synth.agent.adapters import argo_rollouts, argocd, flagger, github

    api = APIRouter()
    for adapter in (github, argocd, flagger, argo_rollouts):
        api.include_router(adapter.router(agent))
    return api


def hook_problems(settings: Settings) -> list[str]:
    """Hook secrets that cannot be read, and hooks with no way to authenticate."""
    hooks = settings.hooks
    refs: list[tuple[str, SecretRef]] = []
    problems: list[str] = []
    if hooks.github is not None:
        refs.append(("hooks.github.secret", hooks.github.secret))
    for name in ("argocd", "flagger", "argo_rollouts"):
        hook = getattr(hooks, name)
        if hook is None:
            continue
        refs += [(f"hooks.{name}.tokens.{i}", t) for i, t in enumerate(hook.tokens)]
        basic = getattr(hook, "basic_auth", None)
        if basic is not None:
            refs.append((f"hooks.{name}.basic_auth.password", basic.password))
        if not hook.tokens and not settings.server.tokens and basic is None:
            problems.append(f"hooks.{name}: no tokens here or in server.tokens to accept")
    return _unreadable(refs) + problems


def _unreadable(refs: list[tuple[str, SecretRef]]) -> list[str]:
    problems = []
    for where, ref in refs:
        try:
            ref.resolve()
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems
