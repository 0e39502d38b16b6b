"""The `baseline:` config section: defaults, per-check overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from synth.config import ConfigError, load_settings
from synth.model import Severity


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "synth.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_defaults_leave_comparison_off(tmp_path: Path) -> None:
    baseline = load(tmp_path, "location: here\n").baseline
    assert baseline.from_env is None
    assert (baseline.latency_factor, baseline.min_samples, baseline.window) == (2.0, 20, 50)
    assert baseline.contract.missing is Severity.FAIL
    assert baseline.contract.new_field is Severity.WARN


def test_per_check_override_changes_only_what_it_names(tmp_path: Path) -> None:
    baseline = load(
        tmp_path,
        """
baseline:
  from_env: staging
  min_increase: 100ms
  contract: {new_field: fail}
  checks:
    checkout: {latency_factor: 3, contract: {new_field: ignore}}
    legacy: {enabled: false}
""",
    ).baseline
    checkout = baseline.for_check("checkout")
    assert checkout.latency_factor == 3.0
    assert checkout.min_increase == 0.1
    assert checkout.contract.new_field is Severity.IGNORE
    assert baseline.for_check("legacy").enabled is False
    assert baseline.for_check("other") is baseline
    assert baseline.for_check("other").contract.new_field is Severity.FAIL


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "baseline: {latency_factor: 0.5, contract: {missing: maybe}}\n")
    problems = "\n".join(error.value.problems)
    assert "baseline.latency_factor" in problems
    assert "baseline.contract.missing" in problems
