"""The import graph of ``miragelab``: no cycles, and no library module depends on the CLI.

The graph is read from the source with :mod:`ast`, so it holds every
``import`` and ``from ... import`` statement of a module: those at the top,
and those inside functions or ``if TYPE_CHECKING`` blocks, which run later
(or never) but tie the modules together all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "miragelab"


def module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of ``package`` under ``src``, by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> Iterator[str]:
    """The dotted names one import statement of module ``name`` may load."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    if node.level:  # relative: from the module's package, one level up per extra dot
        here = name.split(".") if is_package else name.split(".")[:-1]
        base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    for alias in node.names:
        yield f"{base}.{alias.name}"  # ``from pkg import mod`` loads the module pkg.mod
        yield base


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """For each module, the modules of the package it imports anywhere in its file.

    ``from a import b`` is an edge to ``a.b`` when that is a module, else to ``a``;
    ``import a.b`` is an edge to ``a.b``. Parent packages loaded on the way are not
    edges: Python has them in ``sys.modules`` before their submodules run.
    """
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            candidates = list(_imported(node, name, is_package))
            if isinstance(node, ast.ImportFrom):
                # per alias: the submodule if there is one, else the module named in ``from``
                pairs = zip(candidates[::2], candidates[1::2], strict=True)
                candidates = [sub if sub in modules else base for sub, base in pairs]
            edges.update(c for c in candidates if c in modules and c != name)
        graph[name] = edges
    return graph


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module: each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(root: str) -> None:  # Tarjan's algorithm, iterative (deep graphs are fine)
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``a -> b -> ... -> a``) per tangle of :func:`tangles`."""
    return [_cycle_in(graph, component) for component in tangles(graph)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module, by breadth-first search."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & component):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in the component {sorted(component)}")


def test_the_walker_sees_imports_inside_functions_and_relative_ones(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import b\n")
    (pkg / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from ..a import f\nfrom pkg import c\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    graph = import_edges(module_files(tmp_path, "pkg"))
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.b"},
        "pkg.c": {"pkg.a"},
        "pkg.sub": {"pkg.sub.b"},
        "pkg.sub.b": {"pkg.a", "pkg.c"},
    }
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]


def test_the_package_has_no_import_cycle():
    graph = import_edges(module_files())
    assert len(graph) > 50 and any(graph.values())  # the walker found the package
    found = tangles(graph)
    report = [
        f"{' -> '.join(_cycle_in(graph, t))} (modules in this tangle: {', '.join(sorted(t))})"
        for t in found
    ]
    assert not found, "import cycles:\n" + "\n".join(report)


def test_no_library_module_imports_the_command_line():
    graph = import_edges(module_files())
    cli = f"{PACKAGE}.cli"
    users = sorted(
        name
        for name, edges in graph.items()
        if not (name == cli or name.startswith(f"{cli}.") or name == f"{PACKAGE}.__main__")
        and any(e == cli or e.startswith(f"{cli}.") for e in edges)
    )
    assert not users, f"library modules importing {cli}: {users}"
