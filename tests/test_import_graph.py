"""The package's layering, from its source: every import statement in bench/**/*.py, at module level and
inside functions, parsed with ast (nothing is imported; imports under ``if TYPE_CHECKING:`` never run and
are left out). Edges from a module to its own ancestor
packages are left out (Python runs a package's __init__ before any of its modules anyway); ``from pkg
import name`` counts as an import of ``pkg.name`` when that is a module, else of ``pkg``.

"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "bench"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> list[tuple[str, str]]:
    """(imported module, imported name or '') of every import statement in a module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block)
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:  # ``if TYPE_CHECKING:`` imports never run
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            out += [(base, a.name) for a in node.names]
    return out


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name | ast.Attribute) and \
        ast.unparse(node.test).endswith("TYPE_CHECKING")


@cache
def graph() -> dict[str, frozenset[str]]:
    """module -> the bench modules and top-level external packages it imports."""
    known = modules()
    edges = {}
    for name, path in known.items():
        targets = set()
        for module, item in _imports(name, path):
            target = f"{module}.{item}" if f"{module}.{item}" in known else module
            if target.startswith("bench") and target not in known:
                raise AssertionError(f"{path}: imports {target}, which is not a module of the package")
            if not target.startswith("bench"):
                target = target.split(".")[0]
            if not name.startswith(target + ".") and target != name:  # own ancestor packages: implicit
                targets.add(target)
        edges[name] = frozenset(targets)
    return edges


def reachable(start: str) -> set[str]:
    """Everything ``start`` imports, directly or through other bench modules."""
    seen, todo = set(), [start]
    while todo:
        for target in graph().get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def imports_of(prefix: str) -> set[str]:
    """Everything any module of ``prefix`` imports, directly or transitively (its own modules excluded)."""
    found = set().union(*(reachable(m) for m in modules() if _under(m, prefix)))
    return {m for m in found if not _under(m, prefix)}


def cycles() -> list[frozenset[str]]:
    """Strongly connected groups of more than one bench module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph()[v] & graph().keys():
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(frozenset(group))

    for v in sorted(graph()):
        if v not in index:
            visit(v)
    return out


def test_the_parser_sees_module_and_function_level_imports():
    """The graph is not empty by accident: known imports at both levels are found."""
    assert "bench.contract" in graph()["bench.results"]  # module level
    assert "bench.history" in graph()["bench.cli"]  # inside cmd_history
    assert "torch" in graph()["bench.runner"]
    assert "bench.report.tables" in graph()["bench.report.plots"]


def test_no_import_cycles():
    assert cycles() == []


RULES = [  # (importer package, what it must never import, directly or transitively)
    ("bench.models", "bench.metrics"),
    ("bench.metrics", "bench.runner"),
    ("bench.metrics", "bench.distributed"),
    ("bench.train", "bench.runner"),
    ("bench.suite", "bench.compare"),
    ("bench.data", "bench.suite"),
    ("bench.compare", "bench.report"),
    ("bench.history", "bench.report"),
    ("bench.results", "bench.report"),
    ("bench.report", "bench.metrics"),
    ("bench.report", "bench.runner"),
    ("bench.report", "torch"),
    ("bench.compare", "torch"),
    ("bench.history", "torch"),
    ("bench.contract", "torch"),
]


@pytest.mark.parametrize(("importer", "forbidden"), [pytest.param(*rule, id=f"{rule[0]}-x->{rule[1]}") for rule in RULES])
def test_layering(importer, forbidden):
    assert not {m for m in imports_of(importer) if _under(m, forbidden)}, \
        f"{importer} imports {forbidden}: {sorted(m for m in imports_of(importer) if _under(m, forbidden))}"


def _private_imports() -> list[str]:
    """``from bench.x import _name`` across modules (a private name is not an interface)."""
    out = []
    for name, path in modules().items():
        for module, item in _imports(name, path):
            if module.startswith("bench") and item.startswith("_") and not _under(name, module) \
                    and f"{module}.{item}" not in modules():
                out.append(f"{name} imports {module}.{item}")
    return out


def test_no_private_names_imported_across_modules():
    assert _private_imports() == []


# The runner reaches the metrics only through their public interface: the plug-in registry and the case
# context (bench.metrics.base, with NonFiniteOutputError) and the counting conventions it stores in run.json.
RUNNER_METRIC_INTERFACE = {"bench.metrics", "bench.metrics.base", "bench.metrics.conventions"}


@pytest.mark.parametrize("importer", ["bench.runner", "bench.estimate"])
def test_the_runner_and_estimate_import_no_metric_internals(importer):
    """The estimate asks each metric for its declared cost; what a cost needs of the machine (a RAPL counter,
    say) the plug-in finds itself."""
    direct = {m for m in graph()[importer] if _under(m, "bench.metrics")}
    assert direct <= RUNNER_METRIC_INTERFACE, f"{importer} imports {sorted(direct - RUNNER_METRIC_INTERFACE)}"
