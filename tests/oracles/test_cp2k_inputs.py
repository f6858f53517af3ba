"""CP2K inputs from data are data, not input text (issue 18, item 2, and two low findings).

A CP2K input is read through a preprocessor (``@INCLUDE``, ``@SET``, ``$VAR``), with ``&`` sections, ``!``/``#``
comments and keywords that name files. Seen before the fix: ``cp2k_oracle(code, ["Si"], functional="PBE\\n&END
XC_FUNCTIONAL\\n@INCLUDE <file>\\n&XC_FUNCTIONAL")`` passed ``validate_oracle`` and ``@INCLUDE`` landed in ``aiida.inp``
(real CP2K echoed the file into the retrieved output); ``@SET`` got in through ``basis_set``, whole sections through
an element name, the same from the learn YAML; a stored parameters Dict was used unchanged (``EXT_RESTART``, an
absolute ``BASIS_SET_FILE_NAME``, ``PROJECT_NAME ../x``, ``FORCE_EVAL/PRINT/FORCES/FILENAME =/abs/path``); an unknown
setting was a bare TypeError; ``elements: Si`` gave two kinds ``S`` and ``i``. No job runs in this module: the
CP2K code is a stand-in (``true``), and every refusal is checked to come before any job.
"""

from __future__ import annotations

import copy
import math
import shutil

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.formats.cp2k import check_cp2k_parameters, cp2k_parameters
from aiida_mlip_trainer.oracles import check_input_contents, cp2k_oracle, validate_oracle
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.test_cli import _one_error_line, invoke

INJECTED_FUNCTIONAL = "PBE\n&END XC_FUNCTIONAL\n@INCLUDE /etc/passwd\n&XC_FUNCTIONAL"
INJECTED_ELEMENT = "Si\n&END KIND\n&EXT_RESTART\nRESTART_FILE_NAME /etc/passwd\n&END EXT_RESTART\n&KIND Si"


@pytest.fixture
def cp2k_stand_in(installed_code):
    """A code of plugin cp2k on localhost that is not CP2K: nothing here may start a job."""
    return installed_code("cp2k-stand-in", shutil.which("true"), "cp2k")


@pytest.fixture
def silicon_pool():
    return TrainingSetData([bulk("Si", "diamond", a=5.43)], labelled=False).store()


def _cp2k_jobs() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode, filters={"process_type": "aiida.calculations:cp2k"}).count()


def _refused_before_any_job(pool, oracle, *fragments) -> None:
    before = _cp2k_jobs()
    with pytest.raises(ValueError) as info:
        run_get_node(LabelingWorkChain, pool=pool, oracle=oracle)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert _cp2k_jobs() == before


# ---------------------------------------------------------------------------------- settings given in Python
@pytest.mark.parametrize(
    "arguments, fragment",
    [
        ({"functional": INJECTED_FUNCTIONAL}, "cp2k functional 'PBE\\n&END XC_FUNCTIONAL\\n@INCLUDE"),
        ({"basis_set": "DZVP-MOLOPT-SR-GTH\n@SET X 1"}, "cp2k basis_set"),
        ({"basis_set": "@SET"}, "cp2k basis_set"),
        ({"pseudopotential": "GTH-PBE @INCLUDE /etc/passwd"}, "cp2k pseudopotential"),
        ({"functional": "PBE ! comment"}, "cp2k functional"),
        ({"functional": "${X}"}, "cp2k functional"),
        ({"elements": [INJECTED_ELEMENT]}, "is not a chemical element symbol"),
        ({"elements": "Si"}, "not the string 'Si'"),
        ({"elements": ["Xx"]}, "'Xx' is not a chemical element symbol"),
        ({"elements": ["Si", 14]}, "14 is not a chemical element symbol"),
        ({"cutoff": math.nan}, "cp2k cutoff must be between 10 and 5000 Ry"),
        ({"cutoff": 1e9}, "cp2k cutoff must be between"),
        ({"cutoff": "150\n@INCLUDE x"}, "cp2k cutoff must be a number"),
        ({"rel_cutoff": math.inf}, "cp2k rel_cutoff"),
        ({"smearing_temperature": -1.0}, "cp2k smearing_temperature"),
        ({"eps_scf": 0.0}, "cp2k eps_scf"),
        ({"max_scf": 10**9}, "cp2k max_scf must be between 1 and 10000"),
        ({"max_scf": 2.5}, "cp2k max_scf must be an integer"),
        ({"stress": "yes"}, "cp2k stress must be true or false"),
        ({"kpoint_distance": 0.0}, "kpoint_distance must be a number of at least 0.05"),
        ({"kpoint_distance": math.nan}, "kpoint_distance"),
    ],
)
def test_cp2k_oracle_refuses_settings_that_are_not_data(cp2k_stand_in, arguments, fragment):
    arguments = dict(arguments)
    elements = arguments.pop("elements", ["Si"])
    with pytest.raises(ValueError) as info:
        cp2k_oracle(cp2k_stand_in, elements, **arguments)
    assert fragment in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_a_string_of_elements_is_not_read_letter_by_letter():
    """`elements: Si` gave two kinds S and i; a list is the only way in, duplicates are one kind."""
    with pytest.raises(ValueError, match="not the string 'SiO'"):
        cp2k_parameters("SiO")
    kinds = cp2k_parameters(("Si", "O", "Si"))["FORCE_EVAL"]["SUBSYS"]["KIND"]
    assert [kind["_"] for kind in kinds] == ["O", "Si"]


def test_unknown_cp2k_setting_is_a_one_line_value_error(cp2k_stand_in):
    """It was a bare TypeError from Python's keyword check."""
    with pytest.raises(ValueError) as info:
        cp2k_oracle(cp2k_stand_in, ["Si"], cutof=300)
    message = str(info.value)
    assert message.startswith("unknown cp2k setting(s) cutof; known: elements, kpoint_distance, options, basis_set")
    assert "cutoff" in message and "max_scf" in message and "\n" not in message


# ----------------------------------------------------------------------------------------- the learn YAML
@pytest.mark.parametrize(
    "oracle, fragments",
    [
        ({"elements": ["Si"], "functional": INJECTED_FUNCTIONAL}, ["oracle: cp2k functional"]),
        ({"elements": ["Si"], "basis_set": "DZVP\n@SET X 1"}, ["oracle: cp2k basis_set"]),
        ({"elements": [INJECTED_ELEMENT]}, ["is not a chemical element symbol"]),
        ({"elements": "Si"}, ["not the string 'Si'"]),
        ({"elements": ["Si"], "cutof": 300}, ["unknown cp2k setting(s) cutof; known: elements"]),
        ({"elements": ["Si"], "max_scf": "80\n@INCLUDE /etc/passwd"}, ["cp2k max_scf must be an integer"]),
    ],
)
def test_learn_yaml_cp2k_oracle_is_checked_in_one_line(tmp_path, cp2k_stand_in, silicon_pool, oracle, fragments):
    path = tmp_path / "learn.yaml"
    spec = {
        "codes": {"pacemaker": "pacemaker@localhost"},
        "structures": silicon_pool.pk,
        "exploration": {"temperatures": [300], "steps": 50},
        "oracle": {"type": "cp2k", "code": cp2k_stand_in.full_label, **oracle},
    }
    path.write_text(yaml.safe_dump(spec))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    _one_error_line(invoke("learn", "launch", path, "--run"), str(path), *fragments)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


# ----------------------------------------------------------------------- a parameters Dict from the database
def _set(path: str, value):
    """A change of the parameters: set ``value`` at ``path`` (``KIND`` entries by index: ``KIND/0/BASIS_SET``)."""

    def change(parameters: dict) -> None:
        *parents, last = path.split("/")
        here = parameters
        for part in parents:
            here = here[int(part)] if isinstance(here, list) else here.setdefault(part, {})
        here[last] = value

    return change


@pytest.mark.parametrize(
    "change, fragment",
    [
        # The four of the issue.
        (_set("EXT_RESTART", {"RESTART_FILE_NAME": "/etc/passwd"}), "EXT_RESTART is refused"),
        (_set("FORCE_EVAL/DFT/BASIS_SET_FILE_NAME", "/etc/passwd"), "FORCE_EVAL/DFT/BASIS_SET_FILE_NAME must be the"),
        (_set("GLOBAL/PROJECT_NAME", "../x"), "GLOBAL/PROJECT_NAME is refused: it names a file"),
        (_set("FORCE_EVAL/PRINT/FORCES/FILENAME", "=/abs/path"), "FORCE_EVAL/PRINT/FORCES/FILENAME is refused"),
        # The same kind, elsewhere.
        (_set("GLOBAL/PROJECT", "../x"), "GLOBAL/PROJECT is refused"),
        (_set("FORCE_EVAL/DFT/POTENTIAL_FILE_NAME", "../../GTH_POTENTIALS"), "POTENTIAL_FILE_NAME must be the bare"),
        (_set("FORCE_EVAL/DFT/POTENTIAL_FILE_NAME", ".."), "POTENTIAL_FILE_NAME must be the bare"),
        (_set("FORCE_EVAL/DFT/WFN_RESTART_FILE_NAME", "/tmp/x.wfn"), "WFN_RESTART_FILE_NAME is refused"),
        (_set("FORCE_EVAL/DFT/RESTART_FILE_NAME", "x.wfn"), "FORCE_EVAL/DFT/RESTART_FILE_NAME is refused"),
        (_set("FORCE_EVAL/DFT/SCF/PRINT/RESTART/FILENAME", "/tmp/x"), "SCF/PRINT/RESTART/FILENAME is refused"),
        (_set("FORCE_EVAL/SUBSYS/KIND/0/BASIS_SET_FILE_NAME", "/x"), "KIND/BASIS_SET_FILE_NAME is refused"),
        (_set("FORCE_EVAL/SUBSYS/TOPOLOGY", {"COORD_FILE_NAME": "/etc/hosts"}), "SUBSYS/TOPOLOGY is not in the"),
        (_set("FORCE_EVAL/SUBSYS/COORD", {"_": "Si 0 0 0"}), "SUBSYS/COORD is not in the allowlist"),
        (_set("FORCE_EVAL/SUBSYS/CELL", {"ABC": "1 1 1"}), "SUBSYS/CELL is not in the allowlist"),
        (
            _set("MOTION", {"MD": {"STEPS": 10**9}}),
            "MOTION is not in the allowlist of single-point settings; the top level takes FORCE_EVAL, GLOBAL",
        ),
        (_set("GLOBAL/RUN_TYPE", "MD"), "GLOBAL/RUN_TYPE must be one of ENERGY_FORCE, ENERGY"),
        (_set("FORCE_EVAL/METHOD", "NNP"), "FORCE_EVAL/METHOD must be one of QUICKSTEP, QS"),
        (_set("FORCE_EVAL/DFT/SCF/IGNORE_CONVERGENCE_FAILURE", True), "IGNORE_CONVERGENCE_FAILURE is not in"),
        # Preprocessor directives, as keys and inside values, at every depth; lists of sections included.
        (_set("@INCLUDE", "/etc/passwd"), "'@INCLUDE' is not a CP2K section or keyword name"),
        (_set("FORCE_EVAL/DFT/@SET", "X 1"), "'FORCE_EVAL/DFT/@SET' is not a CP2K section"),
        (_set("FORCE_EVAL/DFT/SCF/$X", 1), "'FORCE_EVAL/DFT/SCF/$X' is not"),
        (_set("FORCE_EVAL/DFT/XC/XC_FUNCTIONAL/_", INJECTED_FUNCTIONAL), "XC/XC_FUNCTIONAL/_ has the value"),
        (_set("FORCE_EVAL/SUBSYS/KIND/0/BASIS_SET", "DZVP\n@INCLUDE /etc/passwd"), "SUBSYS/KIND/BASIS_SET has"),
        (_set("FORCE_EVAL/SUBSYS/KIND/0/_", INJECTED_ELEMENT), "SUBSYS/KIND/_ has the value"),
        (_set("FORCE_EVAL/SUBSYS/KIND/0/ELEMENT", "Xx"), "KIND/ELEMENT: 'Xx' is not a chemical element symbol"),
        (_set("FORCE_EVAL/DFT/SCF/SCF_GUESS", "ATOMIC @IF 1"), "SCF/SCF_GUESS has the value"),
        (_set("FORCE_EVAL/DFT/SCF/SCF_GUESS", "ATOMIC\r@SET X 1"), "SCF/SCF_GUESS has the value"),
        (_set("FORCE_EVAL/DFT/SCF/SCF_GUESS", "ATOMIC &END SCF"), "SCF/SCF_GUESS has the value"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF", "${CUTOFF}"), "MGRID/CUTOFF has the value"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF", "100 \\"), "MGRID/CUTOFF has the value"),
        (_set("FORCE_EVAL/DFT/QS/METHOD", "GPW ! x"), "QS/METHOD has the value"),
        (_set("FORCE_EVAL/DFT/QS/METHOD", "GPW # x"), "QS/METHOD has the value"),
        (_set("FORCE_EVAL/DFT/QS/METHOD", '"GPW"'), "QS/METHOD has the value"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF", None), "MGRID/CUTOFF has the value None"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF", [[100]]), "MGRID/CUTOFF has the value [100]"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF", {"_": 100}), "MGRID/CUTOFF has the value {'_': 100}"),
        (_set("FORCE_EVAL/DFT/MGRID", "CUTOFF 100"), "FORCE_EVAL/DFT/MGRID is a section: give a mapping"),
        (_set("FORCE_EVAL/DFT/MGRID/cutoff", 100), "'FORCE_EVAL/DFT/MGRID/cutoff' is not a CP2K section"),
        (_set("FORCE_EVAL/DFT/MGRID/CUTOFF 100\n@INCLUDE x", 1), "is not a CP2K section or keyword name"),
        (_set("_", "x"), "_ is not in the allowlist"),
        (_set("FORCE_EVAL/DFT/SCF/SMEAR/_", ["ON", "OFF"]), "SMEAR/_ has the value ['ON', 'OFF']"),
        (_set("FORCE_EVAL/DFT/XC", [{"XC_FUNCTIONAL": {"_": "PBE"}}]), "FORCE_EVAL/DFT/XC is a section"),
    ],
)
def test_stored_parameters_outside_the_allowlist_are_refused_before_any_job(
    cp2k_stand_in, silicon_pool, change, fragment
):
    oracle = cp2k_oracle(cp2k_stand_in, ["Si"])
    parameters = copy.deepcopy(oracle["inputs"]["parameters"].get_dict())
    change(parameters)
    # Read back from the database, as a node of someone else's archive or workflow would be.
    stored = orm.load_node(orm.Dict(parameters).store().pk)
    oracle["inputs"] = {**oracle["inputs"], "parameters": stored}
    _refused_before_any_job(silicon_pool, oracle, "oracle input 'parameters' of 'aiida.calculations:cp2k'", fragment)


@pytest.mark.parametrize("character", ["\n", "\r", "@", "$", "&", "!", "#", "\\", '"', "'", "=", ";", "\t", "\x00"])
def test_no_character_of_cp2k_syntax_passes_in_a_value_or_a_name(character):
    parameters = cp2k_parameters(["Si"])
    parameters["FORCE_EVAL"]["DFT"]["SCF"]["SCF_GUESS"] = f"ATOMIC{character}x"
    with pytest.raises(ValueError, match="SCF_GUESS has the value"):
        check_cp2k_parameters(parameters)
    parameters = cp2k_parameters(["Si"])
    parameters["FORCE_EVAL"]["DFT"]["SCF"][f"MAX{character}SCF"] = 1
    with pytest.raises(ValueError, match="is not a CP2K section or keyword name"):
        check_cp2k_parameters(parameters)


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_numbers_in_parameters_are_finite(number):
    parameters = cp2k_parameters(["Si"])
    parameters["FORCE_EVAL"]["DFT"]["MGRID"]["CUTOFF"] = number
    with pytest.raises(ValueError, match="MGRID/CUTOFF must be a finite number"):
        check_cp2k_parameters(parameters)


def test_deep_nesting_is_refused_at_the_first_unknown_section():
    deep: dict = {}
    for _ in range(5000):
        deep = {"X": deep}
    with pytest.raises(ValueError, match="FORCE_EVAL/DFT/X is not in the allowlist"):
        check_cp2k_parameters({"FORCE_EVAL": {"DFT": deep}})
    with pytest.raises(ValueError, match="expected a mapping of CP2K sections"):
        check_cp2k_parameters([1])


# ------------------------------------------------------------------------------- what stays accepted
@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"smearing_temperature": None, "stress": False},
        {"basis_set": "TZV2P-MOLOPT-GTH", "pseudopotential": "GTH-PBE-q4", "functional": "BLYP", "cutoff": 600},
        {"cutoff": 120.0, "rel_cutoff": 30.0, "eps_scf": 1e-8, "max_scf": 3},
    ],
)
def test_what_cp2k_parameters_writes_passes_and_renders_as_plain_lines(cp2k_stand_in, settings):
    """Every line aiida-cp2k renders from accepted parameters is a section or a keyword with plain text."""
    import re

    from aiida_cp2k.utils import Cp2kInput

    parameters = cp2k_parameters(["Si", "O", "H"], **settings)
    check_cp2k_parameters(parameters)
    plain = re.compile(
        r" *(&END [A-Z_]+|&[A-Z_]+( [A-Za-z0-9 _.+\-\[\]()/*^,:]*)?|[A-Z_]+ [A-Za-z0-9 _.+\-\[\]()/*^,:]+)"
    )
    for line in Cp2kInput(parameters).render().splitlines()[1:]:
        assert plain.fullmatch(line), line
    oracle = cp2k_oracle(cp2k_stand_in, ["Si", "O", "H"], **settings)
    assert validate_oracle("aiida.calculations:cp2k", "structure", "cp2k", oracle["inputs"], oracle["options"]) is None


def test_a_hand_written_single_point_within_the_allowlist_passes():
    """What users tune for a single point: charge and spin, OT, dispersion with its data file, k-points, Poisson."""
    parameters = cp2k_parameters(["O", "H"], smearing_temperature=None, stress=False)
    dft = parameters["FORCE_EVAL"]["DFT"]
    dft.update({"CHARGE": 0, "MULTIPLICITY": 1, "UKS": False, "POISSON": {"PERIODIC": "NONE", "PSOLVER": "MT"}})
    dft["SCF"]["OT"] = {"_": "ON", "MINIMIZER": "DIIS", "PRECONDITIONER": "FULL_SINGLE_INVERSE"}
    dft["SCF"]["OUTER_SCF"] = {"MAX_SCF": 10, "EPS_SCF": 1e-6}
    dft["SCF"]["PRINT"] = {"RESTART": {"_": "OFF"}}
    dft["XC"]["VDW_POTENTIAL"] = {
        "POTENTIAL_TYPE": "PAIR_POTENTIAL",
        "PAIR_POTENTIAL": {"TYPE": "DFTD3", "PARAMETER_FILE_NAME": "dftd3.dat", "REFERENCE_FUNCTIONAL": "PBE"},
    }
    dft["KPOINTS"] = {"SCHEME": "MONKHORST-PACK 2 2 2", "FULL_GRID": "OFF"}
    dft["BASIS_SET_FILE_NAME"] = ["BASIS_MOLOPT", "BASIS_MOLOPT_UCL"]
    parameters["FORCE_EVAL"]["SUBSYS"]["KIND"][0].update({"ELEMENT": "H", "BASIS_SET": ["ORB DZVP-MOLOPT-SR-GTH"]})
    parameters["FORCE_EVAL"]["SUBSYS"]["KIND"] = parameters["FORCE_EVAL"]["SUBSYS"]["KIND"][0]  # one KIND, no list
    check_cp2k_parameters(parameters)


# ---------------------------------------------------------------- one mechanism for every shipped oracle
def test_the_rule_holds_for_the_cp2k_work_chain_and_subclasses(cp2k_stand_in):
    """The checks are keyed by process (aiida-cp2k's work chain exposes the calculation under ``cp2k``) and reach
    subclasses of a checked process, so another spelling of the same calculation gets no way around them."""
    from aiida.plugins import CalculationFactory

    bad = cp2k_parameters(["Si"])
    bad["EXT_RESTART"] = {"RESTART_FILE_NAME": "/etc/passwd"}
    message = validate_oracle(
        "aiida.workflows:cp2k.base", "cp2k.structure", "cp2k", {"cp2k": {"code": cp2k_stand_in, "parameters": bad}}
    )
    assert message is not None
    assert message.startswith("oracle input 'cp2k.parameters' of 'aiida.workflows:cp2k.base': CP2K parameters: ")
    assert "EXT_RESTART is refused" in message

    class SubclassedCp2k(CalculationFactory("cp2k")):
        pass

    message = check_input_contents(SubclassedCp2k, {"parameters": orm.Dict(bad)})
    assert message is not None and "EXT_RESTART is refused" in message
    assert check_input_contents(SubclassedCp2k, {"parameters": orm.Dict(cp2k_parameters(["Si"]))}) is None


def test_the_loop_refuses_the_same_oracle_before_it_starts(cp2k_stand_in, silicon_pool):
    """ActiveLearningWorkChain exposes LabelingWorkChain's inputs under `labeling`, validator included: a loop with a
    refused oracle stops at its own launch, not at its first labelling."""
    from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain

    oracle = cp2k_oracle(cp2k_stand_in, ["Si"])
    parameters = copy.deepcopy(oracle["inputs"]["parameters"].get_dict())
    parameters["GLOBAL"]["PROJECT_NAME"] = "../outside"
    oracle["inputs"] = {**oracle["inputs"], "parameters": orm.load_node(orm.Dict(parameters).store().pk)}
    labeling = ActiveLearningWorkChain.spec().inputs["labeling"]
    inputs = labeling.pre_process(labeling.serialize({"pool": silicon_pool, "oracle": oracle}))
    message = labeling.validator(inputs, labeling)
    assert message is not None
    assert "oracle input 'parameters' of 'aiida.calculations:cp2k'" in message and "PROJECT_NAME" in message
