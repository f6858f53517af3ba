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
    assert modules_with_aiida(*graph) == []


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


# ---------------------------------------------------------------------------------------------------- the rooms
# Each room holds what its sign says (docs/explanation/architecture.md): every calcfunction in workflows/functions/,
# one element table (names.ELEMENTS), no LAMMPS text and no AiiDA in physics/, every work chain and layer on that page.
FUNCTIONS_ROOM = f"{PACKAGE}.workflows.functions"
ELEMENT_TABLE_MODULE = f"{PACKAGE}.names"
# Words only a LAMMPS input line contains: a string of the package outside a docstring that holds one writes LAMMPS.
LAMMPS_WORDS = ("pair_style", "pair_coeff", "hybrid/overlay")
ARCHITECTURE = ROOT.parent / "docs" / "explanation" / "architecture.md"
PYPROJECT = ROOT.parent / "pyproject.toml"


def _trees(root: pathlib.Path = ROOT):
    for path in sorted(root.rglob("*.py")):
        yield module_name(path, root), ast.parse(path.read_text(encoding="utf8"))


def _name_of(node: ast.AST) -> str:
    """``calcfunction`` for ``calcfunction``, ``engine.calcfunction`` and ``calcfunction(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def calcfunctions_outside_their_room(root: pathlib.Path = ROOT) -> list[str]:
    """``module:function`` of every function decorated with ``calcfunction`` outside ``workflows/functions/``."""
    room = f"{root.name}.workflows.functions"
    found = []
    for module, tree in _trees(root):
        if module == room or module.startswith(room + "."):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if any(_name_of(decorator) == "calcfunction" for decorator in node.decorator_list):
                    found.append(f"{module}:{node.name}")
    return found


def element_tables(root: pathlib.Path = ROOT) -> list[str]:
    """The modules that build a table of element symbols: a slice or a set of ASE's ``chemical_symbols``, or a
    literal collection of ten or more element symbols."""
    from ase.data import chemical_symbols

    symbols = set(chemical_symbols[1:])
    found = set()
    for module, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
                table = _name_of(node.value) == "chemical_symbols"
            elif isinstance(node, ast.Call) and _name_of(node) in ("set", "frozenset") and node.args:
                table = _name_of(node.args[0]) == "chemical_symbols"
            elif isinstance(node, ast.Set | ast.List | ast.Tuple):
                names = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                table = sum(name in symbols for name in names) >= 10
            else:
                continue
            if table:
                found.add(module)
    return sorted(found)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def lammps_writers(root: pathlib.Path = ROOT, layer: str = "physics") -> list[str]:
    """The modules of ``layer`` with a string (docstrings aside, f-strings included) that holds a LAMMPS word."""
    found = set()
    for module, tree in _trees(root):
        if layer_of(module) != layer:
            continue
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if any(word in node.value for word in LAMMPS_WORDS):
                    found.add(module)
    return sorted(found)


def modules_with_aiida(edges: dict[str, set[str]], externals: dict[str, set[str]]) -> list[str]:
    """The modules of the layers that must run without AiiDA and import it."""
    return sorted(module for module in edges if layer_of(module) in WITHOUT_AIIDA and "aiida" in externals[module])


def registered_work_chains(pyproject: pathlib.Path = PYPROJECT) -> list[str]:
    """The class names of the ``aiida.workflows`` entry points of ``pyproject.toml``."""
    import tomllib

    entry_points = tomllib.loads(pyproject.read_text(encoding="utf8"))["project"]["entry-points"]["aiida.workflows"]
    return sorted(value.rpartition(":")[2] for value in entry_points.values())


def missing_from_architecture(text: str, root: pathlib.Path = ROOT, pyproject: pathlib.Path = PYPROJECT) -> list[str]:
    """The registered work chains and the package's folders (``physics/``, ``workflows/functions/``, ...) that the
    architecture page does not name."""
    folders = sorted(
        path.parent.relative_to(root).as_posix() + "/" for path in root.rglob("__init__.py") if path.parent != root
    )
    return [name for name in registered_work_chains(pyproject) + folders if name not in text]


def test_every_calcfunction_lives_in_workflows_functions():
    assert calcfunctions_outside_their_room() == []


def test_there_is_one_element_table():
    assert element_tables() == [ELEMENT_TABLE_MODULE]


def test_physics_writes_no_lammps_text():
    assert lammps_writers() == []


def test_architecture_page_names_every_work_chain_and_layer():
    assert len(registered_work_chains()) >= 5
    assert missing_from_architecture(ARCHITECTURE.read_text(encoding="utf8")) == []


def test_the_room_checks_see_a_misplaced_thing(tmp_path):
    """The checks of the rooms can fail: a calcfunction in a work chain's module, a second element table, a LAMMPS
    line and an AiiDA import in physics/, and a work chain the architecture page does not name are all found."""
    package = tmp_path / PACKAGE
    for folder in ("workflows/functions", "physics"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "names.py").write_text(
        "from ase.data import chemical_symbols\nELEMENTS = frozenset(chemical_symbols[1:])\n"
    )
    (package / "workflows" / "functions" / "labeling.py").write_text(
        "from aiida.engine import calcfunction\n\n@calcfunction\ndef split_pool(pool):\n    return {}\n"
    )
    (package / "workflows" / "labeling.py").write_text(
        "from aiida import engine\n\n@engine.calcfunction()\ndef merge_labels(pool):\n    return {}\n"
    )
    (package / "physics" / "baselines.py").write_text(
        '"""LAMMPS ``pair_style zbl`` computes the same function (a docstring may say so)."""\n'
        "from ase.data import chemical_symbols\n"
        "from aiida import orm\n"
        "_ELEMENTS = set(chemical_symbols)\n"
        "def lines(a, b):\n"
        '    """pair_coeff in a docstring is no LAMMPS line."""\n'
        '    return [f"pair_coeff 1 1 zbl {a} {b}"]\n'
    )
    (package / "physics" / "short_range.py").write_text(
        'NOBLE = ("He", "Ne", "Ar", "Kr", "Xe", "Rn", "H", "Li", "Na", "K")\n'
    )
    assert calcfunctions_outside_their_room(package) == [f"{PACKAGE}.workflows.labeling:merge_labels"]
    assert element_tables(package) == [
        f"{PACKAGE}.names",
        f"{PACKAGE}.physics.baselines",
        f"{PACKAGE}.physics.short_range",
    ]
    assert lammps_writers(package) == [f"{PACKAGE}.physics.baselines"]
    edges, externals = read_imports(package)
    assert modules_with_aiida(edges, externals) == [f"{PACKAGE}.physics.baselines"]

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project.entry-points."aiida.workflows"]\n'
        '"x.labeling" = "aiida_mlip_trainer.workflows.labeling:LabelingWorkChain"\n'
        '"x.training" = "aiida_mlip_trainer.workflows.training:TrainingWorkChain"\n'
    )
    page = "TrainingWorkChain in workflows/ and workflows/functions/, physics/, workflows/protocols/"
    assert missing_from_architecture(page, package, pyproject) == ["LabelingWorkChain"]
    assert missing_from_architecture(page.replace("physics/, ", ""), package, pyproject) == [
        "LabelingWorkChain",
        "physics/",
    ]
