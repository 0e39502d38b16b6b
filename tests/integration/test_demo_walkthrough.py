"""`synth demo --once` — what `make demo` runs — as a real subprocess from a clean
directory: the example checks pass, then fail with a report under the demo's fault; the
agent verifies a good deploy (PASS) and a broken one (FAIL), and the verdicts link the
agent's pages of the deploy and of each failing run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agent_harness import EXAMPLE_CHECKS, SYNTH, clean_env


def test_the_walkthrough_passes_then_fails_and_links_its_pages(tmp_path: Path) -> None:
    done = subprocess.run(
        [SYNTH, "demo", "--once", "--no-color", "--checks", str(EXAMPLE_CHECKS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    pages = re.search(r"pages (http://127\.0\.0\.1:\d+)/ui/", out)
    assert pages is not None, out
    api = pages.group(1)
    assert "verdict: PASS" in out
    assert "verdict: FAIL" in out
    deploy_pages = re.findall(rf"page: {re.escape(api)}/ui/deploys/[0-9a-f]+", out)
    assert len(deploy_pages) == 2, out
    failing = out[out.index("verdict: FAIL") :]
    assert re.search(rf"run: {re.escape(api)}/ui/runs/[0-9a-f]+", failing), failing
    # The failure report names the step, expected vs actual and the trace.
    assert "expected" in out
    assert re.search(r"trace [0-9a-f]{32}", out)
