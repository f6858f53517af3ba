"""One exit-code table for the plugin (docs/reference/exit_codes.md), read and checked against the code.

The code side: every exit code in the spec of every calculation and work chain of the plugin's entry points (less
the ones aiida-core's base classes give), and every ``ExitCode(<number>, ...)`` a calcfunction of the package
returns, found in the source by its syntax tree. The table and the code must hold the same (number, label, process)
triples; one number means one thing plugin-wide, in the range of its kind; and what README, docs and docstrings
quote (``exit code 620``, ``[620]``, ``ERROR_X``) must be in the table with that meaning."""

import ast
import collections
import importlib
import io
import pathlib
import re
import tokenize

import pytest
import tomllib
from aiida.engine import BaseRestartWorkChain, CalcJob

ROOT = pathlib.Path(__file__).parent.parent
TABLE = ROOT / "docs" / "reference" / "exit_codes.md"
PACKAGE = ROOT / "aiida_mlip_trainer"
UNLABELLED = "—"  # a calcfunction's ExitCode has no label

# 300-399 "a job produced no usable output": the decades of each tool (350s: what pace_select and pace_activeset
# share; 360s: gracemaker); the table's introduction says the same.
TOOL_DECADES = {
    "PaceTrainCalculation": {31},
    "GraceTrainCalculation": {36},
    "PaceSelectCalculation": {32, 35},
    "PaceActivesetCalculation": {33, 35},
    "AseOracleCalculation": {34},
    "ExplorationCalculation": {34},
    "PropertyCalculation": {34},
}
RESERVED = (range(300, 310), range(400, 410))  # aiida-core's BaseRestartWorkChain and CalcJob conventions


def _entry_point_classes(*groups: str) -> dict[str, type]:
    """The plugin's classes of the given entry-point groups, by class name, as pyproject declares them."""
    points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    classes = {}
    for group in groups:
        for target in points[group].values():
            module, name = target.split(":")
            classes[name] = getattr(importlib.import_module(module), name)
    return classes


def _aiida_base(cls: type) -> type:
    """The aiida-core class the process class derives from (CalcJob, WorkChain, BaseRestartWorkChain, ...)."""
    return next(base for base in cls.__mro__[1:] if base.__module__.startswith("aiida.") and hasattr(base, "spec"))


def _is_calcfunction(node: ast.FunctionDef) -> bool:
    return any(
        (isinstance(d, ast.Name) and d.id == "calcfunction")
        or (isinstance(d, ast.Attribute) and d.attr == "calcfunction")
        for d in node.decorator_list
    )


def _calcfunction_codes() -> set[tuple[int, str, str]]:
    """(number, —, function) of every ``ExitCode(...)`` in the package's source; each must be a calcfunction's
    return with a literal number (a process class declares its codes with ``spec.exit_code``)."""
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "ExitCode"
            ):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            function = parents[node]
            while not isinstance(function, ast.FunctionDef | ast.Module):
                function = parents[function]
            assert isinstance(function, ast.FunctionDef) and _is_calcfunction(function), (
                f"{where}: an ExitCode outside a calcfunction (declare it with spec.exit_code)"
            )
            number = node.args[0] if node.args else None
            assert isinstance(number, ast.Constant) and isinstance(number.value, int), (
                f"{where}: the exit status of {function.name} must be a literal number, for the table"
            )
            found.add((number.value, UNLABELLED, function.name))
    return found


def _process_codes() -> tuple[set[tuple[int, str, str]], dict[str, str]]:
    """(number, label, process class) of the exit codes the plugin declares, and the kind of each process."""
    found, kinds = set(), {}
    for name, cls in _entry_point_classes("aiida.calculations", "aiida.workflows").items():
        inherited = _aiida_base(cls).spec().exit_codes
        kinds[name] = "calcjob" if issubclass(cls, CalcJob) else "workchain"
        for label, code in cls.spec().exit_codes.items():
            if label in inherited:
                assert inherited[label].status == code.status, (
                    f"{name}.{label} ({code.status}) redefines aiida-core's {label} ({inherited[label].status})"
                )
                continue
            found.add((code.status, label, name))
    return found, kinds


def code_triples() -> set[tuple[int, str, str]]:
    return _process_codes()[0] | _calcfunction_codes()


def table_rows() -> list[tuple[int, str, list[str]]]:
    """(number, label, processes) per row of the table."""
    rows = []
    for line in TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and cells[0].isdigit():
            assert len(cells) == 4 and cells[3], f"a row needs number | label | process(es) | meaning: {line}"
            processes = [process.strip().strip("`") for process in cells[2].split(",")]
            rows.append((int(cells[0]), cells[1].strip("`"), processes))
    return rows


def table_triples() -> set[tuple[int, str, str]]:
    return {(number, label, process) for number, label, processes in table_rows() for process in processes}


def test_the_table_holds_every_exit_code_of_the_plugin_and_no_other():
    in_code, in_table = code_triples(), table_triples()
    assert len(in_code) > 40  # the collection found the plugin's codes, not an empty set
    missing, stale = sorted(in_code - in_table), sorted(in_table - in_code)
    assert not missing and not stale, f"in the code, not the table: {missing}; in the table, not the code: {stale}"


def test_one_number_one_meaning_plugin_wide():
    """A number has one label wherever it is used, a label one number, and the table one row per number."""
    labels, numbers = collections.defaultdict(set), collections.defaultdict(set)
    for number, label, _ in code_triples():
        labels[number].add(label)
        if label != UNLABELLED:
            numbers[label].add(number)
    assert {n: sorted(ls) for n, ls in labels.items() if len(ls) > 1} == {}
    assert {label: sorted(ns) for label, ns in numbers.items() if len(ns) > 1} == {}
    rows = [number for number, _, _ in table_rows()]
    assert sorted(rows) == sorted(set(rows)), "one row per number"
    unlabelled = collections.Counter(number for number, label, _ in code_triples() if label == UNLABELLED)
    assert {n: c for n, c in unlabelled.items() if c > 1} == {}, "a calcfunction's number is its own"


def test_each_number_is_in_the_range_of_its_kind():
    """200s: refused before a job (work chains, calcfunctions); 300s/400s: what a job gives (a work chain may pass
    its job's code on), in the tool's decade for the 300s; 500s and 600s: a work chain's; none in aiida-core's."""
    triples, kinds = _process_codes()
    job_codes = {(number, label) for number, label, process in triples if kinds[process] == "calcjob"}
    for number, label, process in sorted(triples | _calcfunction_codes()):
        where = f"{process}: {number} {label}"
        assert 200 <= number < 700 and not any(number in reserved for reserved in RESERVED), where
        if label == UNLABELLED:
            assert number < 300, f"{where}: a calcfunction runs no job, its failure is bad input (200s)"
        elif kinds[process] == "calcjob":
            assert 300 <= number < 500, f"{where}: a job's failure is no usable output (300s) or a limit (400s)"
            if number < 400:
                assert number // 10 in TOOL_DECADES[process], f"{where}: outside the tool's decade"
        elif 300 <= number < 500:
            assert (number, label) in job_codes, f"{where}: a work chain's code in a job's range"


# Prose that quotes exit codes: a sentence that speaks of an exit ("exit code 620", "exits with 620", "Exit codes:
# 620, ...") or a number in brackets ("ended [620]"); and a number with its label, "620 (`ERROR_X`)".
SENTENCE = re.compile(r"(?<=[.;!?])\s+|\n\s*\n")
QUOTES_EXIT = re.compile(r"\bexit|\[\d{3}\]", re.IGNORECASE)
NUMBER = re.compile(r"(?<![\w.])(\d{3})(?!\w|\.\d)")
WITH_LABEL = re.compile(r"\b(\d{3})\s*\(`?(ERROR_[A-Z_]+)`?\)")


def prose(path: pathlib.Path) -> str:
    """What a reader reads: a page without its code blocks; a module's docstrings and comments."""
    text = path.read_text()
    if path.suffix == ".md":
        return re.sub(r"^```.*?^```", "", text, flags=re.DOTALL | re.MULTILINE)
    tree = ast.parse(text)
    docstrings = [
        node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
    ]
    lines = io.StringIO(text).readline
    comments = [token.string for token in tokenize.generate_tokens(lines) if token.type == tokenize.COMMENT]
    return "\n\n".join(docstrings + comments)


def quoted_numbers(text: str) -> set[int]:
    """The exit-code-like numbers (200-699) of the sentences of ``text`` that speak of an exit."""
    return {
        int(number)
        for sentence in SENTENCE.split(text)
        if QUOTES_EXIT.search(sentence)
        for number in NUMBER.findall(sentence)
        if 200 <= int(number) < 700
    }


def prose_files() -> list[pathlib.Path]:
    files = [ROOT / "README.md", *ROOT.glob("docs/**/*.md"), *PACKAGE.rglob("*.py")]
    files += [*ROOT.glob("examples/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]
    return [path for path in files if path != TABLE]


def test_numbers_and_labels_quoted_in_the_docs_are_in_the_table():
    meaning = {number: label for number, label, _ in table_rows()}
    known = set(meaning.values()) | set(CalcJob.spec().exit_codes) | set(BaseRestartWorkChain.spec().exit_codes)
    parsers = _entry_point_classes("aiida.parsers").values()
    wrong = []
    for path in prose_files():
        where, text = path.relative_to(ROOT), prose(path)
        wrong += [f"{where}: {number} is not in the table" for number in sorted(quoted_numbers(text) - set(meaning))]
        for number, label in WITH_LABEL.findall(text):
            if meaning.get(int(number)) != label:
                wrong.append(f"{where}: {number} ({label}), the table says {meaning.get(int(number))}")
        if path.suffix == ".md":
            for label in sorted(set(re.findall(r"\bERROR_[A-Z_]+\b", text))):
                if label not in known and not any(hasattr(parser, label) for parser in parsers):  # e.g. ERROR_MAP
                    wrong.append(f"{where}: {label} is no exit code of the plugin")
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("It ends with exit code 620. At 300 K it runs.", {620}),
        ("with the defaults they ended [440]", {440}),
        ("Exit codes: 300 the script failed, 301 no output.", {300, 301}),
        ("the job ran 2.500 s, 5000 steps, then exited", set()),
    ],
)
def test_the_sentences_that_quote_exit_codes_are_found(text, numbers):
    assert quoted_numbers(text) == numbers
