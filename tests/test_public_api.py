"""The public API is what each package's ``__init__`` declares in ``__all__``, and docs/reference/api.md documents
exactly that; no module exists only to re-export another's names, and no private name (``_x``) is imported from one
module of the package into another.

Read from the source with ``ast`` (as tests/test_architecture.py reads the layers) and from the page itself.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import re

import pytest

import aiida_mlip_trainer

PACKAGE = "aiida_mlip_trainer"
ROOT = pathlib.Path(aiida_mlip_trainer.__file__).parent
API_PAGE = ROOT.parent / "docs" / "reference" / "api.md"

# Directives that document one object by its full dotted name.
OBJECT_DIRECTIVE = re.compile(r"^\.\. (?:py:data|py:class|py:function|autodata|autoclass|autofunction):: (\S+)\s*$")
MODULE_DIRECTIVE = re.compile(r"^\.\. automodule:: (\S+)\s*$")
MEMBERS = re.compile(r"^\s+:members:(.*)$")
SECTION = re.compile(r"^## `([\w.]+)`\s*$")


def module_name(path: pathlib.Path, root: pathlib.Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def packages(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    """Every package (a folder with an ``__init__.py``) by its dotted name."""
    return {module_name(path, root): path for path in sorted(root.rglob("__init__.py"))}


def declared_all(path: pathlib.Path) -> tuple[str, ...] | None:
    """The literal ``__all__`` of a module, or None when it has none."""
    for node in ast.parse(path.read_text(encoding="utf8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    return None


def documented(page: str) -> dict[str, set[str]]:
    """Per ``## `package``` section of the API page, the names it documents: the ``:members:`` listed on an
    ``automodule`` of the package itself, a module of the package (``automodule:: package.module``), or one object
    (``py:data:: package.name``, ``autoclass::`` ...). Anything documented outside its package's section is an
    error."""
    sections: dict[str, set[str]] = {}
    section = module = None
    for number, line in enumerate(page.splitlines(), 1):
        if match := SECTION.match(line):
            section, module = match.group(1), None
            if section in sections:
                raise ValueError(f"line {number}: a second section for {section}")
            sections[section] = set()
            continue
        target = None
        if match := MODULE_DIRECTIVE.match(line):
            module = target = match.group(1)
            if target == section:
                continue  # its names come from its :members: list
        elif match := OBJECT_DIRECTIVE.match(line):
            target, module = match.group(1), None
        elif (match := MEMBERS.match(line)) and module == section and section is not None:
            names = [name.strip() for name in match.group(1).split(",") if name.strip()]
            if not names:
                raise ValueError(f"line {number}: list the members of {section}: its __all__, no more")
            sections[section].update(names)
            continue
        if target is None:
            continue
        parent, _, name = target.rpartition(".")
        if section is None or parent != section:
            raise ValueError(f"line {number}: {target} is not in the section of its package ({section})")
        sections[section].add(name)
    return sections


def reexport_modules(root: pathlib.Path = ROOT) -> list[str]:
    """Modules (package ``__init__`` files aside: they are where a package declares its API) that exist only to
    re-export: nothing defined, or a name of the package imported and not used but passed on (``# noqa: F401``, in
    ``__all__``, or through ``sys.modules``)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf8"))
        name = module_name(path, root)
        if not any(isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) for node in tree.body):
            if any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body) and not _defines_data(tree):
                found.append(f"{name}: defines nothing, only imports")
                continue
        used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _inside(node, name, root.name):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if bound not in used:
                        found.append(f"{name}: imports {alias.name} and does not use it (a re-export)")
    return found


def _defines_data(tree: ast.Module) -> bool:
    """Whether the module assigns a value of its own (a constant, a table), not only ``__all__``, an alias of an
    imported name or ``sys.modules``."""
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == "__all__" or isinstance(t, ast.Subscript) for t in targets):
                continue
            if isinstance(node.value, ast.Name | ast.Attribute):
                continue
            return True
    return False


def _inside(node: ast.ImportFrom, module: str, package: str) -> bool:
    return bool(node.level) or (node.module or "").split(".")[0] == package


def private_imports(root: pathlib.Path = ROOT) -> list[str]:
    """Every private name (``_x``, not a dunder) one module of the package takes from another: ``from .m import
    _x``, or ``m._x`` on a module of the package it imported."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        tree = ast.parse(path.read_text(encoding="utf8"))
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _inside(node, name, root.name):
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"{name} imports {alias.name} from {'.' * node.level}{node.module or ''}")
                    modules.add(alias.asname or alias.name)  # maybe a module: its private attributes count too
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == root.name and alias.asname:
                        modules.add(alias.asname)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and _private(node.attr)
            ):
                found.append(f"{name} uses {node.value.id}.{node.attr}")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


# ------------------------------------------------------------------------------------------------------ the package
@pytest.mark.parametrize("package", sorted(packages()))
def test_every_package_declares_its_api_and_every_name_imports(package):
    names = declared_all(packages()[package])
    assert names, f"{package}/__init__.py declares no __all__"
    assert len(set(names)) == len(names), f"{package}: a name twice in __all__"
    module = importlib.import_module(package)
    for name in names:
        if not hasattr(module, name):  # a public module of the package
            importlib.import_module(f"{package}.{name}")
        assert hasattr(module, name), f"{package}.{name} is declared but does not import"


def test_the_api_page_documents_exactly_what_the_packages_declare():
    sections = documented(API_PAGE.read_text(encoding="utf8"))
    declared = {package: set(declared_all(path) or ()) for package, path in packages().items()}
    assert sorted(sections) == sorted(declared), "one section per package in docs/reference/api.md"
    differences = {
        package: {"undocumented": sorted(declared[package] - names), "not declared": sorted(names - declared[package])}
        for package, names in sections.items()
        if names != declared[package]
    }
    assert differences == {}


def test_no_module_exists_only_to_reexport():
    assert reexport_modules() == []


def test_no_private_name_is_imported_across_modules():
    assert private_imports() == []


# -------------------------------------------------------------------------------------- the checks themselves fail
def _package(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / PACKAGE
    for relative, text in {"__init__.py": "", **files}.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_the_checks_find_an_alias_module_a_passed_on_import_and_a_private_import(tmp_path):
    root = _package(
        tmp_path,
        {
            "physics/__init__.py": '__all__ = ("baselines",)\n',
            "physics/baselines.py": "LIMIT = 3.0\n\ndef _window():\n    return 1\n",
            "baselines.py": "import sys\nfrom .physics import baselines\nsys.modules[__name__] = baselines\n",
            "selection.py": "from .physics.baselines import LIMIT  # noqa: F401\n\ndef pick():\n    return 1\n",
            "training.py": "from .physics.baselines import _window\n\ndef fit():\n    return _window()\n",
            "loop.py": "from .physics import baselines\n\ndef run():\n    return baselines._window()\n",
        },
    )
    assert reexport_modules(root) == [
        f"{PACKAGE}.baselines: defines nothing, only imports",
        f"{PACKAGE}.selection: imports LIMIT and does not use it (a re-export)",
    ]
    assert private_imports(root) == [
        f"{PACKAGE}.loop uses baselines._window",
        f"{PACKAGE}.training imports _window from .physics.baselines",
    ]


def test_the_page_check_finds_a_name_in_the_wrong_section_and_an_unlisted_package():
    page = """## `aiida_mlip_trainer.data`

```{eval-rst}
.. automodule:: aiida_mlip_trainer.data
   :members: TrainingSetData
.. automodule:: aiida_mlip_trainer.data.operations
   :members:
.. py:data:: aiida_mlip_trainer.data.LIMIT
```
"""
    assert documented(page) == {"aiida_mlip_trainer.data": {"TrainingSetData", "operations", "LIMIT"}}
    with pytest.raises(ValueError, match="aiida_mlip_trainer.physics.baselines is not in the section of its package"):
        documented(page + ".. automodule:: aiida_mlip_trainer.physics.baselines\n")
    with pytest.raises(ValueError, match="list the members"):
        documented(page.replace(":members: TrainingSetData", ":members:"))
