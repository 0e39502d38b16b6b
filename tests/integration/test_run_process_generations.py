"""A run process keeps the generations of checks it may be asked to run, and no others:
the one the agent's runs come for, and the newest it loaded (the agent may reject that
reload, and then never uses it)."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

from agent_harness import write_check, write_config

from synth.agent.run_process import RunProcess

CHECK = """\
name: ping
service: shop
every: 1s
steps: [{request: {path: /health}}]
"""


def test_a_run_process_keeps_the_generation_in_use_and_the_newest(tmp_path: Path) -> None:
    write_check(tmp_path, "ping.yaml", CHECK)
    config = write_config(tmp_path, "http://127.0.0.1:9")
    args = Namespace(
        config=str(config), paths=[], shard=0, shards=1, browser=False, spans=False, generation=1
    )
    process = RunProcess(args, writer=None)  # type: ignore[arg-type]  # sends nothing here

    def loaded() -> object:
        found, problems = process.load()
        assert problems == []
        assert found is not None
        assert list(found.checks) == ["ping"]
        return found

    process.keep(1, loaded())  # at start
    process.keep(2, loaded())  # a reload the agent rejected: its runs stay on 1
    assert sorted(process.loaded) == [1, 2]
    process.keep(3, loaded())  # the next reload: 2 was never used
    assert sorted(process.loaded) == [1, 3]
    process.use(1)
    assert sorted(process.loaded) == [1, 3]
    process.use(3)  # the agent switched: no run of 1 comes any more
    assert sorted(process.loaded) == [3]
