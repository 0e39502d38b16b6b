"""`synth silence add|list|expire` against a real `synth agent` subprocess (configured as
tests/integration/test_pagerduty.py does: the demo shop's `health` check paging the
PagerDuty stand-in), with the agent's URL and credentials given the ways `synth trigger`
takes them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_harness import ENV, HMAC_SECRET, SYNTH, TOKEN, AgentProcess, StartAgent, clean_env
from pagerduty_standin import PagerDutyStandIn
from test_pagerduty import configure, outbox, run

from synth.demo import ShopThread


def synth_silence(
    *args: str, agent: AgentProcess | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`synth silence ARGS` (with `--agent URL` when `agent` is given; `env` adds
    environment variables, e.g. SYNTH_TOKEN)."""
    where = ["--agent", agent.url] if agent is not None else []
    return subprocess.run(
        [SYNTH, "silence", *args, *where],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def listed(agent: AgentProcess) -> dict[str, dict[str, object]]:
    response = agent.get("/v1/silences")
    assert response.status_code == 200, response.text
    return {s["id"]: s for s in response.json()["silences"]}


def test_add_list_and_expire_a_silence_through_the_agent(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(configure(tmp_path, shop, pagerduty))
    before = datetime.now(UTC)
    made = synth_silence(
        "add", "--check", "health", "--env", ENV, "--for", "2h",
        "--reason", "db failover", "--author", "alice",
        agent=agent, SYNTH_TOKEN=TOKEN,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (silence_id,) = listed(agent)
    assert made.stdout.startswith(f"silence {silence_id} made\n")
    silence = listed(agent)[silence_id]
    assert silence["matchers"] == {"check": "health", "env": ENV}
    assert (silence["reason"], silence["author"], silence["source"]) == (
        "db failover",
        "alice",
        "api",
    )
    end = datetime.fromisoformat(str(silence["end"]))
    assert before + timedelta(hours=2) <= end <= datetime.now(UTC) + timedelta(hours=2)

    # It silences: a failure past the threshold (2) pages nobody.
    shop.set_faults(status=503, path_prefix="/health")
    run(agent)
    run(agent)
    assert any("silenced: not paging" in m for m in agent.log_messages())
    assert outbox(tmp_path) == []

    # The agent's URL from $SYNTH_AGENT_URL, a signed request from $SYNTH_HMAC_SECRET
    # (reads need none here, but are sent one).
    shown = synth_silence("list", SYNTH_AGENT_URL=agent.url, SYNTH_HMAC_SECRET=HMAC_SECRET)
    assert shown.returncode == 0, shown.stderr
    assert silence_id in shown.stdout
    assert f"check=health env={ENV}" in shown.stdout
    assert "by alice: db failover" in shown.stdout

    refused = synth_silence("expire", silence_id, agent=agent)  # no credentials
    assert refused.returncode == 2
    assert "refused (401)" in refused.stderr
    assert silence_id in listed(agent)

    ended = synth_silence(
        "expire", silence_id, SYNTH_AGENT_URL=agent.url, SYNTH_HMAC_SECRET=HMAC_SECRET
    )
    assert ended.returncode == 0, ended.stderr
    assert ended.stdout.startswith(f"silence {silence_id} ended at ")
    assert listed(agent) == {}
    empty = synth_silence("list", agent=agent)
    assert (empty.returncode, empty.stdout) == (0, "no active or upcoming silences\n")


def test_bad_input_is_refused_with_the_reason_and_exit_code_2(
    tmp_path: Path, shop: ShopThread, pagerduty: PagerDutyStandIn, start_agent: StartAgent
) -> None:
    agent = start_agent(configure(tmp_path, shop, pagerduty))
    given = ["--reason", "r"]
    cases = {
        # the agent's 422, its detail shown
        "is in the past": ["add", "--all", "--until", "2020-01-01T00:00:00Z", *given],
        "longer than the 30 days": ["add", "--service", "shop", "--for", "40d", *given],
        # refused before asking the agent
        "say what to silence": ["add", "--for", "1h", *given],
        "--all silences every check": ["add", "--all", "--check", "health", "--for", "1h", *given],
        "--for: ": ["add", "--check", "health", "--for", "soon", *given],
        "--until: 'next tuesday' is not an ISO 8601 time": [
            "add", "--check", "health", "--until", "next tuesday", *given
        ],
        "no silence 'nosuchsilence'": ["expire", "nosuchsilence"],
    }  # fmt: skip
    for expected, args in cases.items():
        done = synth_silence(*args, agent=agent, SYNTH_TOKEN=TOKEN)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert expected in done.stderr, (args, done.stderr)
        assert done.stderr.startswith("synth silence: "), done.stderr
    assert listed(agent) == {}
    unreachable = synth_silence("list", SYNTH_AGENT_URL="http://127.0.0.1:9")
    assert unreachable.returncode == 2
    assert "cannot reach the agent at http://127.0.0.1:9" in unreachable.stderr
