"""The shape of synth's modules. No import cycle: the import graph, read from the source
(imports under `if TYPE_CHECKING:` excluded, imports inside functions included), has no
strongly connected component larger than one module — a cycle means two modules that
cannot be understood, tested or changed apart. And no module over MAX_LINES lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import synth

ROOT = Path(synth.__file__).resolve().parent
MAX_LINES = 600


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, package: str) -> Iterator[str]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child, package))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imports(node, package)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {
            target for target in _imports(tree, package) if target in modules and target != name
        }
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def test_the_graph_reader_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, strongly_connected(graph))) == [["a", "b", "c"], ["d"]]


def test_no_import_cycle_among_synth_modules() -> None:
    graph = import_graph()
    assert "synth.runner" in graph
    assert "synth.checks.flow" in graph["synth.runner"]
    cycles = [sorted(c) for c in strongly_connected(graph) if len(c) > 1]
    assert cycles == [], cycles


def test_no_module_is_over_the_line_limit() -> None:
    sizes = {
        str(path.relative_to(ROOT.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in ROOT.rglob("*.py")
    }
    assert len(sizes) > 50
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def metric_families() -> set[str]:
    """The attributes of a `Metrics` that are metric families."""
    from prometheus_client.metrics import MetricWrapperBase

    from synth.outputs.lean_histogram import LeanHistogram
    from synth.outputs.lean_scalars import LeanScalars
    from synth.outputs.metrics import Metrics

    families = (MetricWrapperBase, LeanHistogram, LeanScalars)
    metrics = Metrics()
    return {name for name, value in vars(metrics).items() if isinstance(value, families)}


def test_metric_families_change_only_through_named_metrics_methods() -> None:
    """Callers say what happened (`metrics.store_error("open")`), never which family and
    labels it updates: only synth.outputs.metrics knows that (and which are lean)."""
    families = metric_families()
    assert {"store_errors", "in_flight", "run_duration", "failures"} <= families
    reached: list[str] = []
    for path in ROOT.rglob("*.py"):
        if path.name == "metrics.py" and path.parent.name == "outputs":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and node.attr in families):
                continue
            owner = ast.unparse(node.value)
            if owner.split(".")[-1] in ("metrics", "_metrics"):
                reached.append(f"{module_name(path)}:{node.lineno}: {owner}.{node.attr}")
    assert reached == []
