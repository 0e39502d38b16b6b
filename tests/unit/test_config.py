"""Settings: YAML file, SYNTH_* overrides, secret references and config-file discovery."""

from __future__ import annotations

import os
from pathlib import Path
from textwrap import dedent

import pytest
from pydantic import SecretStr

from synth.config import (
    ConfigError,
    SecretRef,
    Settings,
    find_config_file,
    load_settings,
    resolve_environment,
)

INLINE_SECRET = "inline-s3cret-value"

GOOD = f"""
location: eu-west-1
checks: [checks, /abs/checks]
environments:
  staging:
    services:
      shop: {{base_url: "https://shop.staging.example.com/"}}
    headers: {{X-Synthetic: "true"}}
    secrets:
      from_env: env:SYNTH_TEST_SHOP_PASSWORD
      from_file: {{file: secret.txt}}
      inline: {INLINE_SECRET}
runner:
  request_timeout: 5s
  max_body_bytes: 2MiB
  concurrency: 4
"""


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SYNTH_* variable from the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("SYNTH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "synth.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.source == str(path)
    assert str(raised.value).startswith(f"{path}: ")
    return raised.value.problems


# -- loading --------------------------------------------------------------------------------


def test_load_settings_reads_and_converts_units(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.location == "eu-west-1"
    assert settings.runner.request_timeout == 5.0
    assert settings.runner.max_body_bytes == 2 * 1024 * 1024
    assert settings.runner.concurrency == 4
    staging = settings.environments["staging"]
    assert staging.services["shop"].base_url == "https://shop.staging.example.com"
    assert staging.headers == {"X-Synthetic": "true"}


def test_relative_check_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.checks == [str(tmp_path / "checks"), "/abs/checks"]


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.location == "local"
    assert settings.checks == ["checks"]
    assert settings.environments == {}
    assert settings.runner.request_timeout == 10.0
    assert settings.runner.max_body_bytes == 1024 * 1024
    assert settings.server.host == "127.0.0.1"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")).runner.concurrency == 20


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    with pytest.raises(ValueError, match="frozen"):
        settings.location = "elsewhere"


def test_inline_secret_is_not_in_repr(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert INLINE_SECRET not in repr(settings)
    assert INLINE_SECRET not in str(settings)


# -- errors name the field path and the reason ---------------------------------------------


def test_invalid_duration_names_field(tmp_path: Path) -> None:
    problems = problems_of(write(tmp_path, "runner:\n  request_timeout: soon\n"))
    assert len(problems) == 1
    assert problems[0].startswith("runner.request_timeout: ")
    assert "not a duration: 'soon'" in problems[0]


def test_unknown_field_is_named(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, "runner:\n  bogus: 1\n")) == ["runner.bogus: unknown field"]


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = """
    location: ""
    runner: {concurrency: 0, max_body_bytes: lots}
    environments:
      e:
        services:
          s: {base_url: "ftp://x"}
        secrets:
          both: {env: A, value: b}
    """
    problems = problems_of(write(tmp_path, text))
    by_field = {p.split(": ", 1)[0]: p.split(": ", 1)[1] for p in problems}
    assert set(by_field) == {
        "location",
        "runner.concurrency",
        "runner.max_body_bytes",
        "environments.e.services.s.base_url",
        "environments.e.secrets.both",
    }
    assert "1 to 64 characters" in by_field["location"]
    assert "greater than or equal to 1" in by_field["runner.concurrency"]
    assert "not a size" in by_field["runner.max_body_bytes"]
    assert "absolute http(s) URL" in by_field["environments.e.services.s.base_url"]
    assert "exactly one of env, file or value" in by_field["environments.e.secrets.both"]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "location: x\nrunner: [1\nstore: 2\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    assert raised.value.source == f"{path}:3"
    assert raised.value.problems[0].startswith("invalid YAML")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, "- a\n- b\n")) == ["the top level must be a mapping"]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert problems_of(path) == ["cannot read config file: No such file or directory"]


# -- SYNTH_* environment overrides ----------------------------------------------------------


def test_env_overrides_a_top_level_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_LOCATION", "us-east-1")
    assert load_settings(write(tmp_path, GOOD)).location == "us-east-1"


def test_env_overrides_one_nested_field_keeping_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_RUNNER__REQUEST_TIMEOUT", "750ms")
    runner = load_settings(write(tmp_path, GOOD)).runner
    assert runner.request_timeout == 0.75
    assert runner.max_body_bytes == 2 * 1024 * 1024  # still from the file
    assert runner.concurrency == 4


def test_env_overrides_deeply_nested_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_ENVIRONMENTS__STAGING__SERVICES__SHOP__BASE_URL", "http://10.0.0.1")
    staging = load_settings(write(tmp_path, GOOD)).environments["staging"]
    assert staging.services["shop"].base_url == "http://10.0.0.1"
    assert set(staging.secrets) == {"from_env", "from_file", "inline"}


def test_env_override_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_SERVER__PORT", "9999")
    assert load_settings(None).server.port == 9999


def test_env_override_plain_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Environment variables are strings: "30" must mean 30 seconds, as documented.
    monkeypatch.setenv("SYNTH_RUNNER__REQUEST_TIMEOUT", "30")
    assert load_settings(write(tmp_path, GOOD)).runner.request_timeout == 30.0


def test_invalid_env_override_names_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_SERVER__PORT", "99999")
    problems = problems_of(write(tmp_path, GOOD))
    assert len(problems) == 1
    assert problems[0].startswith("server.port: ")
    assert "65535" in problems[0]


def test_synth_config_variable_is_not_a_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTH_CONFIG", str(tmp_path / "other.yaml"))
    assert load_settings(write(tmp_path, GOOD)).location == "eu-west-1"


# -- secret references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "env", "file", "value"),
    [
        ("env:SHOP_PW", "SHOP_PW", None, None),
        ("file:/run/secrets/pw", None, Path("/run/secrets/pw"), None),
        ("plain-value", None, None, "plain-value"),
        ("https://x:y", None, None, "https://x:y"),
        ({"env": "SHOP_PW"}, "SHOP_PW", None, None),
        ({"value": "v"}, None, None, "v"),
    ],
)
def test_secret_forms(raw: object, env: str | None, file: Path | None, value: str | None) -> None:
    settings = Settings.model_validate({"environments": {"e": {"secrets": {"pw": raw}}}})
    ref = settings.environments["e"].secrets["pw"]
    assert ref.env == env
    assert ref.file == file
    assert (ref.value.get_secret_value() if ref.value else None) == value


def test_secret_ref_needs_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one of env, file or value"):
        SecretRef()


def test_secret_ref_resolves_each_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTH_TEST_PW", "from-env")
    secret_file = tmp_path / "pw.txt"
    secret_file.write_text("from-file\n", encoding="utf-8")
    assert SecretRef(env="SYNTH_TEST_PW").resolve().get_secret_value() == "from-env"
    assert SecretRef(file=secret_file).resolve().get_secret_value() == "from-file"
    assert SecretRef(value=SecretStr("v")).resolve().get_secret_value() == "v"


def test_resolve_environment_reads_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    monkeypatch.setenv("SYNTH_TEST_SHOP_PASSWORD", "pw-from-env")
    (tmp_path / "secret.txt").write_text("  pw-from-file \n", encoding="utf-8")
    env = resolve_environment(settings, "staging")
    assert env.name == "staging"
    assert env.services["shop"].base_url == "https://shop.staging.example.com"
    assert env.headers == {"X-Synthetic": "true"}
    assert {k: v.get_secret_value() for k, v in env.secrets.items()} == {
        "from_env": "pw-from-env",
        "from_file": "pw-from-file",
        "inline": INLINE_SECRET,
    }


def test_resolve_environment_names_every_missing_secret(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as raised:
        resolve_environment(settings, "staging")
    assert raised.value.problems == [
        "environments.staging.secrets.from_env: "
        "environment variable SYNTH_TEST_SHOP_PASSWORD is not set",
        "environments.staging.secrets.from_file: "
        "cannot read secret file secret.txt: No such file or directory",
    ]
    assert INLINE_SECRET not in str(raised.value)


def test_resolve_unknown_environment_lists_known_ones(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as raised:
        resolve_environment(settings, "prod")
    assert raised.value.problems == ["environments.prod: unknown environment (known: staging)"]


# -- which file ----------------------------------------------------------------------------


def test_find_config_file_explicit_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, GOOD)
    monkeypatch.setenv("SYNTH_CONFIG", "/from/env.yaml")
    assert find_config_file("given.yaml") == Path("given.yaml")


def test_find_config_file_env_beats_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, GOOD)
    monkeypatch.setenv("SYNTH_CONFIG", "/from/env.yaml")
    assert find_config_file(None) == Path("/from/env.yaml")


def test_find_config_file_default_when_present(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    assert find_config_file(None) == Path("synth.yaml")


def test_find_config_file_none_without_any(tmp_path: Path) -> None:
    assert find_config_file(None) is None
    assert find_config_file("") is None


def test_http_phase_buckets_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "synth.yaml"
    path.write_text("metrics:\n  http_phase_buckets: [0.005, 0.05, 0.5]\n", encoding="utf-8")
    assert load_settings(path).metrics.http_phase_buckets == (0.005, 0.05, 0.5)


@pytest.mark.parametrize(
    ("buckets", "reason"),
    [
        ("[0.1, 0.05]", "strictly increasing"),
        ("[0, 1]", "positive"),
        ("[]", "at least 1"),
    ],
)
def test_bad_http_phase_buckets_are_named(tmp_path: Path, buckets: str, reason: str) -> None:
    path = tmp_path / "synth.yaml"
    path.write_text(f"metrics:\n  http_phase_buckets: {buckets}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    problem = " ".join(raised.value.problems)
    assert "metrics.http_phase_buckets" in problem
    assert reason in problem
