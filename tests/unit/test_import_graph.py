"""The layering of forwarder/, read from the source with ast: no import cycles, and config loads no type table.

Every import counts, also those inside functions: a lazy import hides a cycle
from the interpreter, not from the reader. A "package" is a sub-package of
forwarder (config, inputs, pipeline …) or a top-level module (cli, runner …).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "forwarder"
# The contracts config/ may import from the packages whose types it looks up in the plugin tables.
CONTRACTS = {"forwarder.inputs.base", "forwarder.outputs.base", "forwarder.modules.base"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, name: str) -> set[str]:
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the forwarder modules it imports (a name is resolved to the longest module it names)."""
    paths = {module_name(path): path for path in SOURCE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for imported in imported_names(path, name):
            while imported and imported not in paths:
                imported = imported.rpartition(".")[0]
            if imported and imported not in (name, "forwarder"):
                graph[name].add(imported)
    return graph


def package_of(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph):
        if root in index:
            continue
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
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for module, imported in graph.items():
        packages[package_of(module)].update(package_of(i) for i in imported if package_of(i) != package_of(module))
    return dict(packages)


def test_the_reader_sees_imports_of_every_kind():
    graph = import_graph()
    assert "forwarder.plugins" in graph["forwarder.config.inputs"]
    assert "forwarder.schema.section" in graph["forwarder.pipeline.processors"]
    assert "forwarder.runner" in graph["forwarder.cli"], "imports inside functions count"


def test_cycle_finder_finds_a_file_cycle_and_a_package_cycle():
    files = {"forwarder.a.x": {"forwarder.b.y"}, "forwarder.b.y": {"forwarder.a.x"}, "forwarder.c": set()}
    assert cycles(files) == [["forwarder.a.x", "forwarder.b.y"]]
    assert cycles(package_graph({"forwarder.a.x": {"forwarder.b.y"}, "forwarder.b.z": {"forwarder.a.w"},
                                 "forwarder.b.y": set(), "forwarder.a.w": set()})) == [["a", "b"]]


def test_no_import_cycle_between_files():
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_packages():
    assert cycles(package_graph(import_graph())) == []


def test_inputs_and_modules_do_not_import_each_other():
    graph = import_graph()
    crossing = sorted(f"{module} imports {imported}" for module, imports in graph.items() for imported in imports
                      if {package_of(module), package_of(imported)} == {"inputs", "modules"})
    assert crossing == []


def test_config_imports_no_input_output_or_module_table():
    """config/ finds types through forwarder.plugins; from the type packages it may import only their contracts."""
    graph = import_graph()
    loaded = sorted(f"{module} imports {imported}" for module, imports in graph.items()
                    if package_of(module) == "config" for imported in imports
                    if package_of(imported) in ("inputs", "outputs", "modules") and imported not in CONTRACTS)
    assert loaded == []
