"""The stages depend one way: walk src/winnow's imports with ``ast`` and fail on a cycle or a back import.

Every import counts, including ones inside functions and under TYPE_CHECKING: a lazy import up the
stage order is still a dependency up it. The package root (``winnow/__init__.py``) is the public face
and re-exports from every layer, so it is the one module left out.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "winnow"

# The stage order, lowest first. A module imports from its own unit or from a unit in an EARLIER
# layer; units side by side in one layer never import each other (stage 1 and stage 2 are peers).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "paths", "_lazy"),
    ("records", "jsonl", "extras"),
    ("models",),
    ("retrieve", "rerank"),
    ("stores", "signals"),
    ("pipeline",),
    ("answer",),
    ("evaluation",),
    ("training",),
    ("serve", "integrations"),
    ("scale",),
    ("cli",),
    ("__main__",),
]
LAYER_OF = {unit: depth for depth, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "winnow"


def imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every winnow name the source of ``module`` imports (a module, or a name inside one)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from winnow.x import y` may import the submodule winnow.x.y.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found.update(name for name in names if name == "winnow" or name.startswith("winnow."))
    return found


def resolve(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    paths = {module_name(path): path for path in SOURCE.rglob("*.py")}
    modules = set(paths)
    graph = {}
    for module, path in paths.items():
        names = imports_of(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
        targets = {resolve(name, modules) for name in names}
        graph[module] = frozenset(t for t in targets if t and t != module)
    return graph


def test_every_unit_has_a_place_in_the_stage_order():
    units = {unit_of(module) for module in import_graph()} - {"winnow"}
    assert units - set(LAYER_OF) == set(), "a new package needs a layer in LAYERS"


def test_no_import_points_back_up_the_stage_order():
    wrong = []
    for module, targets in import_graph().items():
        here = unit_of(module)
        if here == "winnow":
            continue
        for target in targets:
            there = unit_of(target)
            if there == here:
                continue
            if there == "winnow" or LAYER_OF[there] >= LAYER_OF[here]:
                wrong.append(f"{module} -> {target}")
    assert wrong == [], "imports against the stage order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = {
        m: {t for t in targets if t != "winnow"} for m, targets in import_graph().items() if m != "winnow"
    }
    # A package's __init__ re-exporting its own submodules is not a cycle between concepts.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    state: dict[str, int] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from winnow.rerank.reranker import Reranker\n", "winnow.rerank.reranker"),
        ("from . import reranker\n", "winnow.rerank.reranker"),
        ("def f():\n    import winnow.pipeline\n", "winnow.pipeline"),
        ("if TYPE_CHECKING:\n    from ..pipeline import Pipeline\n", "winnow.pipeline"),
    ],
)
def test_the_walker_sees_every_import_form(source, expected):
    # The guard is only as good as its parser: an import form it misses would let a back import in.
    modules = set(import_graph())
    found = {resolve(name, modules) for name in imports_of(source, "winnow.rerank", is_package=True)}
    assert expected in found
