#!/usr/bin/env bash
# Run every benchmark (what `make bench` calls). Installs nginx from Debian if missing.
# Figures are printed, never asserted: see bench/README.md for what they mean.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
# e.g. AGENT_SCALE_SECONDS=20 for a short smoke run of agent_scale.py (default 60 s).
AGENT_SCALE_ARGS=(--seconds "${AGENT_SCALE_SECONDS:-60}")
# The same for cluster_scale.py (default 60 s per phase).
CLUSTER_SCALE_ARGS=(--seconds "${CLUSTER_SCALE_SECONDS:-60}")

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "nginx not found: installing it from Debian's packages"
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx >/dev/null
fi
bash scripts/apt-deps.sh tcpdump  # timing_fidelity.py captures the wire with it
bash scripts/apt-deps.sh postgresql  # cluster_scale.py's store (its own server, not the system's)

echo "### bench/runner_cpu.py"
"$PYTHON" bench/runner_cpu.py
echo
echo "### bench/timing_fidelity.py"
"$PYTHON" bench/timing_fidelity.py
echo
echo "### bench/telemetry_overhead.py"
"$PYTHON" bench/telemetry_overhead.py
echo
echo "### bench/yaml_load.py"
"$PYTHON" bench/yaml_load.py
echo
echo "### bench/agent_scale.py"
"$PYTHON" bench/agent_scale.py "${AGENT_SCALE_ARGS[@]}"
echo
echo "### bench/cluster_scale.py"
"$PYTHON" bench/cluster_scale.py "${CLUSTER_SCALE_ARGS[@]}"
echo
echo "### bench/browser_cost.py"
# Browser checks (Debian's chromium, Playwright): e.g. BROWSER_COST_ARGS=--quick for a smoke run.
read -r -a BROWSER_COST_ARGS <<<"${BROWSER_COST_ARGS:-}"
"$PYTHON" bench/browser_cost.py "${BROWSER_COST_ARGS[@]}"
