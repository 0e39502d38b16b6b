"""Every third-party module the tests import is declared in pyproject (runtime dependencies
or the `dev` extra), so `pip install -e .[dev]` on a fresh clone can run the suite."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {_normal(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> set[str]:
    local = {p.stem for p in (REPO / "tests").rglob("*.py")} | {"synth", "bench", "checks", "tests"}
    found: set[str] = set()
    for path in (REPO / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in local and m not in sys.stdlib_module_names}


def test_every_module_the_tests_import_is_declared() -> None:
    owners = packages_distributions()
    declared = _declared()
    missing = {
        module: owners.get(module, ["?"])
        for module in _imported_top_levels()
        if not {_normal(d) for d in owners.get(module, [])} & declared
    }
    assert not missing, f"imported by tests but not declared in pyproject: {missing}"
