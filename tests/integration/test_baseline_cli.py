"""`synth run --phase preprod --record-baseline` and `synth baseline show`, against the
demo shop and a SQLite store: once as a real subprocess, the rest in-process (faster)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from agent_harness import EXAMPLE_CHECKS, SHOP_PASSWORD, SYNTH, clean_env

from synth.cli import main
from synth.demo import ShopThread

HEADER = [
    "ENV", "STEP", "VERSION", "N", "P50", "P95", "P99", "SUCCESS", "FIELDS", "UPDATED", "JUDGED",
]  # fmt: skip
STEPS = ["add to cart", "check out", "list products", "log in", "order status"]


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_records_a_baseline_that_show_prints(
    tmp_path: Path, shop: ShopThread, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/baseline.db"
    config = tmp_path / "synth.yaml"
    env = {
        "services": {"shop": {"base_url": shop.base_url}},
        "secrets": {"shop_password": SHOP_PASSWORD},
    }
    config.write_text(yaml.safe_dump({"environments": {"staging": env}}), encoding="utf-8")
    checkout = str(EXAMPLE_CHECKS / "shop_checkout.py")

    code, _, err = in_process(
        capsys, "run", checkout, "--config", str(config), "--env", "staging",
        "--phase", "adhoc", "--record-baseline",
    )  # fmt: skip
    assert code == 2
    assert "--record-baseline needs --phase preprod" in err

    record = (
        "run", checkout, "--config", str(config), "--env", "staging", "--phase", "preprod",
        "--record-baseline", "--store", db, "--version", "v9", "--no-color",
    )  # fmt: skip
    done = subprocess.run(
        [SYNTH, *record], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        check=False, env=clean_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "baseline: recorded 5 step(s) on version v9 in the store" in done.stdout
    code, out, err = in_process(capsys, *record)  # merged into the same rows
    assert code == 0, out + err
    assert "baseline: recorded 5 step(s) on version v9 in the store" in out

    code, out, err = in_process(capsys, "baseline", "show", "checkout", "--store", db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "baseline of checkout"
    assert lines[1].split() == HEADER
    rows, note = lines[2:-1], lines[-1]
    assert sorted(re.split(r"\s{2,}", line)[1] for line in rows) == STEPS
    assert all(re.search(r"\sv9\s+2\s+[\d.]+ ms", line) for line in rows), out
    assert all("100.0%" in line for line in rows)
    # Two samples are too few to judge on (min_samples 20 by default): it says so.
    assert all(line.endswith("no: 2 of 20 samples") for line in rows), out
    assert note.startswith("A baseline with fewer than 20 samples (baseline.min_samples)")

    code, out, _ = in_process(capsys, "baseline", "show", "nope", "--store", db)
    assert code == 1
    assert "no baseline recorded for check 'nope'" in out
