"""The package's layers run one way: no two modules of brainfm import each other, directly
or around a circle, counting imports inside functions too (they hide circles, they do not
break them).

The graph is read from the source with ``ast`` (nothing is imported), one node per module,
one edge per ``import``/``from ... import`` of another brainfm module wherever it sits.
"""
from __future__ import annotations

import ast
from pathlib import Path

import brainfm

PACKAGE = Path(brainfm.__file__).parent

#: Circles tolerated for now: none.
ALLOWED: list[set[str]] = []


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["brainfm", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imported(module: str, path: Path, known) -> set[str]:
    """The brainfm modules ``module`` imports, anywhere in its file."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(n for n in names if n in known and n != module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imported(m, p, modules) for m, p in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    # brainfm/__init__.py imports brainfm.checkpoint only inside from_pretrained
    assert "brainfm.checkpoint" in graph["brainfm"]
    assert "brainfm.data.contract" in graph["brainfm.models.contract"]


def test_a_circle_is_found_when_there_is_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_module_imports_back_up_a_circle():
    found = [c for c in circles(import_graph()) if c not in ALLOWED]
    assert not found, "import circles: " + "; ".join(" <-> ".join(sorted(c)) for c in found)


def test_models_never_import_lightning_or_the_layers_above():
    """data/ <- models/ <- tasks/ <- hub/ <- bench/, embed/, entry points."""
    above = {"brainfm.data": ("brainfm.models", "brainfm.tasks", "brainfm.hub", "brainfm.bench",
                              "brainfm.embed", "brainfm.checkpoint", "brainfm.pretrain_run",
                              "brainfm.cli", "brainfm.validate", "brainfm.configuration"),
             "brainfm.models": ("brainfm.tasks", "brainfm.hub", "brainfm.bench",
                                "brainfm.embed", "brainfm.checkpoint", "brainfm.pretrain_run",
                                "brainfm.cli", "brainfm.validate"),
             "brainfm.tasks": ("brainfm.hub", "brainfm.bench", "brainfm.embed",
                               "brainfm.checkpoint", "brainfm.pretrain_run", "brainfm.cli",
                               "brainfm.validate")}
    wrong = [f"{m} -> {t}" for m, targets in import_graph().items() for t in targets
             for layer, banned in above.items()
             if (m == layer or m.startswith(layer + ".")) and t.startswith(banned)]
    assert not wrong, wrong
    models = [p for m, p in _modules().items() if m.startswith("brainfm.models")]
    assert not [p for p in models if "lightning" in p.read_text()]
