"""The `hooks` config section: validated once at start, problems named by field path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from synth.agent.adapters import hook_problems
from synth.config import ConfigError, Settings, load_settings


def settings_from(tmp_path: Path, data: dict) -> Settings:
    path = tmp_path / "synth.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_settings(path)


def test_hooks_parse_with_secret_shorthands(tmp_path: Path) -> None:
    settings = settings_from(
        tmp_path,
        {
            "hooks": {
                "github": {"secret": "env:GH_SECRET", "services": {"org/repo": "shop"}},
                "flagger": {"tokens": ["inline"], "wait": "90s"},
            }
        },
    )
    hooks = settings.hooks
    assert hooks.github is not None
    assert hooks.flagger is not None
    assert hooks.github.secret.env == "GH_SECRET"
    assert hooks.flagger.wait == 90.0
    assert hooks.argocd is None


@pytest.mark.parametrize(
    ("hooks", "expected"),
    [
        ({"github": {"secret": "x"}}, "hooks.github.services: Field required"),
        (
            {"github": {"secret": "x", "services": {"o/r": "bad name!"}}},
            "hooks.github.services.o/r",
        ),
        ({"flagger": {"wait": "20m"}}, "hooks.flagger.wait"),
        ({"argocd": {"targets": {"app": {"service": "shop"}}}}, "environment: Field required"),
        ({"jenkins": {}}, "hooks.jenkins: unknown field"),
    ],
)
def test_bad_hooks_name_the_field(tmp_path: Path, hooks: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, {"hooks": hooks})
    assert expected in str(caught.value)


def test_problems_name_unreadable_secrets_and_unreachable_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISSING_GH_SECRET", raising=False)
    settings = settings_from(
        tmp_path,
        {
            "hooks": {
                "github": {"secret": "env:MISSING_GH_SECRET", "services": {"o/r": "shop"}},
                "argocd": {"basic_auth": {"username": "u", "password": f"file:{tmp_path}/no"}},
                "flagger": {},
            }
        },
    )
    problems = hook_problems(settings)
    assert any(p.startswith("hooks.github.secret: environment variable") for p in problems)
    assert any(p.startswith("hooks.argocd.basic_auth.password: cannot read") for p in problems)
    assert "hooks.flagger: no tokens here or in server.tokens to accept" in problems
    assert len(problems) == 3
