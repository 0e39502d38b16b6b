"""The pytest plugin as CI uses it (pytest in a subprocess, the demo shop in-test): items
named after checks, -k and -m selection, the synth failure report, load errors with
file:line, JUnit XML through pytest's own --junitxml."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from agent_harness import EXAMPLE_CHECKS, SHOP_PASSWORD, clean_env

from synth.demo import ShopThread

BROKEN = 'import synth\n\n@synth.check(service="shop")\nasync def broken(flow):\n    x = (\n'


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_checks_run_as_pytest_items(tmp_path: Path, shop: ShopThread) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    for source in EXAMPLE_CHECKS.iterdir():
        if source.suffix in (".py", ".yaml"):
            (checks / source.name).write_bytes(source.read_bytes())
    (checks / "broken.py").write_text(BROKEN, encoding="utf-8")
    env = {
        "services": {"shop": {"base_url": shop.base_url}},
        "secrets": {"shop_password": SHOP_PASSWORD},
    }
    (tmp_path / "synth.yaml").write_text(
        yaml.safe_dump({"checks": ["checks"], "environments": {"staging": env}}), encoding="utf-8"
    )
    shop.set_faults(status=503, path_prefix="/api/products")

    junit = tmp_path / "junit.xml"
    done = pytest_run(
        tmp_path, "--synth-env", "staging", "--strict-markers", "-m", "checkout or probe",
        "--junitxml", str(junit), "-rf",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    # The load error is always there (no marker deselects it), named by file and line.
    assert "FAILED synth::load error checks/broken.py:5" in out, out
    assert "checks/broken.py:5: syntax error" in out
    # checkout fails with the same report as `synth run`; browse (tag `browse`) is
    # deselected by -m; shop-port (tag `probe`) passes. The browser check (tag `checkout`)
    # runs in real Chromium: the product page cannot load its products, so the button it
    # clicks never appears; its screenshot is written beside the session and named.
    assert "FAILED synth::checkout" in out
    assert "FAIL list products" in out
    assert "expected status 200, got 503" in out
    assert "synth::browse" not in out
    assert "FAILED synth::shop-ui-checkout" in out, out
    assert "GET /api/products answered 503" in out, out
    shots = re.findall(r"artifact screenshot\.png: (\S+)", out)
    assert shots, out
    assert (tmp_path / shots[0]).read_bytes().startswith(b"\x89PNG")
    assert "3 failed, 1 passed, 1 deselected" in out, out
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {
        "load error checks/broken.py:5",
        "checkout",
        "shop-port",
        "shop-ui-checkout",
    }
    failure = cases["checkout"].find("failure")
    assert failure is not None
    assert "expected status 200, got 503" in (failure.text or "")
    assert cases["shop-port"].find("failure") is None

    shop.clear_faults()
    (checks / "broken.py").unlink()
    done = pytest_run(tmp_path, "--synth-env", "staging", "-k", "browse", "-rA")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED synth::browse" in done.stdout
    # -k matches markers too: the browser check's tag `browser` contains "browse".
    assert "PASSED synth::shop-ui-checkout" in done.stdout
    assert "2 passed, 2 deselected" in done.stdout

    # Without --synth-env the plugin adds nothing: no checks, no items.
    done = pytest_run(tmp_path)
    assert done.returncode == 5, done.stdout  # pytest's "no tests collected"
