"""`synth agent` as a real subprocess, for integration tests.

Each test writes its own `synth.yaml` and check files into its tmp dir, starts the agent on
an ephemeral 127.0.0.1 port (`start_agent(config)`), and talks to it with httpx2. The
agent's stdout and stderr go to files beside the config (agent-N.stdout/.stderr). At
teardown the agent gets SIGTERM by its own PID, then SIGKILL (that PID only) if it is still
alive after 15 s; the teardown fails when the agent did not exit 0, so a crash or a hang
never goes unnoticed.

Use the fixtures by importing them into the test module:

    from agent_harness import shop_fixture, start_agent_fixture  # noqa: F401

    def test_x(tmp_path, shop, start_agent): ...
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx2
import pytest
import yaml
from postgres import PostgresServer
from prometheus_client.parser import text_string_to_metric_families

from synth.demo import ShopThread, run_in_thread

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CHECKS = REPO / "checks"
# The console script of the venv running the tests (.venv/bin/synth).
SYNTH = str(Path(sys.executable).with_name("synth"))

ENV = "staging"
SERVICE = "shop"
TOKEN = "agent-test-token"
HMAC_SECRET = "agent-test-hmac-secret"
SHOP_PASSWORD = "demo-password"

PORT_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT = httpx2.Timeout(10.0)
_API_LINE = re.compile(r"API on http://(?P<host>[^\s:]+):(?P<port>\d+)")

T = TypeVar("T")


# -- waiting ----------------------------------------------------------------------------------


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Call `probe` until it returns something truthy (returned) or `timeout` passes
    (AssertionError naming `what` and the last value seen)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# -- files ------------------------------------------------------------------------------------


def write_config(
    directory: Path,
    shop_url: str,
    *,
    checks: str = "checks",
    scheduler: Mapping[str, Any] | None = None,
    deploys: Mapping[str, Any] | None = None,
    server: Mapping[str, Any] | None = None,
    store: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write `directory/synth.yaml`: environment `staging` with service `shop` at
    `shop_url` and its password secret, the API on port 0 with TOKEN and HMAC_SECRET,
    the store at URL `store` (default: SQLite in `directory`), scheduler jitter 0.
    Mappings given override sections; `extra` adds whole sections."""
    config = {
        "checks": [checks],
        "environments": {
            ENV: {
                "services": {SERVICE: {"base_url": shop_url}},
                "secrets": {"shop_password": SHOP_PASSWORD},
            }
        },
        "server": {"host": "127.0.0.1", "port": 0, "tokens": [TOKEN], "hmac_secret": HMAC_SECRET}
        | dict(server or {}),
        "store": {"url": store or store_url(directory)},
        "scheduler": {"jitter": 0} | dict(scheduler or {}),
        "deploys": dict(deploys or {}),
    } | dict(extra or {})
    path = directory / "synth.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def store_url(directory: Path) -> str:
    """The SQLite store URL `write_config` uses for `directory`."""
    return f"sqlite+aiosqlite:///{directory}/synth.db"


def write_check(directory: Path, filename: str, source: str) -> Path:
    """Write a check file (dedented) under `directory/checks/`."""
    path = directory / "checks" / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


BROWSER_EXAMPLES = frozenset({"shop_ui_checkout.yaml"})
"""The example checks that drive Chromium: copied only by the tests about browsers."""


def copy_example_checks(directory: Path, *, browser: bool = False) -> Path:
    """Copy the repository's example checks (checkout, browse, shop-port; with `browser`
    also shop-ui-checkout) into `directory/checks/`."""
    target = directory / "checks"
    target.mkdir(parents=True, exist_ok=True)
    for source in sorted(EXAMPLE_CHECKS.iterdir()):
        if source.name in BROWSER_EXAMPLES and not browser:
            continue
        if source.suffix in (".py", ".yaml", ".yml") and not source.name.startswith("_"):
            (target / source.name).write_bytes(source.read_bytes())
    return target


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any SYNTH_* variable (they would override the
    test's config or credentials) or OTEL_* variable (telemetry is the test's choice), plus
    `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNTH_", "OTEL_"))}
    return env | extra


# -- credentials ------------------------------------------------------------------------------


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signature(
    body: bytes,
    *,
    method: str = "POST",
    path: str = "/v1/deploys",
    secret: str = HMAC_SECRET,
    timestamp: int | None = None,
) -> str:
    """`X-Synth-Signature` for `METHOD path` with `body`, computed here from the documented
    format (not with synth's own helper):
    t=<unix>,v2=<hex hmac_sha256(secret, "<t>.<METHOD>.<path>." + body)>."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.{method}.{path}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v2={digest}"


def signed(body: bytes, **kwargs: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Synth-Signature": signature(body, **kwargs)}


# -- the agent process ------------------------------------------------------------------------


class AgentProcess:
    """One `synth agent` subprocess and an HTTP client for its API."""

    def __init__(self, process: subprocess.Popen[bytes], output: Path) -> None:
        self.process = process
        self.stdout_path = output.with_suffix(".stdout")
        self.stderr_path = output.with_suffix(".stderr")
        self.url = ""
        self.client: httpx2.Client | None = None

    @classmethod
    def start(cls, config: Path, *args: str, env: Mapping[str, str] | None = None) -> AgentProcess:
        """Start the agent with `config` (cwd: the config's folder), `env` added to its
        environment, and wait until its API port is printed and /readyz answers 200.
        Output goes to agent-N.stdout/.stderr there, N counting the agents started in that
        folder (restarts keep earlier logs)."""
        workdir = config.parent
        output = next(
            workdir / f"agent-{n}"
            for n in range(1, 1000)
            if not (workdir / f"agent-{n}.stdout").exists()
        )
        command = [SYNTH, "agent", "--config", str(config), "--log-format", "json", *args]
        with (
            output.with_suffix(".stdout").open("wb") as out,
            output.with_suffix(".stderr").open("wb") as err,
        ):
            process = subprocess.Popen(
                command, cwd=workdir, stdout=out, stderr=err, env=clean_env(**(env or {}))
            )
        agent = cls(process, output)
        try:
            agent._await_port()
            agent.client = httpx2.Client(base_url=agent.url, timeout=HTTP_TIMEOUT, trust_env=False)
            agent._await_ready()
        except BaseException:
            agent.stop()
            raise
        return agent

    @property
    def pid(self) -> int:
        return self.process.pid

    def _await_port(self) -> None:
        def port_line() -> str | None:
            self._fail_if_exited("before printing its API address")
            first = self.stdout_path.read_text(encoding="utf-8").partition("\n")
            return first[0] if first[1] else None

        line = wait_for(port_line, timeout=PORT_TIMEOUT_S, what="the agent's API line")
        match = _API_LINE.search(line)
        assert match is not None, f"unexpected first stdout line: {line!r}"
        assert match["host"] == "127.0.0.1", line
        self.url = f"http://{match['host']}:{match['port']}"

    def _await_ready(self) -> None:
        def ready() -> bool:
            self._fail_if_exited("before it was ready")
            try:
                return self.http.get("/readyz", timeout=2.0).status_code == 200
            except httpx2.TransportError:
                return False

        wait_for(ready, timeout=READY_TIMEOUT_S, what="/readyz 200", interval=0.1)

    def _fail_if_exited(self, when: str) -> None:
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"the agent exited ({code}) {when}:\n{self.stderr()}")

    @property
    def http(self) -> httpx2.Client:
        assert self.client is not None, "the agent has no API yet"
        return self.client

    # -- API helpers ----------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> httpx2.Response:
        return self.http.get(path, params=params or None)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
    ) -> httpx2.Response:
        """POST `body` as JSON, with the bearer token unless `authenticated` is False."""
        content = json.dumps(body).encode() if body is not None else b""
        sent = {"Content-Type": "application/json"}
        if authenticated:
            sent |= bearer()
        sent |= dict(headers or {})
        return self.http.post(path, content=content, headers=sent)

    def runs(self, **params: Any) -> list[dict[str, Any]]:
        """`GET /v1/runs` with filters; the run summaries, newest first."""
        response = self.get("/v1/runs", **params)
        assert response.status_code == 200, response.text
        runs: list[dict[str, Any]] = response.json()["runs"]
        return runs

    def check_names(self) -> set[str]:
        response = self.get("/v1/checks")
        assert response.status_code == 200, response.text
        return {c["name"] for c in response.json()["checks"]}

    def deploy(self, event: Mapping[str, Any]) -> httpx2.Response:
        return self.post("/v1/deploys", event)

    def wait_deploy(self, deploy_id: str, wait: float = 20.0) -> dict[str, Any]:
        """The deploy after long-polling up to `wait` seconds for it to finish."""
        response = self.http.get(
            f"/v1/deploys/{deploy_id}", params={"wait": wait}, timeout=wait + 10
        )
        assert response.status_code == 200, response.text
        record: dict[str, Any] = response.json()
        return record

    def metric(self, name: str, **labels: str) -> float | None:
        """The value of sample `name` with these labels on /metrics, or None if absent."""
        response = self.get("/metrics")
        assert response.status_code == 200, response.text
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return None

    # -- output ---------------------------------------------------------------------------

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def logs(self) -> list[dict[str, Any]]:
        """The agent's JSON log events so far (non-JSON lines are skipped)."""
        events = []
        for line in self.stderr().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def log_messages(self) -> list[str]:
        return [str(event.get("msg")) for event in self.logs()]

    # -- process --------------------------------------------------------------------------

    def send_signal(self, sig: signal.Signals) -> None:
        """Signal the agent's own PID (never anything found by name)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code, or None if still running after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> int:
        """SIGKILL this PID (a crash: no graceful stop) and reap it."""
        self.process.kill()
        code = self.process.wait(timeout=5)
        if self.client is not None:
            self.client.close()
        return code

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, bool]:
        """SIGTERM, wait up to `timeout`, then SIGKILL this PID only: (exit code, killed)."""
        killed = False
        self.send_signal(signal.SIGTERM)
        code = self.wait_exit(timeout)
        if code is None:
            killed = True
            self.process.kill()
            code = self.process.wait(timeout=5)
        if self.client is not None:
            self.client.close()
        return code, killed


class StartAgent(Protocol):
    def __call__(
        self, config: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> AgentProcess: ...


@pytest.fixture(name="start_agent")
def start_agent_fixture() -> Iterator[StartAgent]:
    """`start_agent(config)` → a ready AgentProcess, stopped (SIGTERM, then SIGKILL after
    15 s) after the test. The test errors at teardown if an agent did not exit 0 on
    SIGTERM or logged an exception (a bug in synth, whatever the test asserted)."""
    agents: list[AgentProcess] = []

    def start(config: Path, *args: str, env: Mapping[str, str] | None = None) -> AgentProcess:
        agent = AgentProcess.start(config, *args, env=env)
        agents.append(agent)
        return agent

    yield start
    problems = []
    for agent in agents:
        already = agent.process.poll()
        code, killed = agent.stop()
        if killed:
            problems.append(f"agent {agent.pid} ignored SIGTERM for {STOP_TIMEOUT_S:g}s")
        elif already is None and code != 0:
            problems.append(f"agent {agent.pid} exited {code} on SIGTERM:\n{agent.stderr()}")
        crashes = [str(e) for e in agent.logs() if "exception" in e]
        if not crashes and "Traceback (most recent call last)" in agent.stderr():
            crashes = [agent.stderr()]
        if crashes:
            problems.append(f"agent {agent.pid} logged an exception: {crashes[0]}")
    assert not problems, "\n".join(problems)


@pytest.fixture(name="agent_store", params=["sqlite", "postgresql"])
def agent_store_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for one test, once per backend: SQLite in tmp_path, and a fresh
    database on the session's PostgreSQL server (import `postgres_server` too)."""
    if request.param == "sqlite":
        return store_url(tmp_path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()


@pytest.fixture(name="shop")
def shop_fixture() -> Iterator[ShopThread]:
    """The demo shop on 127.0.0.1 at an ephemeral port, in a thread, for one test."""
    with run_in_thread() as running:
        yield running
