"""SQLite stays single-agent: a second `synth agent` on the same SQLite file refuses to
start with a clear message, instead of running every check a second time; the lock goes
with its holder however it ends, SIGKILL included (issue 16)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agent_harness import SYNTH, StartAgent, clean_env, write_check, write_config

from synth.demo import ShopThread

TICK = """
    import synth

    @synth.check(service="shop", every="1s", timeout="5s")
    async def tick(flow):
        async with flow.step("health"):
            (await flow.get("/health")).expect_status(200)
"""


def second_agent(config: Path) -> subprocess.CompletedProcess[str]:
    """Another `synth agent` on `config`, expected to exit by itself."""
    return subprocess.run(
        [SYNTH, "agent", "--config", str(config)],
        cwd=config.parent,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_second_agent_on_a_sqlite_file_refuses(
    tmp_path: Path, shop: ShopThread, start_agent: StartAgent
) -> None:
    write_check(tmp_path, "tick.py", TICK)
    config = write_config(tmp_path, shop.base_url)
    first = start_agent(config)

    refused = second_agent(config)
    assert refused.returncode == 2, refused.stderr
    message = refused.stderr
    assert f"{tmp_path / 'synth.db'}" in message
    assert f"in use by another synth agent (pid {first.pid})" in message
    assert "PostgreSQL" in message
    assert "Traceback" not in message
    assert "API on" not in refused.stdout  # refused before it listened or ran anything
    assert first.get("/readyz").status_code == 200  # the holder carries on

    # Another folder's config naming the same file (a relative path, a symlink) is refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "same.db").symlink_to(tmp_path / "synth.db")
    aliased = write_config(other, shop.base_url, store=f"sqlite:///{other / 'same.db'}")
    write_check(other, "tick.py", TICK)
    assert second_agent(aliased).returncode == 2

    first.kill()  # SIGKILL: the kernel releases the lock with the process
    successor = start_agent(config)
    assert successor.get("/readyz").status_code == 200
