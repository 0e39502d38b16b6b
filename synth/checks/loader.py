"""Find and load checks: Python files declaring `@synth.check` functions, and YAML files.

Every problem — a syntax error, an exception at import, an invalid declaration, a bad YAML
key, a duplicate name — is a `LoadProblem` naming the file and line. A broken file never
hides the others: everything that can load, loads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

from synth.checks.api import CheckDefinitionError, collector
from synth.checks.problems import LoadProblem
from synth.checks.yaml.reader import load_yaml_checks
from synth.model import CheckSpec, SourceLocation

PYTHON_SUFFIXES = frozenset({".py"})
YAML_SUFFIXES = frozenset({".yaml", ".yml"})
_MAX_DEPTH = 32
# Loading swaps process-wide state (sys.path, sys.modules, the collector): one at a time.
_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedChecks:
    """The checks that loaded, in discovery order, and every problem found on the way."""

    checks: tuple[CheckSpec, ...]
    problems: tuple[LoadProblem, ...]


def load_checks(
    paths: Sequence[str | Path],
    *,
    yaml_only: bool = False,
    keep: Callable[[str], bool] | None = None,
) -> LoadedChecks:
    """Load checks from files and directories.

    Directories are walked recursively in sorted order for `*.py` and `*.yaml`/`*.yml`,
    skipping names that start with `_` or `.` and `conftest.py`. A Python file can import a
    helper module that sits beside it. The first check of a name wins; later ones with the
    same name are problems. `yaml_only` skips Python files (their code is not run); `keep`
    compiles only the YAML checks whose name it accepts (a run process's share).
    """
    problems: list[LoadProblem] = []
    files: list[Path] = []
    seen: set[Path] = set()
    for given in paths:
        found, missing = _discover(Path(given))
        problems.extend(missing)
        for file in found:
            real = file.resolve()
            if real not in seen:
                seen.add(real)
                files.append(file)
    shown = {str(file.resolve()): str(file) for file in files}
    checks: list[CheckSpec] = []
    by_name: dict[str, CheckSpec] = {}
    with _LOCK:
        for file in files:
            if file.suffix in PYTHON_SUFFIXES:
                if yaml_only:
                    continue
                loaded, found_problems = _load_python(file)
            else:
                loaded, found_problems = load_yaml_checks(file, keep=keep)
            problems.extend(found_problems)
            for spec in loaded:
                first = by_name.get(spec.name)
                if first is None:
                    by_name[spec.name] = spec
                    checks.append(spec)
                elif first.source != spec.source:  # the same definition imported twice is fine
                    problems.append(_duplicate(spec, first, file, shown))
    return LoadedChecks(checks=tuple(checks), problems=tuple(problems))


# -- discovery --------------------------------------------------------------------------------


def _discover(path: Path) -> tuple[list[Path], list[LoadProblem]]:
    if path.is_file():
        if path.suffix in PYTHON_SUFFIXES | YAML_SUFFIXES:
            return [path], []
        return [], [LoadProblem(str(path), None, "not a check file (expected .py, .yaml or .yml)")]
    if path.is_dir():
        found: list[Path] = []
        _walk(path, found, set(), 0)
        return found, []
    return [], [LoadProblem(str(path), None, "no such file or directory")]


def _walk(directory: Path, found: list[Path], visited: set[Path], depth: int) -> None:
    real = directory.resolve()
    if real in visited or depth > _MAX_DEPTH:  # symlink loops, runaway nesting
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(("_", ".")):
            continue
        path = directory / entry.name
        if entry.is_dir():
            _walk(path, found, visited, depth + 1)
        elif entry.is_file() and _is_check_file(entry.name):
            found.append(path)


def _is_check_file(name: str) -> bool:
    suffix = os.path.splitext(name)[1]
    if suffix in YAML_SUFFIXES:
        return True
    return suffix in PYTHON_SUFFIXES and name != "conftest.py"


# -- Python files -----------------------------------------------------------------------------


def _load_python(path: Path) -> tuple[list[CheckSpec], list[LoadProblem]]:
    """Import one file with the collector active; the checks it declares, or why it broke."""
    shown = str(path)
    module_name = _module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        return [], [LoadProblem(shown, None, "cannot be imported as a Python module")]
    origin = spec.origin or str(path.resolve())
    module = importlib.util.module_from_spec(spec)
    declared: list[CheckSpec] = []
    previous = collector.active
    collector.active = declared
    try:
        with _beside(path.parent, module_name):
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
    except SyntaxError as error:
        problem = _syntax_problem(error, shown, origin)
    except CheckDefinitionError as error:
        problem = _definition_problem(error, shown, origin)
    except (Exception, SystemExit) as error:  # check code may raise anything at import
        problem = _import_problem(error, shown, origin)
    else:
        return declared, []
    finally:
        collector.active = previous
    # A half-imported module is not trustworthy: drop what it declared.
    sys.modules.pop(module_name, None)
    return [], [problem]


def _module_name(path: Path) -> str:
    """A name unique to the file, so two `checks.py` in different folders never clash."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", path.stem)
    return f"synth_checks_{digest}_{stem}"


@contextmanager
def _beside(directory: Path, module_name: str) -> Iterator[None]:
    """Make the file's own folder importable while it loads, as if run as a script.

    Helper modules imported from that folder are dropped from `sys.modules` afterwards (the
    check module keeps its references), so a `helpers.py` beside one check never stands in
    for a different `helpers.py` beside another.
    """
    folder = directory.resolve()
    local = _local_module_names(folder)
    hidden = {
        name: sys.modules.pop(name)
        for name in local
        if name in sys.modules and not _inside(sys.modules[name], folder)
    }
    before = set(sys.modules)
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()  # files may have changed since the last load (reload)
    try:
        yield
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
        for name in set(sys.modules) - before:
            top = name.partition(".")[0]
            ours = name != module_name and top in local and top not in before
            if ours and _inside(sys.modules[name], folder):
                del sys.modules[name]
        for name, module in hidden.items():
            sys.modules.setdefault(name, module)


def _local_module_names(folder: Path) -> set[str]:
    names: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return names
    for entry in entries:
        stem, suffix = os.path.splitext(entry.name)
        if entry.is_dir() and entry.name.isidentifier():
            names.add(entry.name)
        elif suffix == ".py" and stem.isidentifier():
            names.add(stem)
    return names


def _inside(module: ModuleType, folder: Path) -> bool:
    locations = [getattr(module, "__file__", None), *getattr(module, "__path__", [])]
    for location in locations:
        if location and Path(location).resolve().is_relative_to(folder):
            return True
    return False


# -- describing problems ----------------------------------------------------------------------


def _syntax_problem(error: SyntaxError, shown: str, origin: str) -> LoadProblem:
    reason = error.msg or "invalid syntax"
    if error.filename and _same_file(error.filename, origin):
        return LoadProblem(shown, error.lineno, f"syntax error: {reason}")
    # The syntax error is in a helper this file imports: blame the import, name the helper.
    line = _line_in_file(error.__traceback__, origin)
    return LoadProblem(
        shown, line, f"syntax error in {error.filename}:{error.lineno}: {reason} (imported here)"
    )


def _definition_problem(error: CheckDefinitionError, shown: str, origin: str) -> LoadProblem:
    source = error.source
    if source is not None and _same_file(source.path, origin):
        return LoadProblem(shown, source.line, error.reason)
    if source is not None:
        return LoadProblem(source.path, source.line, error.reason)
    return LoadProblem(shown, _line_in_file(error.__traceback__, origin), error.reason)


def _import_problem(error: BaseException, shown: str, origin: str) -> LoadProblem:
    line = _line_in_file(error.__traceback__, origin)
    text = str(error)
    message = f"{type(error).__name__} at import" + (f": {text}" if text else "")
    innermost = _innermost(error.__traceback__)
    if innermost is not None and not _same_file(innermost.tb_frame.f_code.co_filename, origin):
        message += f" (raised at {innermost.tb_frame.f_code.co_filename}:{innermost.tb_lineno})"
    return LoadProblem(shown, line, message)


def _line_in_file(tb: TracebackType | None, origin: str) -> int | None:
    """The line of the innermost traceback entry that is in the file being loaded."""
    line = None
    while tb is not None:
        if _same_file(tb.tb_frame.f_code.co_filename, origin):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _innermost(tb: TracebackType | None) -> TracebackType | None:
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _duplicate(spec: CheckSpec, first: CheckSpec, file: Path, shown: dict[str, str]) -> LoadProblem:
    here = spec.source
    return LoadProblem(
        _display_path(here.path, shown) if here else str(file),
        here.line if here else None,
        f"duplicate check name {spec.name!r}: already defined at "
        f"{_display(first.source, shown)}; this one is ignored",
    )


def _display(source: SourceLocation | None, shown: dict[str, str]) -> str:
    if source is None:
        return "an unknown location"
    return f"{_display_path(source.path, shown)}:{source.line}"


def _display_path(path: str, shown: dict[str, str]) -> str:
    """The path as the user wrote it, for a file this load walked."""
    return shown.get(path) or shown.get(os.path.realpath(path), path)
