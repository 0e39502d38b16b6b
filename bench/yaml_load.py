"""Loading one YAML file of N one-step checks (`checks: [...]`, default 5,000, as the agent
at scale loads them): wall time and memory, against PyYAML+libyaml reading the same file.

Each variant runs in a fresh Python process (so peak RSS is its own), after importing
what `synth agent` imports:

- synth              `parse_yaml_checks` (libyaml's parser, the `checks:` list loaded item
                     by item: read from the events, validated, compiled, dropped)
- synth-shard        `parse_yaml_checks` keeping half the checks by name: what each of two
                     run processes loads (`scheduler.processes: 2`)
- synth-pure-python  the same with PyYAML's pure-Python parser (when libyaml is missing)
- peer-libyaml       `yaml.load(text, yaml.CSafeLoader)`: the file's data with libyaml
                     alone, nothing validated or compiled — the floor for reading it

Prints per variant the median seconds (wall and CPU), the peak RSS increase over the
imports (VmHWM, the kernel's high-water mark) and the RSS kept afterwards, and the ratio
synth / peer-libyaml.
The issue's targets: the 5,000-check agent under 250 MB RSS, so loading must stay cheap.

    .venv/bin/python bench/yaml_load.py [--checks 5000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

VARIANTS = ("synth", "synth-shard", "synth-pure-python", "peer-libyaml")
TIMEOUT_S = 300.0  # one variant's process, at most

CHILD = r"""
import gc, json, sys, time
import synth.agent.app
import yaml
from synth.checks.yaml import parse_yaml_checks

def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {key: int(fields[key].split()[0]) for key in ("VmHWM", "VmRSS")}

variant, path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
before = status()
start, cpu = time.perf_counter(), time.process_time()
if variant == "peer-libyaml":
    loaded = yaml.load(text, yaml.CSafeLoader)["checks"]
    problems = []
elif variant == "synth-shard":  # what each of 2 run processes loads: its half
    from synth.agent.run_process import shard_of
    loaded, problems = parse_yaml_checks(text, path, keep=lambda n: shard_of(n, 2) == 0)
else:
    loaded, problems = parse_yaml_checks(text, path, libyaml=variant == "synth")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
gc.collect()
after = status()
print(json.dumps({
    "count": len(loaded), "problems": len(problems), "seconds": seconds, "cpu": cpu,
    "peak_kb": after["VmHWM"] - before["VmHWM"], "kept_kb": after["VmRSS"] - before["VmRSS"],
    "imports_kb": before["VmRSS"],
}))
"""


def write_checks(path: Path, count: int) -> None:
    checks = [
        {
            "name": f"c{index:05d}",
            "service": "web",
            "every": "10s",
            "timeout": "5s",
            "steps": [
                {"name": "get", "request": {"path": f"/ok?c={index}"}, "expect": {"status": 200}}
            ],
        }
        for index in range(count)
    ]
    with path.open("w", encoding="utf-8") as out:
        yaml.dump({"checks": checks}, out, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))


def measure(variant: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not yaml.__with_libyaml__:
        sys.exit("PyYAML here has no libyaml: synth and the peer would not be what they say")
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="synth-yaml-bench-") as tmp:
        path = Path(tmp) / "checks.yaml"
        write_checks(path, args.checks)
        size_kb = path.stat().st_size / 1024
        print(f"{args.checks} checks, {size_kb:.0f} KiB of YAML, {args.repeats} repeats")
        for repeat in range(args.repeats):
            order = VARIANTS[repeat % len(VARIANTS) :] + VARIANTS[: repeat % len(VARIANTS)]
            for variant in order:
                figures = measure(variant, path)
                expected = args.checks if variant != "synth-shard" else figures["count"]
                if figures["count"] != expected or figures["problems"]:
                    sys.exit(
                        f"{variant}: loaded {figures['count']}, {figures['problems']} problems"
                    )
                results[variant].append(figures)
                print(
                    f"  {repeat + 1}. {variant:<18} {figures['seconds']:6.2f} s"
                    f"  CPU {figures['cpu']:6.2f} s"
                    f"  peak +{figures['peak_kb'] / 1024:6.1f} MB"
                    f"  kept +{figures['kept_kb'] / 1024:6.1f} MB"
                )
    header = f"{'variant':<18} {'seconds':>8} {'CPU s':>8} {'peak MB':>8} {'kept MB':>8}"
    print(f"\n{header}  (median; over imports)")
    medians: dict[str, float] = {}
    for variant, runs in results.items():
        medians[variant] = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = statistics.median(r["peak_kb"] for r in runs) / 1024
        kept = statistics.median(r["kept_kb"] for r in runs) / 1024
        print(f"{variant:<18} {medians[variant]:8.2f} {cpu:8.2f} {peak:8.1f} {kept:8.1f}")
    imports = statistics.median(r["imports_kb"] for r in results["synth"]) / 1024
    print(f"imports (synth.agent.app): {imports:.1f} MB RSS")
    print(f"synth / peer-libyaml: {medians['synth'] / medians['peer-libyaml']:.2f}x time")


if __name__ == "__main__":
    main()
