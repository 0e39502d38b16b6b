"""Prometheus for tests: promtool, PromQL name checks and a private Prometheus server,
all from the Debian package `prometheus` (`make test` installs it).

`PrometheusServer.start(config, workdir)` runs /usr/bin/prometheus on a free 127.0.0.1
port with its TSDB in `workdir`, waits for /-/ready, and is stopped by its own PID.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, get_args

import httpx2
import yaml
from prometheus_client.metrics_core import Metric

from synth.metrics_settings import MetricDetail, MetricsSettings
from synth.outputs.metrics import Metrics

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy" / "prometheus" / "synth-rules.yaml"
RULE_TESTS = sorted((REPO / "deploy" / "prometheus" / "tests").glob("*.yaml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"
DASHBOARD = REPO / "deploy" / "grafana" / "synth-dashboard.json"

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMTOOL_TIMEOUT_S = 60.0
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# Series Prometheus itself makes, not the agent.
PROMETHEUS_SERIES = frozenset({"up"})
EVERY_DETAIL: tuple[MetricDetail, ...] = get_args(MetricDetail)
"""Every opt-in family of `metrics.detail`."""

_LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*\w+\)$")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created", ""),
    "gauge": ("",),
    "info": ("_info",),
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NAME = re.compile(r"\b[a-zA-Z_][a-zA-Z0-9_]*(?::[a-zA-Z0-9_:]+)?\b")


def exported_series_names(detail: Iterable[MetricDetail] = EVERY_DETAIL) -> set[str]:
    """Every sample name synth's Metrics can expose (counter `_total`, histogram
    `_bucket`, ...) with this `metrics.detail`, read from the families the module
    defines. By default the opt-in families too: a rule or panel may use them if it says
    it needs them."""
    names: set[str] = set()
    settings = MetricsSettings(detail=tuple(detail))
    families: list[Metric] = list(Metrics(settings=settings).registry.collect())
    for family in families:
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


def recording_rule_names(rules_file: Path = RULES) -> set[str]:
    groups = yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects: `synth_*` identifiers, recording rules (with a
    colon) and `up`, outside string literals."""
    bare = _STRING.sub('""', expr)
    return {
        name
        for name in _NAME.findall(bare)
        if name.startswith("synth_") or ":" in name or name == "up"
    }


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target, annotation and variable query."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"]
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["query"]["query"])
            assert match, f"variable {variable['name']}: not label_values(selector, label)"
            yield f"variable {variable['name']}", match["selector"]


def as_promql(expr: str) -> str:
    """Grafana's variables replaced by values of the right kind: intervals by a duration,
    dashboard variables (only used in regex matchers) by `.*`."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "1m", expr)
    return re.sub(r"\$\{?\w+\}?", ".*", expr)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, *args],
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrometheusServer:
    """A Prometheus process of the test's own, queried over its HTTP API."""

    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log
        self.client = httpx2.Client(base_url=url, timeout=10.0, trust_env=False)

    @classmethod
    def start(cls, config: Path, workdir: Path) -> PrometheusServer:
        port = free_port()
        log = workdir / "prometheus.log"
        command = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        server = cls(process, f"http://127.0.0.1:{port}", log)
        try:
            server._await_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _await_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited {self.process.returncode}:\n{self.logs()}")
            try:
                if self.client.get("/-/ready", timeout=2.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"prometheus not ready after {START_TIMEOUT_S:g}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def api(self, path: str, **params: Any) -> Any:
        """`data` of a successful /api/v1 call; AssertionError with the error otherwise."""
        response = self.client.get(f"/api/v1/{path}", params=params or None)
        body = response.json()
        ok = response.status_code == 200 and body["status"] == "success"
        assert ok, f"{path} {params}: {response.status_code} {body}"
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector of `expr` now: [{"metric": labels, "value": [t, "v"]}]."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def stop(self) -> None:
        """SIGTERM this PID, SIGKILL it (only it) if still alive after STOP_TIMEOUT_S."""
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
