"""The import graph has no cycles: between clbench's packages, and between its modules.

Every module of ``clbench/`` and of the built-in method and scenario folders (``strategies/``,
``scenarios/``, installed as ``clbench.strategies`` / ``clbench.scenarios``) is parsed with `ast`;
each ``import`` is a dependency wherever it stands (module level or inside a function: a lazy import
still ties the two modules together), except under ``if TYPE_CHECKING:``, which never runs. Only
the named module counts, not the packages above it that Python initialises on the way.

The packages are also layered (`LAYERS`), bottom to top: errors/registry -> scenario, data,
models, metrics -> strategy -> engine -> results -> reporting, plotting, export, sweeps -> api ->
cli; a package imports only its own layer or lower ones. The built-in ``strategies`` and
``scenarios`` sit on top of the engine-level APIs; clbench's core reaches them only through the
registry (by name, at run time), never by an import.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import REPO

# module name prefix -> folder holding it
SOURCES = {
    "clbench": REPO / "clbench",
    "clbench.strategies": REPO / "strategies",
    "clbench.scenarios": REPO / "scenarios",
}
# the installed-in-namespace folders are packages of their own, not part of the core
BUILTIN_PACKAGES = ("clbench.strategies", "clbench.scenarios")
# The intended layering, bottom first: a package imports packages of its own layer or below
# (never one of its own layer in a cycle: the cycle tests). Top-level modules count as packages.
LAYERS: tuple[frozenset[str], ...] = tuple(
    frozenset(layer.split())
    for layer in (
        "errors later_keys",
        "registry arguments",
        "scenario data models metrics",
        "config",
        "strategy",
        "engine",
        "strategies scenarios",  # the built-in methods, on the engine-level APIs
        "results",
        "reporting plotting export sweeps",
        "api",  # the Python API, over all of the above
        "cli",  # a thin layer over the API
        "__main__ clbench",
    )
)


def _module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for prefix, folder in SOURCES.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            if prefix == "clbench" and parts and parts[0] in ("strategies", "scenarios"):
                continue  # not expected to exist; the installed names come from their own folders
            modules[name] = path
    return modules


MODULES = _module_files()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of ``tree`` except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the ``else:`` branch runs
                if isinstance(child, ast.Import | ast.ImportFrom):
                    yield child
                yield from _imports(child)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _known(name: str) -> str | None:
    """The longest known module that ``name`` (a dotted module path) starts with."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {t for alias in node.names if (t := _known(alias.name)) is not None}
    if node.level:  # relative: resolved against the importing module's package
        base = module.split(".") if _is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    targets = set()
    for alias in node.names:
        # ``from package import submodule`` depends on the submodule itself
        submodule = f"{source}.{alias.name}"
        target = submodule if submodule in MODULES else _known(source)
        if target is not None:
            targets.add(target)
    return targets


def module_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps: set[str] = set()
        for node in _imports(tree):
            deps |= _targets(module, node)
        deps.discard(module)
        graph[module] = deps
    return graph


def package_of(module: str) -> str:
    """``clbench.engine.job`` -> ``engine``; ``clbench.strategies.fpf.plugin`` -> ``strategies``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, deps in module_graph().items():
        source = package_of(module)
        graph.setdefault(source, set())
        graph[source] |= {package_of(d) for d in deps} - {source}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Cycles as paths ``a -> b -> ... -> a``: per strongly connected component (a set of
    modules or packages that all reach each other), a shortest cycle through each member that no
    cycle listed before passes through, so every member of a tangle is named."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)

    cycles = []
    for component in components:
        covered: set[str] = set()
        for start in sorted(component):  # a shortest cycle through each member not yet shown
            if start not in covered:
                cycle = _shortest_cycle(graph, component, start)
                covered.update(cycle)
                cycles.append(cycle)
    return cycles


def _shortest_cycle(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """The shortest way from ``start`` back to itself inside ``component`` (breadth-first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in previous:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt not in previous:
                    previous[nxt] = node
                    following.append(nxt)
        frontier = following
    path = [start]
    node = previous[start]
    while node != start:
        path.append(node)
        node = previous[node]
    path.append(start)
    return path[::-1]


def _describe(cycles: list[list[str]]) -> str:
    return "\n".join(" -> ".join(cycle) for cycle in cycles)


def _imports_behind(source: str, target: str) -> list[str]:
    """The module imports that make package ``source`` depend on package ``target``."""
    return sorted(
        f"{module} -> {dep}"
        for module, deps in module_graph().items()
        if package_of(module) == source
        for dep in deps
        if package_of(dep) == target
    )


def _describe_package_cycles(cycles: list[list[str]]) -> str:
    lines = []
    for cycle in cycles:
        lines.append(" -> ".join(cycle))
        for source, target in itertools.pairwise(cycle):
            lines.extend(f"    {edge}" for edge in _imports_behind(source, target))
    return "\n".join(lines)


def test_the_graph_sees_the_sources() -> None:
    # a wrong root or folder would make the cycle tests pass on an empty graph
    graph = module_graph()
    assert "clbench.engine.runner" in graph
    assert "clbench.strategies.er" in graph and "clbench.scenarios.joint" in graph
    assert "clbench.api.run" in graph["clbench.cli.app"]  # imported inside `_cmd_run`
    assert {"cli", "engine", "strategy", "strategies", "scenarios"} <= set(package_graph())


def test_finds_cycles_and_reports_their_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e2"}, "e2": {"e"}}
    cycles = find_cycles(graph)
    assert sorted(_describe(cycles).splitlines()) == ["a -> b -> c -> a", "e -> e2 -> e"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_imports_count_and_type_checking_imports_do_not() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from clbench.engine import job\n"
        "else:\n"
        "    import clbench.errors\n"
        "def f():\n"
        "    from clbench.results import reader\n"
        "    from clbench.engine.records import RecordLog\n"
        "    from clbench import metrics\n"
    )
    targets = set()
    for node in _imports(tree):
        targets |= _targets("clbench.cli.app", node)
    # ``from package import module`` is that module; ``from module import name`` is the module
    assert targets == {
        "clbench.errors",
        "clbench.results.reader",
        "clbench.engine.records",
        "clbench.metrics",
    }


def test_relative_imports_resolve_against_the_importing_module() -> None:
    tree = ast.parse(
        "from .records import RecordLog\nfrom . import runner\nfrom .. import errors\n"
    )
    targets = set()
    for node in _imports(tree):
        targets |= _targets("clbench.engine.job", node)
    assert targets == {"clbench.engine.records", "clbench.engine.runner", "clbench.errors"}
    package = ast.parse("from . import records\n")
    assert _targets("clbench.engine", package.body[0]) == {"clbench.engine.records"}


def test_packages_depend_only_on_their_layer_or_below() -> None:
    layer_of = {package: i for i, layer in enumerate(LAYERS) for package in layer}
    graph = package_graph()
    unplaced = sorted(set(graph) - set(layer_of))
    assert not unplaced, (
        f"packages not placed in LAYERS (tests/project/test_architecture.py): {unplaced}"
    )
    upward = [
        f"{source} -> {target}:\n" + "\n".join(f"    {e}" for e in _imports_behind(source, target))
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of[target] > layer_of[source]
    ]
    assert not upward, "imports against the layering (LAYERS, bottom first):\n" + "\n".join(upward)


def test_no_import_cycle_between_packages() -> None:
    cycles = find_cycles(package_graph())
    assert not cycles, (
        f"import cycles between clbench's packages:\n{_describe_package_cycles(cycles)}"
    )


def test_no_import_cycle_between_modules() -> None:
    cycles = find_cycles(module_graph())
    assert not cycles, f"import cycles between modules:\n{_describe(cycles)}"


def test_core_reaches_builtin_methods_only_through_the_registry() -> None:
    offending = {
        f"{module} -> {dep}"
        for module, deps in module_graph().items()
        if not module.startswith(BUILTIN_PACKAGES)
        for dep in deps
        if dep.startswith(BUILTIN_PACKAGES)
    }
    assert not offending, "core modules importing built-in methods:\n" + "\n".join(
        sorted(offending)
    )
