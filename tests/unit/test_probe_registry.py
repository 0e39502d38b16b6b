"""The probe registry is the one place a protocol is known: the YAML step keys, the facts'
JSON kinds and the report schema all follow it, and every probe meets the contract."""

from __future__ import annotations

import dataclasses
import typing

from synth.checks.yaml.schema import Step
from synth.outputs.report_json import JSON_SCHEMA
from synth.probes.contract import Probe
from synth.probes.facts import KINDS
from synth.probes.options import ProbeOptions
from synth.probes.registry import PROBES, probe_named

# The least each probe's options need (a browser step needs an action).
MINIMAL_OPTIONS: dict[str, object] = {"browser": [{"goto": "/"}]}


def test_every_protocol_is_registered() -> None:
    assert list(PROBES) == ["tcp", "dns", "tls", "browser"]
    for kind, probe in PROBES.items():
        assert isinstance(probe, Probe)
        assert probe.kind == kind
        assert probe_named(kind) is probe


def test_each_probe_meets_the_contract() -> None:
    for probe in PROBES.values():
        assert issubclass(probe.options, ProbeOptions)
        assert probe.options.model_config.get("extra") == "forbid"
        assert dataclasses.is_dataclass(probe.facts)
        assert probe.facts.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert set(probe.templated) <= set(probe.options.model_fields)
        assert probe.summary
        # the default step name comes from the options alone
        minimal = MINIMAL_OPTIONS.get(probe.kind, {})
        assert probe.title(probe.options.model_validate(minimal), "shop").startswith(probe.kind)


def test_yaml_steps_follow_the_registry() -> None:
    for kind, probe in PROBES.items():
        field = Step.model_fields[kind]
        assert typing.get_args(field.annotation)[0] is probe.options
        assert field.default is None
    assert set(Step.model_fields) - set(PROBES) == {
        "name",
        "request",
        "expect",
        "capture",
        "secret_captures",
    }


def test_facts_kinds_and_report_schema_follow_the_registry() -> None:
    assert {kind: probe.facts for kind, probe in PROBES.items()} == KINDS
    # the step's facts.kind enum in the JSON report schema
    assert f"'enum': {sorted(PROBES)!r}" in repr(JSON_SCHEMA)
