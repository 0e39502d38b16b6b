"""What the agent checks before it starts, shared with `synth validate`: if the agent would
refuse a configuration, validate reports the same problems, worded the same.

`startup_problems` is the one entry point; each concern is a small function beside it, so
a new start-up rule is one function and one line there."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from synth.config import ConfigError, SecretRef, Settings, resolve_environment
from synth.model import CheckSpec

PLACEHOLDER_PREFIX = "change-me"
"""Secrets starting with this (any case) are the shipped examples' placeholders."""
MIN_CREDENTIAL_BYTES = 16


def startup_problems(
    settings: Settings,
    checks: Sequence[CheckSpec],
    *,
    environment: str | None = None,
) -> list[str]:
    """Every reason the agent would refuse to start with this configuration and these
    checks. With `environment`, only what `synth run --env ENVIRONMENT` needs: that
    environment's secrets and the checks' references, not the agent's API and hook
    credentials or the other environments' secrets."""
    from synth.agent.adapters import hook_problems
    from synth.alerting.engine import playbook_problems

    if environment is not None and environment not in settings.environments:
        known = ", ".join(sorted(settings.environments)) or "none"
        return [f"--env {environment}: unknown environment (configured: {known})"]
    envs = [environment] if environment is not None else list(settings.environments)
    problems: list[str] = []
    if environment is None:
        problems += hook_problems(settings)
        problems += credential_problems(settings)
    problems += environment_problems(settings, envs)
    problems += playbook_problems(settings, checks)
    problems += check_problems(settings, checks, envs)
    return problems


def environment_problems(settings: Settings, envs: Iterable[str]) -> list[str]:
    """Environment secrets that cannot be read."""
    problems: list[str] = []
    for name in envs:
        try:
            resolve_environment(settings, name)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def api_credentials(settings: Settings) -> list[tuple[str, SecretRef]]:
    """Every secret the agent accepts from callers, with the setting that holds it."""
    server, hooks = settings.server, settings.hooks
    refs = [(f"server.tokens[{i}]", ref) for i, ref in enumerate(server.tokens)]
    if server.hmac_secret is not None:
        refs.append(("server.hmac_secret", server.hmac_secret))
    refs += [(f"server.metrics_tokens[{i}]", ref) for i, ref in enumerate(server.metrics_tokens)]
    if hooks.github is not None:
        refs.append(("hooks.github.secret", hooks.github.secret))
    for name in ("argocd", "flagger", "argo_rollouts"):
        hook = getattr(hooks, name)
        if hook is None:
            continue
        refs += [(f"hooks.{name}.tokens[{i}]", ref) for i, ref in enumerate(hook.tokens)]
        basic = getattr(hook, "basic_auth", None)
        if basic is not None:
            refs.append((f"hooks.{name}.basic_auth.password", basic.password))
    return refs


def credential_problems(settings: Settings) -> list[str]:
    """API and hook credentials that cannot be read, are placeholders, or are too short to
    resist guessing. (A hook's unreadable one is reported with the hooks' problems.)"""
    problems: list[str] = []
    server = settings.server
    if server.read_auth and not server.tokens and server.hmac_secret is None:
        problems.append("server.read_auth: set server.tokens or server.hmac_secret to read with")
    for where, ref in api_credentials(settings):
        try:
            value = ref.resolve().get_secret_value()
        except ValueError as exc:
            if where.startswith("server."):
                problems.append(f"{where}: {exc}")
            continue
        problem = weak_credential(value)
        if problem:
            problems.append(f"{where}: {problem}")
    return problems


def weak_credential(value: str) -> str | None:
    """Why `value` cannot be used as a token or HMAC secret, or None."""
    if value.strip().lower().startswith(PLACEHOLDER_PREFIX):
        return "is a placeholder (CHANGE-ME…): set a real secret (e.g. openssl rand -hex 32)"
    size = len(value.encode("utf-8"))
    if size < MIN_CREDENTIAL_BYTES:
        return f"is {size} bytes; use at least {MIN_CREDENTIAL_BYTES} (e.g. openssl rand -hex 32)"
    return None


def check_problems(
    settings: Settings, checks: Sequence[CheckSpec], envs: Sequence[str]
) -> list[str]:
    """Checks whose service no environment defines, checks naming an environment that
    lacks their service, and checks naming a playbook when none is configured (an unknown
    one among configured playbooks is reported by the alerting engine)."""
    problems: list[str] = []
    for check in checks:
        where = f"{check.source}: " if check.source else ""
        running = [env for env in envs if check.applies_to(env)]
        missing = [
            env for env in running if check.service not in settings.environments[env].services
        ]
        if running and len(missing) == len(running):
            problems.append(
                f"{where}check {check.name!r} has service {check.service!r}, which no "
                f"environment defines (add environments.<env>.services.{check.service})"
            )
        elif check.environments:
            problems += [
                f"{where}check {check.name!r} needs service {check.service!r}, which has no "
                f"base URL in environment {env!r}"
                for env in missing
            ]
        if check.playbook and not settings.playbooks:
            problems.append(
                f"{where}check {check.name!r} names playbook {check.playbook!r}, but no "
                f"playbooks are configured (add playbooks.{check.playbook} or drop it)"
            )
    return problems
