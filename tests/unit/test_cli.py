"""The `synth` command, called in-process: exit codes, problems, the list table, and one
end-to-end `synth run` against the demo shop."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from synth import __version__
from synth.cli import main
from synth.demo import ShopThread, run_in_thread
from synth.demo.shop import DEFAULT_PASSWORD

REPO_CHECKS = Path(__file__).resolve().parents[2] / "checks"

GOOD_CHECK = """\
import synth


@synth.check(service="shop", every="5m", envs=["local"], tags=["smoke", "fast"])
async def good(flow: synth.Flow) -> None:
    \"\"\"Always fine.\"\"\"
"""
GOOD_DECORATOR_LINE = 4

BROKEN_CHECK = """\
import synth


@synth.check(service="shop", every="soon")
async def broken(flow: synth.Flow) -> None:
    pass
"""
BROKEN_DECORATOR_LINE = 4


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither the developer's SYNTH_* variables nor the repo's synth.yaml leak in."""
    for name in list(os.environ):
        if name.upper().startswith("SYNTH_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, base_url: str = "http://127.0.0.1:9", extra: str = "") -> Path:
    config = tmp_path / "synth.yaml"
    text = f"""
    checks: [checks]
    environments:
      local:
        services:
          shop: {{base_url: "{base_url}"}}
    """
    config.write_text(dedent(text) + extra, encoding="utf-8")
    return config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config and a checks directory holding one good check."""
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "good.py").write_text(GOOD_CHECK, encoding="utf-8")
    return write_config(tmp_path)


# -- basics ---------------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--version"])
    assert raised.value.code == 0
    assert capsys.readouterr().out.strip() == f"synth {__version__}"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: synth")
    for command in ("run", "validate", "list", "agent", "trigger", "demo"):
        assert f"    {command} " in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["explode"])
    assert raised.value.code == 2
    assert "invalid choice: 'explode'" in capsys.readouterr().err


def test_invalid_config_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("runner:\n  request_timeout: soon\n", encoding="utf-8")
    assert main(["validate", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"synth: invalid configuration: {config}: runner.request_timeout: ")
    assert "not a duration: 'soon'" in err


# -- validate -------------------------------------------------------------------------------


def test_validate_good_project(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--config", str(project)]) == 0
    assert capsys.readouterr().out == "1 check(s) loaded, environments: local; 0 problem(s)\n"


def test_validate_reports_broken_check_with_file_and_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "checks" / "broken.py"
    broken.write_text(BROKEN_CHECK, encoding="utf-8")
    assert main(["validate", "--config", str(project)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {broken}:{BROKEN_DECORATOR_LINE}: check 'broken': ")
    assert "not a duration: 'soon'" in lines[0]
    assert lines[1] == "1 check(s) loaded, environments: local; 1 problem(s)"


def test_validate_reports_missing_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "checks").mkdir()
    extra = "    secrets:\n      pw: env:SYNTH_TEST_UNSET_PASSWORD\n"
    config = write_config(tmp_path, extra=extra)
    assert main(["validate", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert (
        "error: environments.local.secrets.pw: "
        "environment variable SYNTH_TEST_UNSET_PASSWORD is not set\n"
    ) in out
    assert out.endswith("0 check(s) loaded, environments: local; 1 problem(s)\n")


def validate_out(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """`synth validate`'s problem lines (exit 2 expected)."""
    assert main(["validate", "--config", str(config), *args]) == 2
    out = capsys.readouterr().out.splitlines()
    return [line for line in out if line.startswith("error: ")]


def test_validate_reports_what_the_agent_refuses_to_start_on(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each of these made `synth agent` exit 2 (or accept a guessable token) while
    # `synth validate` said 0 problems.
    extra = dedent(
        """
        server:
          tokens: [CHANGE-ME-agent-api-token, short-token]
          hmac_secret: {value: "0123456789abcdef0123"}
        hooks:
          flagger: {targets: {}}
          github: {secret: change-me-github, services: {org/repo: shop}}
        """
    )
    config = write_config(tmp_path, extra=extra)
    problems = validate_out(config, capsys)
    assert problems == [
        "error: server.tokens[0]: is a placeholder (CHANGE-ME…): set a real secret "
        "(e.g. openssl rand -hex 32)",
        "error: server.tokens[1]: is 11 bytes; use at least 16 (e.g. openssl rand -hex 32)",
        "error: hooks.github.secret: is a placeholder (CHANGE-ME…): set a real secret "
        "(e.g. openssl rand -hex 32)",
    ]
    config = write_config(tmp_path, extra="hooks:\n  flagger: {targets: {}}\n")
    assert validate_out(config, capsys) == [
        "error: hooks.flagger: no tokens here or in server.tokens to accept"
    ]


def test_validate_reports_checks_the_configuration_cannot_serve(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checks = tmp_path / "checks"
    (checks / "orphans.py").write_text(
        dedent(
            """\
            import synth


            @synth.check(service="billing", every="5m")
            async def nowhere(flow: synth.Flow) -> None:
                pass


            @synth.check(service="shop", every="5m", playbook="shop-oncall")
            async def paged(flow: synth.Flow) -> None:
                pass
            """
        ),
        encoding="utf-8",
    )
    path = checks / "orphans.py"
    assert validate_out(project, capsys) == [
        f"error: {path}:4: check 'nowhere' has service 'billing', which no environment "
        "defines (add environments.<env>.services.billing)",
        f"error: {path}:9: check 'paged' names playbook 'shop-oncall', but no playbooks are "
        "configured (add playbooks.shop-oncall or drop it)",
    ]


def test_validate_env_checks_only_that_environments_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "checks").mkdir()
    config = tmp_path / "synth.yaml"
    config.write_text(
        dedent(
            """\
            checks: [checks]
            environments:
              local:
                services: {shop: {base_url: "http://127.0.0.1:9"}}
                secrets: {pw: env:SYNTH_TEST_LOCAL_PW}
              staging:
                services: {shop: {base_url: "https://shop.staging.example.com"}}
                secrets: {pw: env:SYNTH_TEST_STAGING_PW}
            server:
              tokens: [CHANGE-ME-token]
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("SYNTH_TEST_LOCAL_PW", "pw")
    assert validate_out(config, capsys, "--env", "staging") == [
        "error: environments.staging.secrets.pw: "
        "environment variable SYNTH_TEST_STAGING_PW is not set"
    ]
    assert main(["validate", "--config", str(config), "--env", "local"]) == 0
    assert capsys.readouterr().out == "0 check(s) loaded, environments: local; 0 problem(s)\n"
    assert validate_out(config, capsys, "--env", "qa") == [
        "error: --env qa: unknown environment (configured: local, staging)"
    ]
    # Without --env: everything the agent reads at start, the API token included.
    assert validate_out(config, capsys) == [
        "error: server.tokens[0]: is a placeholder (CHANGE-ME…): set a real secret "
        "(e.g. openssl rand -hex 32)",
        "error: environments.staging.secrets.pw: "
        "environment variable SYNTH_TEST_STAGING_PW is not set",
    ]


@pytest.mark.parametrize(
    ("env", "variables"),
    [("local", {}), ("staging", {"SHOP_PASSWORD_STAGING": "a-staging-password"})],
)
def test_the_shipped_example_validates_with_the_variables_the_readme_lists(
    env: str,
    variables: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The README: `synth validate --env local` as cloned; staging with its password set.
    # (The shipped checkout check named a playbook the shipped synth.yaml lacks.)
    monkeypatch.delenv("SHOP_PASSWORD_STAGING", raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    config = REPO_CHECKS.parent / "synth.yaml"
    assert main(["validate", "--config", str(config), str(REPO_CHECKS), "--env", env]) == 0
    out = capsys.readouterr().out
    assert out == f"4 check(s) loaded, environments: {env}; 0 problem(s)\n"


# -- list -----------------------------------------------------------------------------------


def test_list_table(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "checks" / "nightly.py").write_text(
        dedent(
            """\
            import synth


            @synth.check(name="nightly", service="shop", cron="0 3 * * *")
            async def nightly_job(flow: synth.Flow) -> None:
                pass
            """
        ),
        encoding="utf-8",
    )
    assert main(["list", "--config", str(project)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CHECK", "SERVICE", "ENVIRONMENTS", "SCHEDULE", "TAGS", "SOURCE"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"good", "nightly"}
    good_source = f"{tmp_path / 'checks' / 'good.py'}:{GOOD_DECORATOR_LINE}"
    assert [c.strip() for c in rows["good"].split("  ") if c.strip()] == [
        "good",
        "shop",
        "local",
        "every 5m",
        "smoke,fast",
        good_source,
    ]
    assert [c.strip() for c in rows["nightly"].split("  ") if c.strip()] == [
        "nightly",
        "shop",
        "(all)",
        "cron 0 3 * * *",
        "-",
        f"{tmp_path / 'checks' / 'nightly.py'}:4",
    ]
    # Columns are aligned: every cell of a column starts at the header's offset.
    for header in ("SERVICE", "ENVIRONMENTS", "SCHEDULE", "TAGS", "SOURCE"):
        offset = lines[0].index(header)
        assert all(line[offset - 2 : offset] == "  " for line in lines[1:])


def test_list_with_problems_exits_2(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "checks" / "broken.py").write_text(BROKEN_CHECK, encoding="utf-8")
    assert main(["list", "--config", str(project)]) == 2
    captured = capsys.readouterr()
    assert f"broken.py:{BROKEN_DECORATOR_LINE}: check 'broken'" in captured.err
    assert [line.split()[0] for line in captured.out.splitlines()] == ["CHECK", "good"]


# -- run: usage errors ----------------------------------------------------------------------


def test_run_unknown_environment_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(project), "--env", "nope"]) == 2
    captured = capsys.readouterr()
    assert "error: unknown environment 'nope' (configured: local)" in captured.err
    assert "Running" not in captured.out


def test_run_unknown_check_exits_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(project), "--env", "local", "--check", "missing"]) == 2
    captured = capsys.readouterr()
    assert "error: no check named 'missing' (known: good)" in captured.err
    assert "Running" not in captured.out


def test_run_requires_env(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["run", "--config", str(project)])
    assert raised.value.code == 2
    assert "--env" in capsys.readouterr().err


# -- run: end to end against the demo shop ----------------------------------------------------


@pytest.fixture
def shop() -> Iterator[ShopThread]:
    with run_in_thread() as running:
        yield running


@pytest.fixture
def shop_config(tmp_path: Path, shop: ShopThread) -> Path:
    config = tmp_path / "e2e.yaml"
    text = f"""
    checks: ["{REPO_CHECKS}"]
    environments:
      local:
        services:
          shop: {{base_url: "{shop.base_url}"}}
        secrets:
          shop_password: {{value: {DEFAULT_PASSWORD}}}
    runner:
      retry_delay: 0s
    browser:
      artifacts_dir: "{tmp_path / "artifacts"}"
    """
    config.write_text(dedent(text), encoding="utf-8")
    return config


def run_shop(config: Path, tmp_path: Path, tag: str) -> tuple[int, dict[str, Any], ET.Element]:
    """`synth run` with JSON and JUnit reports; neither may contain the shop password."""
    json_file = tmp_path / f"{tag}.json"
    junit_file = tmp_path / f"{tag}.xml"
    argv = ["run", "--config", str(config), "--env", "local", "--no-color"]
    code = main([*argv, "--json", str(json_file), "--junit", str(junit_file)])
    json_text = json_file.read_text(encoding="utf-8")
    junit_text = junit_file.read_text(encoding="utf-8")
    for text in (json_text, junit_text):
        assert DEFAULT_PASSWORD not in text
    return code, json.loads(json_text), ET.fromstring(junit_text)


def test_run_against_demo_shop_passes_and_writes_reports(
    shop_config: Path, tmp_path: Path, shop: ShopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, junit = run_shop(shop_config, tmp_path, "pass")
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert captured.out.startswith("Running 4 check(s) against local")
    assert "4 checks: 4 passed, 0 failed" in captured.out
    assert DEFAULT_PASSWORD not in captured.out + captured.err
    # The secret really was sent: the shop saw logins.
    assert any(r.path == "/api/login" for r in shop.requests)

    assert report["environment"] == "local"
    assert report["summary"] == {"total": 4, "passed": 4, "failed": 0, "skipped": 0}
    runs = {r["check"]: r for r in report["runs"]}
    assert set(runs) == {"browse", "checkout", "shop-port", "shop-ui-checkout"}
    facts = runs["shop-ui-checkout"]["steps"][0]["facts"]
    assert facts["kind"] == "browser"
    assert facts["status"] == 200
    assert runs["shop-ui-checkout"]["artifacts"] == []  # kept on failure only
    assert [s["name"] for s in runs["checkout"]["steps"]] == [
        "log in",
        "list products",
        "add to cart",
        "check out",
        "order status",
    ]
    assert all(r["status"] == "passed" for r in runs.values())

    assert junit.tag == "testsuites"
    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("4", "0", "0")
    suite = junit.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "synth.local"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {"browse", "checkout", "shop-port", "shop-ui-checkout"}
    assert all(c.find("failure") is None and c.find("error") is None for c in cases.values())


def test_run_against_failing_demo_shop_exits_1_naming_the_step(
    shop_config: Path, tmp_path: Path, shop: ShopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    shop.set_faults(status=503, path_prefix="/api/checkout")
    code, report, junit = run_shop(shop_config, tmp_path, "fail")
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    out = captured.out
    assert DEFAULT_PASSWORD not in out + captured.err
    assert re.search(r"^ +(✗|FAIL) check out +\S+ +http_status$", out, re.MULTILINE), out
    assert "expected status 201, got 503" in out
    # The browser check fails too (the page shows "Checkout failed"), with its screenshot.
    assert "4 checks: 2 passed, 2 failed (checkout, shop-ui-checkout)" in out
    shot = re.search(r"artifact screenshot\.png: (\S+)", out)
    assert shot is not None, out
    assert Path(shot.group(1)).read_bytes().startswith(b"\x89PNG")
    assert Path(shot.group(1)).is_relative_to(tmp_path / "artifacts")
    assert "POST /api/checkout answered 503" in out

    assert report["summary"] == {"total": 4, "passed": 2, "failed": 2, "skipped": 0}
    ui = next(r for r in report["runs"] if r["check"] == "shop-ui-checkout")
    urls = {a["name"]: a["url"] for a in ui["artifacts"]}
    assert urls["screenshot.png"] == shot.group(1)  # the JSON report says where it is
    checkout = next(r for r in report["runs"] if r["check"] == "checkout")
    assert checkout["status"] == "failed"
    assert checkout["failed_step"] == "check out"
    assert checkout["failure_type"] == "http_status"
    assert checkout["attempts"] == 2  # retries=1 in checks/shop_checkout.py

    assert (junit.get("tests"), junit.get("failures"), junit.get("errors")) == ("4", "2", "0")
    browser_case = next(c for c in junit.iter("testcase") if c.get("name") == "shop-ui-checkout")
    attached = browser_case.findtext("system-out") or ""
    assert f"[[ATTACHMENT|{shot.group(1)}]]" in attached
    case = next(c for c in junit.iter("testcase") if c.get("name") == "checkout")
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("type") == "http_status"
    assert failure.get("message") == "http_status: expected status 201, got 503"
    assert (failure.text or "").startswith("step:     check out\n")
