"""The container recipe without a Docker engine: the Dockerfile lints clean (hadolint from
PyPI), keeps its promises (pinned slim base, multi-stage, non-root, read-only-root friendly,
`synth agent` entrypoint, healthcheck), and the wheel it installs builds with the package
and the `synth` console script."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
BIN = Path(sys.executable).parent
PINNED_BASE = re.compile(
    r"^python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}$"
)  # version tag down to the patch release, and the digest


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int


def parse(text: str) -> tuple[dict[str, str], list[Instruction]]:
    """Global ARG defaults and the instructions (continuations joined, comments dropped),
    each with the index of its build stage (-1 before the first FROM)."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    args: dict[str, str] = {}
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        if keyword == "ARG" and stage == -1 and "=" in rest:
            name, _, value = rest.partition("=")
            args[name.strip()] = value.strip()
        out.append(Instruction(keyword, rest.strip(), stage))
    return args, out


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Instruction]]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def final(instructions: list[Instruction]) -> list[Instruction]:
    """What the image a plain build makes runs: the last stage, after the stages it is
    built FROM (`FROM base AS default` starts with all of `base`), root first; only the
    root's FROM is kept."""
    froms = {i.stage: i.args.split() for i in instructions if i.keyword == "FROM"}
    by_name = {words[-1]: stage for stage, words in froms.items() if len(words) == 3}
    chain = [max(i.stage for i in instructions)]
    while froms[chain[-1]][0] in by_name:
        chain.append(by_name[froms[chain[-1]][0]])
    order = list(reversed(chain))
    return [
        i
        for stage in order
        for i in instructions
        if i.stage == stage and (i.keyword != "FROM" or stage == order[0])
    ]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the runtime stage, got {found}"
    return found[0]


def test_hadolint_passes() -> None:
    hadolint = BIN / "hadolint"
    result = subprocess.run(
        [str(hadolint), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout or "[]") == []


def test_hadolint_catches_a_bad_recipe(tmp_path: Path) -> None:
    # the linter really runs: an unpinned base and apt without cleanup are reported
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [str(BIN / "hadolint"), "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3007", "DL3008"} <= codes


def test_multi_stage_on_a_pinned_slim_base(dockerfile) -> None:
    args, instructions = dockerfile
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2, froms
    assert froms[0].endswith(" AS builder")
    base = final(instructions)[0].args  # the runtime's root FROM
    resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base.split()[0])
    assert PINNED_BASE.match(resolved), resolved
    assert any(i.keyword == "COPY" and "--from=builder" in i.args for i in final(instructions))


def test_runs_as_non_root_with_state_on_a_volume(dockerfile) -> None:
    _, instructions = dockerfile
    runtime = final(instructions)
    user = only(runtime, "USER").args
    uid, _, gid = user.partition(":")
    assert uid == "10001", user  # numeric, so Kubernetes runAsNonRoot can verify it
    assert gid == "10001", user
    assert json.loads(only(runtime, "VOLUME").args) == ["/var/lib/synth"]
    assert only(runtime, "WORKDIR").args == "/var/lib/synth"
    env = " ".join(i.args for i in runtime if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/var/lib/synth" in env
    assert "TMPDIR=/tmp" in env
    # USER comes after every RUN of the runtime stage: nothing runs as root at run time
    keywords = [i.keyword for i in runtime]
    assert max(n for n, k in enumerate(keywords) if k == "RUN") < keywords.index("USER")


def test_entrypoint_cmd_and_healthcheck(dockerfile) -> None:
    _, instructions = dockerfile
    runtime = final(instructions)
    assert json.loads(only(runtime, "ENTRYPOINT").args) == ["synth"]
    cmd = json.loads(only(runtime, "CMD").args)
    assert cmd[:3] == ["agent", "--config", "/etc/synth/synth.yaml"]
    # every flag the CMD passes exists on the real CLI
    help_text = subprocess.run(
        [str(BIN / "synth"), "agent", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for flag in (a for a in cmd if a.startswith("--")):
        assert flag in help_text, flag
    health = only(runtime, "HEALTHCHECK").args
    assert "CMD" in health
    assert "python" in health  # slim has no curl
    assert "/healthz" in health
    assert only(runtime, "EXPOSE").args == "8484"


def test_dockerignore_keeps_the_context_to_what_is_copied() -> None:
    rules = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert rules[0] == "*" or "*" in rules
    assert {"!pyproject.toml", "!README.md", "!synth/"} <= set(rules)


def test_the_wheel_builds_with_the_package_and_console_script(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = list(tmp_path.glob("synth-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = wheel.read(entry_points).decode()
    for module in ("synth/__init__.py", "synth/cli.py", "synth/agent/app.py", "synth/py.typed"):
        assert module in names, module
    assert "synth/agent/adapters/github.py" in names
    assert not any(n.startswith("tests/") for n in names)
    assert re.search(r"^\[console_scripts\]\s*\nsynth = synth\.cli:main$", scripts, re.M), scripts


def test_agent_runs_as_the_image_runs_it(tmp_path: Path) -> None:
    """The runtime stage's environment without Docker: working directory = the state
    volume, HOME and TMPDIR on writable mounts, the config read-only, the default store.
    The SQLite store must land on the volume and the agent must get ready."""
    import os
    import signal

    import httpx2
    from agent_harness import EXAMPLE_CHECKS, clean_env, wait_for

    _, instructions = parse(DOCKERFILE.read_text(encoding="utf-8"))
    runtime = final(instructions)
    volume = tmp_path / "var-lib-synth"
    volume.mkdir()
    etc = tmp_path / "etc-synth"
    etc.mkdir()
    (etc / "synth.yaml").write_text(
        f"checks: [{EXAMPLE_CHECKS}]\nscheduler: {{enabled: false}}\n", encoding="utf-8"
    )
    etc.chmod(0o555)
    image_env = {}
    for instruction in (i for i in runtime if i.keyword == "ENV"):
        for pair in instruction.args.split():
            name, _, value = pair.partition("=")
            image_env[name] = value
    env = clean_env(
        PYTHONDONTWRITEBYTECODE=image_env["PYTHONDONTWRITEBYTECODE"],
        HOME=str(volume),  # image: HOME=/var/lib/synth
        TMPDIR=str(tmp_path),
    )
    out = tmp_path / "agent.stdout"
    cmd = json.loads(only(runtime, "CMD").args)
    args = [a if a != "/etc/synth/synth.yaml" else str(etc / "synth.yaml") for a in cmd]
    args[args.index("--host") + 1] = "127.0.0.1"
    with out.open("wb") as stdout, (tmp_path / "agent.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [str(BIN / "synth"), *args, "--port", "0"],
            cwd=volume,  # WORKDIR
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        line = wait_for(
            lambda: out.read_text().partition("\n")[0] if "\n" in out.read_text() else None,
            timeout=20,
            what="the API line",
        )
        url = line.split("API on ")[1].split()[0]

        def ready() -> bool:
            try:
                return httpx2.get(f"{url}/readyz", timeout=2, trust_env=False).status_code == 200
            except httpx2.TransportError:
                return False

        wait_for(ready, timeout=20, what="/readyz 200", interval=0.1)
        assert (volume / "synth.db").exists()
        assert sorted(os.listdir(etc)) == ["synth.yaml"]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()  # this test's own PID only
            code = process.wait(timeout=5)
        etc.chmod(0o755)
    assert code == 0, (tmp_path / "agent.stderr").read_text()
