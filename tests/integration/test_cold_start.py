"""A step's latency is the target's, not synth's: in a fresh `synth run` the first run's
step time beyond its wire time is within 2 ms of the tenth run's (it was 25-45 ms: the CA
bundle, the resolver and the HTTP client's first call were inside it), and a step that
sends a new session token costs no more than one that does not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from agent_harness import EXAMPLE_CHECKS, SHOP_PASSWORD, SYNTH, clean_env

from synth.demo import ShopThread

RUNS = 10
TOLERANCE_S = 0.002


def write_copies(directory: Path, count: int, base_url: str) -> Path:
    """`count` copies of a two-step check (the order of the names is the order they run)."""
    checks = directory / "checks"
    checks.mkdir(parents=True)
    for i in range(count):
        check = {
            "name": f"ping-{i:02d}",
            "service": "shop",
            "steps": [
                {"name": "health", "request": {"path": "/health"}, "expect": {"status": 200}},
                {"name": "again", "request": {"path": "/health"}, "expect": {"status": 200}},
            ],
        }
        (checks / f"ping_{i:02d}.yaml").write_text(yaml.safe_dump(check), encoding="utf-8")
    config = {
        "checks": ["checks"],
        "environments": {"ci": {"services": {"shop": {"base_url": base_url}}}},
    }
    (directory / "synth.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return checks


def own_time(step: dict[str, Any]) -> float:
    """What the step took beyond the time its requests spent on the wire."""
    wire = sum(request["timings"]["total_s"] for request in step["requests"])
    return float(step["duration_s"]) - wire


def test_the_first_run_of_a_process_costs_what_the_tenth_does(
    tmp_path: Path, shop: ShopThread
) -> None:
    write_copies(tmp_path, RUNS, shop.base_url)
    done = subprocess.run(
        [SYNTH, "run", "--env", "ci", "--concurrency", "1", "--json", "-", "--no-color"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    runs = sorted(report["runs"], key=lambda r: r["started_at"])
    assert [r["check"] for r in runs] == [f"ping-{i:02d}" for i in range(RUNS)]
    first, tenth = runs[0]["steps"][0], runs[-1]["steps"][0]
    assert first["requests"][0]["timings"]["total_s"] > 0
    gap = own_time(first) - own_time(tenth)
    assert abs(gap) <= TOLERANCE_S, (
        f"first run's own time {own_time(first) * 1000:.2f} ms vs tenth's "
        f"{own_time(tenth) * 1000:.2f} ms"
    )


def test_a_step_sending_a_new_session_token_costs_what_any_step_does(
    tmp_path: Path, shop: ShopThread
) -> None:
    """Each run logs in and sends the new token: registering it for redaction (every
    encoding of it) is synth's work, not the target's. It was ~3-4 ms of every run's
    `list products` step."""
    checks = tmp_path / "checks"
    checks.mkdir()
    source = (EXAMPLE_CHECKS / "shop_browse.yaml").read_text(encoding="utf-8")
    (checks / "shop_browse.yaml").write_text(source, encoding="utf-8")
    environment = {
        "services": {"shop": {"base_url": shop.base_url}},
        "secrets": {"shop_password": SHOP_PASSWORD},
    }
    config = {"checks": ["checks"], "environments": {"ci": environment}}
    (tmp_path / "synth.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    done = subprocess.run(
        [SYNTH, "run", "--env", "ci", "--json", "-", "--no-color"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {s["name"]: s for s in json.loads(done.stdout)["runs"][0]["steps"]}
    gap = own_time(steps["list products"]) - own_time(steps["health"])
    assert gap <= TOLERANCE_S / 2, {name: own_time(s) for name, s in steps.items()}
