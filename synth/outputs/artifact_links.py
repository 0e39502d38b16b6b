"""Where a run's artifacts can be opened: files beside a `synth run` or pytest session, or
the agent's API (`/v1/runs/{id}/artifacts/{name}`, absolute under `server.public_url`).
Every report and page names them through one of these."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from synth.model import RunResult

log = logging.getLogger("synth.artifacts")

ArtifactLink = Callable[[str, str], str]
"""(run id, artifact name) → where to open it."""


def api_link(public_url: str | None) -> ArtifactLink:
    base = (public_url or "").rstrip("/")
    return lambda run_id, name: f"{base}/v1/runs/{run_id}/artifacts/{name}"


def file_link(root: Path) -> ArtifactLink:
    return lambda run_id, name: str(root / run_id / name)


def write_artifact_files(result: RunResult, root: Path) -> None:
    """Write the run's artifacts under `root/<run id>/`; a failure to write is logged, never
    raised (the report still shows the run)."""
    if not result.artifacts:
        return
    folder = root / result.run_id
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for artifact in result.artifacts:
            (folder / artifact.name).write_bytes(artifact.data)
    except OSError as error:
        log.warning("artifacts not written", extra={"path": str(folder), "error": str(error)})


def artifact_lines(result: RunResult, link: ArtifactLink | None) -> list[str]:
    """`screenshot.png: <where>` per artifact of the run."""
    if link is None:
        return []
    return [f"{a.name}: {link(result.run_id, a.name)}" for a in result.artifacts]
