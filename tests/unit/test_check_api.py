"""`@synth.check` and build_spec: declarations are validated where they are written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import synth
from synth.checks.api import CheckDefinitionError, build_spec, collector
from synth.checks.flow import Flow
from synth.model import CheckSpec, Schedule, SourceLocation

HERE = __file__


def spec_of(func: Any) -> CheckSpec:
    spec = func.__synth_check__
    assert isinstance(spec, CheckSpec)
    return spec


def decorator_line(definition: str) -> int:
    """The 1-based line of the decorator just above the one line of this file that starts
    with `definition` (after indentation)."""
    lines = Path(HERE).read_text(encoding="utf-8").splitlines()
    found = [n for n, text in enumerate(lines, start=1) if text.strip().startswith(definition)]
    assert len(found) == 1, found
    return found[0] - 1


def declare(**options: Any) -> CheckSpec:
    """Declare a trivial async check with `options` and return its spec."""
    options.setdefault("service", "shop")

    @synth.check(**options)
    async def probe(flow: Flow) -> None:
        """Probe the shop."""

    return spec_of(probe)


def definition_error(**options: Any) -> CheckDefinitionError:
    with pytest.raises(CheckDefinitionError) as raised:
        declare(**options)
    return raised.value


# -- defaults ---------------------------------------------------------------------------------


def test_defaults() -> None:
    @synth.check(service="shop")
    async def browse_catalogue(flow: Flow) -> None:
        """The catalogue lists products.

        More detail that is part of the docstring.
        """

    spec = spec_of(browse_catalogue)
    assert spec.name == "browse_catalogue"
    assert spec.service == "shop"
    assert spec.description == (
        "The catalogue lists products.\n\nMore detail that is part of the docstring."
    )
    assert spec.schedule == Schedule(every_s=60.0)
    assert spec.timeout_s == 30.0
    assert spec.retries is None  # from the sensitivity preset
    assert spec.sensitivity is None
    assert spec.environments == ()
    assert spec.tags == ()
    assert spec.playbook is None
    assert spec.runbook_url is None
    assert spec.kind == "python"
    assert spec.func is browse_catalogue
    assert spec.source == SourceLocation(HERE, decorator_line("async def browse_catalogue("))


def test_no_docstring_means_empty_description() -> None:
    @synth.check(service="shop")
    async def bare(flow: Flow) -> None:
        pass

    assert spec_of(bare).description == ""


def test_explicit_options() -> None:
    spec = declare(
        name="checkout.v2",
        envs=["staging", "production"],
        every="30s",
        timeout="1m",
        retries=2,
        tags=["checkout", "critical"],
        playbook="shop-oncall",
        description="Customers can pay.",
        runbook="https://runbooks.example.com/checkout",
    )
    assert spec.name == "checkout.v2"
    assert spec.environments == ("staging", "production")
    assert spec.schedule == Schedule(every_s=30.0)
    assert spec.timeout_s == 60.0
    assert spec.retries == 2
    assert spec.tags == ("checkout", "critical")
    assert spec.playbook == "shop-oncall"
    assert spec.description == "Customers can pay."
    assert spec.runbook_url == "https://runbooks.example.com/checkout"


def test_single_string_env_and_tag_are_not_split_into_characters() -> None:
    spec = declare(envs="staging", tags="smoke")
    assert spec.environments == ("staging",)
    assert spec.tags == ("smoke",)


def test_cron_schedule() -> None:
    spec = declare(cron="*/5 * * * *")
    assert spec.schedule == Schedule(cron="*/5 * * * *")
    assert spec.schedule.describe() == "cron */5 * * * *"


def test_numeric_every_and_timeout_are_seconds() -> None:
    spec = declare(every=90, timeout=2.5)
    assert spec.schedule == Schedule(every_s=90.0)
    assert spec.timeout_s == 2.5


def test_the_decorator_returns_the_function_itself() -> None:
    async def plain(flow: Flow) -> None:
        pass

    assert synth.check(service="shop")(plain) is plain


def test_active_collector_receives_the_spec() -> None:
    collected: list[CheckSpec] = []
    previous, collector.active = collector.active, collected
    try:
        spec = declare(name="collected")
    finally:
        collector.active = previous
    assert collected == [spec]


# -- validation -----------------------------------------------------------------------------


def test_non_async_function_is_rejected_with_its_source_line() -> None:
    with pytest.raises(CheckDefinitionError) as raised:

        @synth.check(service="shop")  # type: ignore[arg-type]
        def sync_check(flow: Flow) -> None:
            pass

    error = raised.value
    line = decorator_line("def sync_check(")
    assert error.source == SourceLocation(HERE, line)
    assert error.reason == "check 'sync_check' must be declared with 'async def'"
    assert str(error) == f"{HERE}:{line}: {error.reason}"
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"every": "soon"}, "not a duration: 'soon'"),
        ({"every": "500ms"}, "every must be at least 1s, got '500ms'"),
        ({"every": 0}, "every must be at least 1s"),
        ({"cron": "every monday"}, "invalid cron expression 'every monday'"),
        ({"cron": "61 * * * *"}, "invalid cron expression '61 * * * *'"),
        ({"every": "5m", "cron": "* * * * *"}, "give either every= or cron=, not both"),
        ({"timeout": "forever"}, "not a duration: 'forever'"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"timeout": "0s"}, "timeout must be positive"),
        ({"timeout": -1}, "must not be negative"),
        ({"retries": -1}, "retries must be a whole number from 0 to 10"),
        ({"retries": 11}, "retries must be a whole number from 0 to 10"),
        ({"retries": True}, "retries must be a whole number from 0 to 10"),
        ({"retries": 1.5}, "retries must be a whole number from 0 to 10"),
        ({"service": ""}, "service is required"),
    ],
)
def test_invalid_options(options: dict[str, Any], reason: str) -> None:
    error = definition_error(**options)
    assert error.reason.startswith("check 'probe': ")
    assert reason in error.reason
    assert error.source is not None
    assert error.source.path == HERE


@pytest.mark.parametrize("name", ["has space", "bad/name", "émoji", "x" * 81, "a:b"])
def test_invalid_names(name: str) -> None:
    error = definition_error(name=name)
    assert error.reason == (
        f"check {name!r}: name must be 1-80 characters of letters, digits, '_', '-' or '.'"
    )


@pytest.mark.parametrize("name", ["a", "Checkout", "shop-checkout_v2.eu", "x" * 80])
def test_valid_names(name: str) -> None:
    assert declare(name=name).name == name


# -- build_spec (shared with the YAML form) -------------------------------------------------


async def _flow(flow: Flow) -> None:
    """Unused body."""


BUILD_DEFAULTS: dict[str, Any] = {
    "name": "browse",
    "func": _flow,
    "service": "shop",
    "envs": (),
    "every": None,
    "cron": None,
    "timeout": "10s",
    "retries": None,
    "tags": (),
    "playbook": None,
    "description": "",
    "runbook": None,
    "source": SourceLocation("checks/browse.yaml", 1),
    "kind": "yaml",
}


def test_build_spec() -> None:
    spec = build_spec(**{**BUILD_DEFAULTS, "every": "1m", "tags": ["browse"]})
    assert spec == CheckSpec(
        name="browse",
        func=_flow,
        service="shop",
        schedule=Schedule(every_s=60.0),
        timeout_s=10.0,
        tags=("browse",),
        source=SourceLocation("checks/browse.yaml", 1),
        kind="yaml",
    )


def test_build_spec_error_carries_the_given_source() -> None:
    with pytest.raises(CheckDefinitionError) as raised:
        build_spec(**{**BUILD_DEFAULTS, "timeout": "nope"})
    assert raised.value.source == SourceLocation("checks/browse.yaml", 1)
    assert str(raised.value).startswith("checks/browse.yaml:1: check 'browse': not a duration")


def test_build_spec_without_source() -> None:
    with pytest.raises(CheckDefinitionError) as raised:
        build_spec(**{**BUILD_DEFAULTS, "retries": 99, "source": None})
    assert raised.value.source is None
    assert str(raised.value) == "check 'browse': retries must be a whole number from 0 to 10"
