"""`browser:` in synth.yaml — where Chromium is, how many run at once, the bounds of a
run, and which artifacts a browser step keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from synth.units import parse_duration, parse_size

Seconds = Annotated[float, BeforeValidator(parse_duration)]
Bytes = Annotated[int, BeforeValidator(parse_size)]


class Viewport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    width: int = Field(default=1280, ge=200, le=4096)
    height: int = Field(default=720, ge=200, le=4096)


class BrowserSettings(BaseModel):
    """How browser steps run. Defaults suit a 2-CPU agent running API checks beside them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    executable: Path = Path("/usr/bin/chromium")
    """The Chromium binary Playwright drives; synth never downloads one."""
    concurrency: int = Field(default=2, ge=1, le=64)
    """Browser workers in the agent: each owns one Chromium process and runs one browser
    run at a time; API checks never wait for them."""
    isolation: Literal["process", "thread"] = "process"
    """Where the agent runs scheduled browser runs: `process`, `concurrency` browser
    processes (each a Python interpreter with its Chromium, ~45 MB besides it), so the
    Playwright client shares no interpreter with the agent's loop; `thread`, worker
    threads of the agent (less memory; API runs start later beside them). Deploy and
    ad-hoc runs of browser checks always run on the agent's browser worker threads."""
    navigation_timeout: Seconds = Field(default=15.0, gt=0, le=600)
    action_timeout: Seconds = Field(default=5.0, gt=0, le=600)
    """How long a click, fill or expectation waits for its element before it fails."""
    max_heap: Bytes = Field(default=512 * 1024 * 1024, ge=64 * 1024 * 1024)
    """The JavaScript heap a page may use (V8's --max-old-space-size): a page that grows
    past it crashes, and the run fails as `script_error` naming it."""
    artifacts: Literal["on_failure", "always", "never"] = "on_failure"
    """When a browser step keeps its screenshot, Playwright trace and console log."""
    trace_snapshots: bool = False
    """Record DOM snapshots in the Playwright trace (the trace viewer's page view of each
    action). They are taken during the run, kept or not: ~20 ms more per navigation and
    ~75 ms of CPU per run of a 3-step flow. Off, the trace still has every action, request,
    console message and error, and the failure screenshot shows the page."""
    max_artifact_bytes: Bytes = Field(default=5 * 1024 * 1024, ge=1024)
    """The cap of one artifact; a bigger one is left out and the run says so."""
    artifacts_dir: Path = Path("synth-artifacts")
    """Where `synth run` and the pytest plugin write artifacts (the agent stores them)."""
    trace_requests: bool = True
    """Send the step's `traceparent` on the page's requests to the environment's services.
    They are routed through Playwright to add it (only there: a header on every origin
    makes cross-origin fetches fail their CORS preflight), which turns Chromium's HTTP
    cache off and costs ~0.2 CPU-s per run of a 3-step flow: off, the steps still have
    their spans, the target's server spans are not joined to them."""
    fail_on_console_errors: bool = False
    fail_on_failed_requests: bool = False
    """Fail the step when a same-origin request of the page fails or answers 5xx."""
    viewport: Viewport = Viewport()
    launch_timeout: Seconds = Field(default=30.0, gt=0, le=600)
    nice: int = Field(default=10, ge=0, le=19)
    """Scheduling priority of the agent's browser workers and the browsers they start
    (Linux nice): higher yields the CPU to the agent's own loop and API checks."""
    sandbox: bool = False
    """Chromium's own sandbox: needs unprivileged user namespaces (a pod with an
    Unconfined or custom seccomp profile) and a non-root user."""
