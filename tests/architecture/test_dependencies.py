"""The design's dependencies, read from the code: pages and APIs → answering → services → models, one way.

Every import in the project's own modules counts, deferred ones (inside a function) included: a deferred import
still makes the two modules depend on each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("chatsite", "accounts", "conversations", "personal", "knowledge", "teams")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts or "tests" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import names (a package's `__init__` when the name is a package), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for each import statement of `module`."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                base = ".".join(parent[: len(parent) - node.level + 1] + ([base] if base else []))
            names = [alias.name for alias in node.names]
            # `from package import module` imports that module.
            submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES]
            others = [name for name in names if f"{base}.{name}" not in MODULES]
            if others or not submodules:
                found.append((base, others))
            found += [(submodule, []) for submodule in submodules]
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for imported, _ in _imports(module):
            target = _resolve(imported)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph[stack.pop()]:
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_services_never_reach_the_answering_package():
    graph = _graph()
    for module in MODULES:
        if _in(module, "conversations.services"):
            reached = sorted(m for m in _reachable(graph, module) if _in(m, "conversations.answering"))
            assert not reached, f"{module} reaches {reached}"


def test_the_answering_package_never_reaches_pages_or_apis():
    graph = _graph()
    for module in MODULES:
        if _in(module, "conversations.answering"):
            reached = sorted(
                m for m in _reachable(graph, module)
                if _in(m, "conversations.api") or _in(m, "conversations.views") or _in(m, "chatsite.api")
            )
            assert not reached, f"{module} reaches {reached}"


def test_models_and_the_model_layer_depend_on_nothing_above_them():
    graph = _graph()
    above = ("conversations.services", "conversations.answering", "conversations.api", "conversations.views")
    for module in ("conversations.models", "conversations.llm", "conversations.selectors"):
        reached = sorted(m for m in _reachable(graph, module) if any(_in(m, layer) for layer in above))
        assert not reached, f"{module} reaches {reached}"


def test_no_import_cycles_through_the_turn_path():
    """No module on the turn path (answering, services, the model layer, the API's streaming) is part of an import
    cycle: each reaches nothing that reaches it back."""
    graph = _graph()
    turn_path = [
        m for m in MODULES
        if any(_in(m, p) for p in ("conversations.answering", "conversations.services", "conversations.llm",
                                    "conversations.api.streaming", "conversations.selectors"))
    ]
    assert "conversations.answering.run" in turn_path
    for module in turn_path:
        cycle = sorted(m for m in _reachable(graph, module) if module in _reachable(graph, m) and m != module)
        # A package's __init__ re-exports its modules and they may import siblings through it; any other
        # module reaching back is a cycle.
        cycle = [m for m in cycle if not (m == module.rpartition(".")[0] or module == m.rpartition(".")[0])]
        assert not cycle, f"{module} is in an import cycle with {cycle}"


def test_no_private_name_is_imported_from_another_module():
    offences = []
    for module in MODULES:
        for imported, names in _imports(module):
            if _resolve(imported) is None:
                continue
            offences += [f"{module}: from {imported} import {name}" for name in names
                         if name.startswith("_") and not name.startswith("__")]
    assert not offences, offences


def test_the_reader_finds_what_it_checks():
    """The checks above are only as good as the import reader: it must see the imports that exist."""
    graph = _graph()
    assert "conversations.services" in graph["conversations.answering"]
    assert "conversations.answering" in graph["conversations.api.views"]
    assert "conversations.answering.engine" in graph["conversations.answering"]
    assert "conversations.models" in graph["conversations.services.turns"]
