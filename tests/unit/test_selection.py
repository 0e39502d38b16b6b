"""select_checks: which checks run in an environment, and why a requested one cannot."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from synth.checks.flow import Flow
from synth.config import Settings
from synth.model import CheckSpec, SourceLocation
from synth.selection import Selection, select_checks


async def _noop(flow: Flow) -> None:
    """Never run: selection only reads metadata."""


def spec(
    name: str,
    *,
    service: str = "shop",
    envs: Sequence[str] = (),
    tags: Sequence[str] = (),
    source: SourceLocation | None = None,
) -> CheckSpec:
    return CheckSpec(
        name=name,
        func=_noop,
        service=service,
        environments=tuple(envs),
        tags=tuple(tags),
        source=source,
    )


SETTINGS = Settings.model_validate(
    {
        "environments": {
            "staging": {
                "services": {
                    "shop": {"base_url": "http://127.0.0.1:1"},
                    "search": {"base_url": "http://127.0.0.1:2"},
                }
            },
            "production": {"services": {"shop": {"base_url": "http://127.0.0.1:3"}}},
        }
    }
)

CHECKS = (
    spec("checkout", tags=("checkout", "critical")),
    spec("browse", tags=("browse",)),
    spec("search", service="search", tags=("critical",)),
    spec("staging-only", envs=("staging",)),
    spec("prod-only", envs=("production",)),
)


def names(checks: Sequence[CheckSpec]) -> list[str]:
    return [c.name for c in checks]


def test_all_applicable_checks_in_order() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging")
    assert names(selection.checks) == ["checkout", "browse", "search", "staging-only"]
    assert selection.problems == ()


def test_checks_whose_service_is_absent_are_skipped_silently() -> None:
    # `search` runs in every environment that defines its service; production does not.
    selection = select_checks(CHECKS, SETTINGS, "production")
    assert names(selection.checks) == ["checkout", "browse", "prod-only"]
    assert selection.problems == ()


def test_by_name() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", names=["browse", "checkout"])
    assert names(selection.checks) == ["checkout", "browse"]
    assert selection.problems == ()


def test_unknown_name_is_a_problem_listing_known_names() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", names=["browse", "nope"])
    assert names(selection.checks) == ["browse"]
    assert selection.problems == (
        "no check named 'nope' (known: browse, checkout, prod-only, search, staging-only)",
    )


def test_by_tag_matches_any_tag() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", tags=["critical", "browse"])
    assert names(selection.checks) == ["checkout", "browse", "search"]


def test_unmatched_tag_selects_nothing_without_problem() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", tags=["nothing"])
    assert selection == Selection((), ())


def test_by_service() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", service="search")
    assert names(selection.checks) == ["search"]


def test_filters_combine() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", tags=["critical"], service="shop")
    assert names(selection.checks) == ["checkout"]


def test_check_for_another_environment_is_not_selected_even_by_name() -> None:
    selection = select_checks(CHECKS, SETTINGS, "staging", names=["prod-only"])
    assert selection.checks == ()
    assert selection.problems == ()


def test_unknown_environment_is_a_problem() -> None:
    selection = select_checks(CHECKS, SETTINGS, "qa")
    assert selection.checks == ()
    assert selection.problems == ("unknown environment 'qa' (configured: production, staging)",)


def test_unknown_environment_with_no_environments_configured() -> None:
    selection = select_checks(CHECKS, Settings.model_validate({}), "qa")
    assert selection.problems == ("unknown environment 'qa' (configured: none)",)


@pytest.mark.parametrize("by_name", [False, True])
def test_missing_service_for_an_explicit_environment_is_a_problem(by_name: bool) -> None:
    where = SourceLocation("checks/search.py", 7)
    check = spec("prod-search", service="search", envs=("production",), source=where)
    selection = select_checks(
        [check], SETTINGS, "production", names=["prod-search"] if by_name else []
    )
    assert selection.checks == ()
    assert selection.problems == (
        "checks/search.py:7: check 'prod-search' needs service 'search', which has no base URL "
        "in environment 'production'",
    )


def test_missing_service_for_a_check_requested_by_name_is_a_problem() -> None:
    selection = select_checks(CHECKS, SETTINGS, "production", names=["search"])
    assert selection.checks == ()
    assert selection.problems == (
        "search: check 'search' needs service 'search', which has no base URL "
        "in environment 'production'",
    )
