"""The layers of the package hold: no module imports a higher layer, and there is no import cycle.

The import graph is read from the source (every ``import`` statement, also those inside functions), not from what
Python happens to have imported: a lazy import that only hides a cycle counts as the cycle it hides. See
``docs/explanation/architecture.md`` for the picture and the rule of each layer.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import aiida_mlip_trainer

PACKAGE = "aiida_mlip_trainer"
ROOT = pathlib.Path(aiida_mlip_trainer.__file__).parent

# From the bottom up: a module may import its own layer and those below it, never one above.
LAYERS = ("physics", "formats", "data", "calculations", "parsers", "protocols", "workflows", "face")

# Module (or package: everything under it) -> layer. The longest matching prefix wins.
LAYER_OF = {
    "aiida_mlip_trainer": "face",  # the package's own __init__ (the version only)
    "aiida_mlip_trainer.physics": "physics",
    "aiida_mlip_trainer.names": "physics",
    "aiida_mlip_trainer.data": "data",
    "aiida_mlip_trainer.formats": "formats",
    "aiida_mlip_trainer.calculations": "calculations",
    "aiida_mlip_trainer.parsers": "parsers",
    "aiida_mlip_trainer.workflows.protocols": "protocols",
    "aiida_mlip_trainer.workflows": "workflows",
    "aiida_mlip_trainer.cli": "face",
    "aiida_mlip_trainer.export": "face",
    "aiida_mlip_trainer.monitoring": "face",
    "aiida_mlip_trainer.launch": "face",
    # Scripts that jobs run on their computer (no AiiDA): physics and file handling only.
    "aiida_mlip_trainer.tools": "physics",
    # The oracle contract: which AiiDA process labels a structure, and the adapters of their outputs.
    "aiida_mlip_trainer.oracles": "workflows",
}
# Layers that must run without AiiDA (plain numpy / ASE / pyace), so they can be used and tested on their own.
WITHOUT_AIIDA = ("physics", "formats")


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    matches = [prefix for prefix in LAYER_OF if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise KeyError(f"{module} belongs to no layer: add it to LAYER_OF in tests/test_architecture.py")
    return LAYER_OF[max(matches, key=len)]


def read_imports(root: pathlib.Path = ROOT) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``(edges, externals)``: per module of the package, the modules of the package it imports (with the
    ``__init__`` of every package an import passes through, which Python runs too, except the importer's own
    parents), and the top-level names of the other packages it imports."""
    modules = {module_name(path, root): path for path in root.rglob("*.py")}
    edges: dict[str, set[str]] = {module: set() for module in modules}
    externals: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                if not (target == PACKAGE or target.startswith(PACKAGE + ".")):
                    externals[module].add(target.split(".")[0])
                    continue
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                while target.startswith(PACKAGE):
                    own_parent = modules[target].name == "__init__.py" and module.startswith(target + ".")
                    if target != module and not own_parent:
                        edges[module].add(target)
                    target = target.rpartition(".")[0]
    return edges, externals


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer, as ``'a (layer) imports b (higher layer)'``."""
    found = []
    for module, targets in sorted(edges.items()):
        rank = LAYERS.index(layer_of(module))
        for target in sorted(targets):
            if LAYERS.index(layer_of(target)) > rank:
                found.append(f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})")
    return found


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return cycles


@pytest.fixture(scope="module")
def graph():
    return read_imports()


def test_every_module_has_a_layer(graph):
    edges, _ = graph
    for module in edges:
        layer_of(module)  # raises with the module's name


def test_no_layer_imports_a_higher_one(graph):
    edges, _ = graph
    assert layer_violations(edges) == []


def test_no_import_cycle(graph):
    edges, _ = graph
    assert import_cycles(edges) == []


def test_physics_and_formats_run_without_aiida(graph):
    edges, externals = graph
    with_aiida = sorted(
        module for module in edges if layer_of(module) in WITHOUT_AIIDA and "aiida" in externals[module]
    )
    assert with_aiida == []


def test_the_check_sees_a_cycle_hidden_in_a_lazy_import(tmp_path):
    """The check itself can fail: a cycle closed only by an import inside a function is found,
    and so is an import of a higher layer."""
    package = tmp_path / PACKAGE
    (package / "workflows").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "workflows" / "__init__.py").write_text("from .training import TrainingWorkChain\n")
    (package / "workflows" / "training.py").write_text("from ..data.functions import split\n")
    (package / "data").mkdir()
    (package / "data" / "__init__.py").write_text("")
    (package / "data" / "functions.py").write_text("def split():\n    from ..workflows import protocols\n")
    (package / "workflows" / "protocols.py").write_text("")
    edges, _ = read_imports(package)
    assert import_cycles(edges) == [
        [f"{PACKAGE}.data.functions", f"{PACKAGE}.workflows", f"{PACKAGE}.workflows.training"]
    ]
    assert f"{PACKAGE}.data.functions (data) imports {PACKAGE}.workflows (workflows)" in layer_violations(edges)
