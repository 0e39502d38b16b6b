"""What one check costs Prometheus: series and bytes of `/metrics`, per `metrics.detail`
level, next to what blackbox_exporter answers for a probe of the same URL.

For each level a real `synth agent` (subprocess, SQLite store) runs one scheduled
one-step GET check (`checkout-api`, env `production`, location `eu-west-1`: label values
of a realistic length) against a private nginx; after its first passing run, `/metrics`
(the classic text format Prometheus scrapes without exemplars) is read and the samples
labelled `check="checkout-api"` are counted: series and bytes. Lines without the check
label (HELP/TYPE, agent-wide families) are paid once per scrape whatever the number of
checks, so they are printed apart. Then one more run fails (the target answers 404) to
show what a failure adds. blackbox_exporter (module http_2xx) probes the same URL once;
its `/probe` answer is what Prometheus ingests per target per scrape: all of it counts.

Everything listens on 127.0.0.1; every process is stopped by the PID this script started;
every wait is bounded.

    .venv/bin/python bench/series_per_check.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx2
import yaml
from agent_scale import TOKEN, running_agent, running_blackbox
from nginx import running_nginx

CHECK = "checkout-api"
ENV = "production"
LOCATION = "eu-west-1"
LEVELS: tuple[tuple[str, ...], ...] = (
    (),
    ("failure_types",),
    ("phases",),
    ("steps",),
    ("phases", "steps", "failure_types"),
)
TARGET_SERIES = 25
TARGET_BYTES = 3 * 1024
WAIT_S = 60.0


def write_files(directory: Path, base_url: str, detail: tuple[str, ...]) -> Path:
    checks = [
        {
            "name": CHECK,
            "service": "api",
            "every": "2s",
            "timeout": "5s",
            "retries": 0,
            "steps": [
                {"name": "health", "request": {"path": "/ok"}, "expect": {"status": 200}},
            ],
        }
    ]
    (directory / "checks").mkdir()
    (directory / "checks" / "api.yaml").write_text(yaml.safe_dump({"checks": checks}))
    config = {
        "checks": ["checks"],
        "location": LOCATION,
        "environments": {ENV: {"services": {"api": {"base_url": base_url}}}},
        "server": {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN]},
        "store": {"url": f"sqlite+aiosqlite:///{directory}/synth.db"},
        "scheduler": {"jitter": 0},
        "metrics": {"detail": list(detail)},
    }
    path = directory / "synth.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check_lines(text: str) -> tuple[list[str], int]:
    """(sample lines of the check, bytes of every other line)."""
    mine = [line for line in text.splitlines() if f'check="{CHECK}"' in line]
    other = sum(len(line) + 1 for line in text.splitlines() if f'check="{CHECK}"' not in line)
    return mine, other


def runs_counted(text: str, result: str) -> float:
    for line in text.splitlines():
        wanted = f'check="{CHECK}"' in line and f'result="{result}"' in line
        if line.startswith("synth_check_runs_total{") and wanted:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_run(client: httpx2.Client, result: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        if runs_counted(text, result) >= 1:
            return text
        time.sleep(0.2)
    raise RuntimeError(f"no {result} run of {CHECK} within {WAIT_S:g}s")


def families(lines: list[str]) -> str:
    counts: dict[str, int] = {}
    for line in lines:
        name = line.split("{", 1)[0]
        for suffix in ("_bucket", "_sum", "_count"):
            name = name.removesuffix(suffix)
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{name.removeprefix('synth_')} {n}" for name, n in counts.items())


def measure_synth(base_url: str, fail_url: str) -> None:
    print("  level                              series   bytes   + a failure   families")
    for detail in LEVELS:
        with tempfile.TemporaryDirectory(prefix="synth-bench-series-") as tmp:
            config = write_files(Path(tmp), base_url, detail)
            with running_agent(config) as (_, client):
                lines, _ = check_lines(wait_run(client, "passed"))
                size = sum(len(line) + 1 for line in lines)
                # The same check failing once: its failure type's counter appears.
                data = yaml.safe_load(config.read_text())
                data["environments"][ENV]["services"]["api"]["base_url"] = fail_url
                config.write_text(yaml.safe_dump(data))
                reload = client.post("/v1/reload", headers={"Authorization": f"Bearer {TOKEN}"})
                reload.raise_for_status()
                failed, other = check_lines(wait_run(client, "failed"))
        name = "default" if not detail else "detail: [" + ", ".join(detail) + "]"
        verdict = ""
        if not detail:
            ok = len(lines) <= TARGET_SERIES and size <= TARGET_BYTES
            verdict = f"  (target <= {TARGET_SERIES} series, <= {TARGET_BYTES} B: "
            verdict += "met)" if ok else "MISSED)"
        print(
            f"  {name:34} {len(lines):>6}  {size:>6}   {len(failed) - len(lines):+d} series"
            f"   {families(lines)}{verdict}"
        )
    print(f"  once per scrape, whatever the number of checks: {other} B (HELP/TYPE, agent-wide)")


def measure_blackbox(url: str) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="synth-bench-blackbox-") as tmp,
        running_blackbox(Path(tmp)) as (_, exporter),
    ):
        response = httpx2.get(
            f"{exporter}/probe",
            params={"target": url, "module": "http_2xx"},
            timeout=10.0,
            trust_env=False,
        )
        response.raise_for_status()
    text = response.text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    sample_bytes = sum(len(line) + 1 for line in samples)
    print(
        f"  blackbox_exporter /probe (http_2xx)  {len(samples):>6}  {sample_bytes:>6}"
        f"   (whole answer with HELP/TYPE: {len(text.encode())} B, paid per target)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    began = time.monotonic()
    print("series_per_check: one scheduled one-step HTTP check, one env, one location")
    with running_nginx() as nginx:
        measure_synth(nginx.base_url, nginx.base_url + "/missing")
        measure_blackbox(nginx.base_url + "/ok")
    print(f"series_per_check: {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
