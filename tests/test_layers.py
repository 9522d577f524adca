"""The package imports in one direction: each layer only from the layers below it.

The layer table lives here, in one place. The test walks every module's imports with
``ast`` and fails on an import from a higher layer, on a cycle between modules, and on
an import inside a function that closes a cycle (a lazy import dodging one); lazy imports
stay for what loads heavy optional dependencies (pyarrow, pandas, boto3, Dask).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "comply_lab"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "_time", "_twins", "_progress", "_tasks", "_gcpause", "_forksafe")),
    ("model", ("model",)),
    ("crypto", ("crypto",)),
    ("storage", ("storage", "ddl")),
    ("keys", ("keys",)),
    ("integrity", ("integrity",)),
    ("retention", ("retention",)),
    ("audit", ("audit", "sample")),
    ("lab", ("lab", "integrations", "demo")),
    ("cli", ("cli",)),
]
"""Bottom to top: a module may import from its own layer and the ones before it."""

_RANK = {top: rank for rank, (_, tops) in enumerate(LAYERS) for top in tops}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _rank(module: str) -> int | None:
    """Return the layer of ``module`` (None: the package itself, which re-exports all)."""
    parts = module.split(".")
    return None if len(parts) == 1 else _RANK[parts[1]]


def _resolve(node: ast.ImportFrom, alias: ast.alias) -> str:
    """Return the module an import brings in (``from pkg import submodule`` included)."""
    base = node.module or ""
    candidate = f"{base}.{alias.name}"
    return candidate if candidate in MODULES else base


def _imports(path: Path) -> list[tuple[str, bool, bool]]:
    """Return (module, inside a function, only for type checking) for each import."""
    tree = ast.parse(path.read_text())
    found: list[tuple[str, bool, bool]] = []

    def visit(node: ast.AST, lazy: bool, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner_lazy = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            inner_typing = typing_only or (
                isinstance(child, ast.If) and ast.unparse(child.test) == "TYPE_CHECKING"
            )
            if isinstance(child, ast.ImportFrom) and (child.module or "").startswith("comply_lab"):
                found.extend((_resolve(child, a), lazy, typing_only) for a in child.names)
            elif isinstance(child, ast.Import):
                found.extend((a.name, lazy, typing_only) for a in child.names if a.name in MODULES)
            visit(child, inner_lazy, inner_typing)

    visit(tree, False, False)
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_every_package_is_in_the_layer_table():
    tops = {name.split(".")[1] for name in MODULES if "." in name}
    assert tops <= set(_RANK), f"add to LAYERS: {sorted(tops - set(_RANK))}"


def test_no_import_from_a_higher_layer():
    upward = [
        f"{module} -> {target}"
        for module, imports in GRAPH.items()
        for target, _, _ in imports
        if (low := _rank(module)) is not None and (high := _rank(target)) is not None and high > low
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(sorted(set(upward)))


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of the graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := walk(node)):
            return found
    return None


def _edges(*, lazy: bool) -> dict[str, set[str]]:
    """Return the module imports that run (not type-only), at import or also in functions.

    A package's ``__init__`` re-exports its modules, so edges into a package are left
    out: what matters is which modules need which.
    """
    return {
        module: {
            target
            for target, inside, typing_only in imports
            if not typing_only
            and (lazy or not inside)
            and target != module
            and target in MODULES
            and MODULES[target].name != "__init__.py"
        }
        for module, imports in GRAPH.items()
    }


def test_no_cycle_between_modules():
    cycle = _cycle(_edges(lazy=False))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_lazy_import_dodges_a_cycle():
    cycle = _cycle(_edges(lazy=True))
    assert cycle is None, "a lazy import closes this cycle: " + " -> ".join(cycle or [])
