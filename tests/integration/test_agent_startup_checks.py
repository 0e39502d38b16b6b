"""`synth agent` refuses to start on what `synth validate` reports, and both word it the
same: placeholder and short API credentials, and checks the configuration cannot serve.
Real subprocesses of the console script."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from agent_harness import SYNTH, clean_env, write_check, write_config


def synth(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNTH, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("server", "problem"),
    [
        (
            {"tokens": ["CHANGE-ME-agent-api-token"]},
            "server.tokens[0]: is a placeholder (CHANGE-ME…)",
        ),
        ({"tokens": ["agent-test-token", "tiny"]}, "server.tokens[1]: is 4 bytes; use at least 16"),
        ({"hmac_secret": "change-me-hmac"}, "server.hmac_secret: is a placeholder"),
        ({"hmac_secret": "fifteen-bytes!!"}, "server.hmac_secret: is 15 bytes; use at least 16"),
        (
            {"tokens": ["file:/nonexistent/synth/token"]},
            "server.tokens[0]: cannot read secret file /nonexistent/synth/token",
        ),
        (
            {"hmac_secret": "file:/nonexistent/synth/hmac"},
            "server.hmac_secret: cannot read secret file /nonexistent/synth/hmac",
        ),
    ],
)
def test_the_agent_refuses_a_guessable_api_credential_as_validate_reports_it(
    tmp_path: Path, server: dict[str, object], problem: str
) -> None:
    write_check(tmp_path, "ok.yaml", "name: ok\nservice: shop\nsteps: [{request: {path: /}}]\n")
    config = write_config(tmp_path, "http://127.0.0.1:9", server=server)
    agent = synth("agent", "--config", str(config), cwd=tmp_path)
    assert agent.returncode == 2, agent.stdout + agent.stderr
    assert f"error: {problem}" in agent.stderr
    assert "API on" not in agent.stdout  # refused before it listened
    validate = synth("validate", "--config", str(config), cwd=tmp_path)
    assert validate.returncode == 2
    assert f"error: {problem}" in validate.stdout
    assert "1 problem(s)" in validate.stdout


def test_the_agent_refuses_checks_the_configuration_cannot_serve(tmp_path: Path) -> None:
    check = write_check(
        tmp_path,
        "orders.yaml",
        """\
        name: orders
        service: orders
        steps:
          - {request: {path: /new}, capture: {id: $.id}}
          - request: {path: "/orders/${order_id}"}
        """,
    )
    billing = write_check(
        tmp_path, "billing.yaml", "name: billing\nservice: billing\nsteps: [{request: {path: /}}]\n"
    )
    config = write_config(tmp_path, "http://127.0.0.1:9")
    expected = [
        f"error: {check}:5: check 'orders': steps[1].request.path: ${{order_id}} is used "
        "before any step captures it (captured by earlier steps: id)",
        f"error: {billing}:1: check 'billing' has service 'billing', which no environment "
        "defines (add environments.<env>.services.billing)",
    ]
    agent = synth("agent", "--config", str(config), cwd=tmp_path)
    validate = synth("validate", "--config", str(config), cwd=tmp_path)
    assert agent.returncode == validate.returncode == 2
    errors = [line for line in agent.stderr.splitlines() if line.startswith("error: ")]
    assert errors == expected, agent.stderr
    assert [line for line in validate.stdout.splitlines() if line.startswith("error: ")] == errors


def test_a_busy_port_is_named_and_exits_2(tmp_path: Path) -> None:
    import socket

    write_check(tmp_path, "ok.yaml", "name: ok\nservice: shop\nsteps: [{request: {path: /}}]\n")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        config = write_config(tmp_path, "http://127.0.0.1:9", server={"port": port})
        agent = synth("agent", "--config", str(config), cwd=tmp_path)
    assert agent.returncode == 2, agent.stdout + agent.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in agent.stderr
    assert "Traceback" not in agent.stderr
