"""Altered nodes given to exploration, labelling, the loop, the training and selection work chains and the oracles
are refused with a validation message naming the input and the node, before any process runs: never a process
that ends Excepted, never an exception out of a validator. The active set (``.asi``) is checked against its
potential's basis wherever it is loaded, and the reference energy a potential records is bounded in structure.

The nodes are real archives altered as an attacker would (``tampered`` of ``tests/test_untrusted_nodes.py``), with
the content hash recomputed where the attack needs it (whoever edits an archive can recompute it).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.calculations.untrusted import refuses_altered_nodes
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.data.pace_potential import PotentialError, potential_hash
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.tools.active_set import ActiveSetError, check_active_set
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.active_learning.conftest import copper_sets, loop_codes  # noqa: F401 - fixtures
from tests.conftest import FIXTURES
from tests.exploration.conftest import argon_start, explore_code  # noqa: F401 - explore_code is a fixture
from tests.oracles.conftest import copper_cells
from tests.selection.conftest import fitted_potential, parse_job  # noqa: F401 - fixtures
from tests.test_untrusted_nodes import POTENTIAL, tampered

ACTIVE_SET = FIXTURES / "pace_activeset_success" / "potential.asi"
LJ = {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}
ALTERED = "corrupt or was altered"


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _processes() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode).count()


def _with_asi(baseline=None) -> PacePotentialData:
    return PacePotentialData(POTENTIAL, active_set=ACTIVE_SET, baseline=baseline).store()


def _rehashed(node, tmp_path, *, asi: bytes | None = None, yaml: bytes | None = None) -> PacePotentialData:
    """The potential with its ``.asi`` and/or ``.yaml`` replaced and the content hash recomputed to match."""
    yaml = yaml if yaml is not None else POTENTIAL.read_bytes()
    asi = asi if asi is not None else ACTIVE_SET.read_bytes()
    files = {"potential.yaml": yaml, "potential.asi": asi}
    return tampered(node, tmp_path, files=files, attributes={"content_hash": potential_hash(yaml, None, asi, None)})


# The four altered nodes of the issue, each with the words the refusal must contain.
def _files_not_matching_the_hash(tmp_path):
    node = tampered(_with_asi(), tmp_path, files={"potential.asi": _npz(Ar=np.eye(36))})
    return node, "do not match its content_hash"


def _claims_an_active_set_without_asi(tmp_path):
    node = tampered(PacePotentialData(POTENTIAL).store(), tmp_path, attributes={"has_active_set": True})
    return node, "attribute 'has_active_set' is True but the node has no potential.asi"


def _baseline_cutoff_with_a_command(tmp_path):
    altered = {"type": "lj", "params": {**LJ["params"], "cutoff": "7\nrm"}}
    node = tampered(_with_asi(LJ), tmp_path, attributes={"baseline": altered})
    return node, "attribute 'baseline'"


POTENTIAL_ATTACKS = {
    "files-not-matching-hash": _files_not_matching_the_hash,
    "active-set-without-asi": _claims_an_active_set_without_asi,
    "baseline-cutoff-7-newline-rm": _baseline_cutoff_with_a_command,
}


def _pool_with_elements(tmp_path, atoms, elements: list[str], labelled: bool = False) -> TrainingSetData:
    """A pool whose ``elements`` attribute is ``elements``, not what its arrays hold."""
    return tampered(TrainingSetData(atoms, labelled=labelled).store(), tmp_path, attributes={"elements": elements})


POOL_REFUSED = r"attribute.*elements.*do not match"


def _refused(launch, message: str, node) -> None:
    """``launch()`` raises the validation error naming ``node`` and ``message``, and no process was created."""
    before = _processes()
    with pytest.raises(ValueError, match=rf"{node.__class__.__name__}<{node.pk}> .*{message}") as error:
        launch()
    assert type(error.value) is ValueError  # plumpy's validation error, not a TrainingSetError raised out of it
    assert "Traceback" not in str(error.value)
    assert _processes() == before


# ------------------------------------------------------------------------------------------------- exploration
def _explore(code, potential, structures):
    return run_get_node(
        ExplorationCalculation,
        code=code,
        potential=potential,
        structures=structures,
        parameters={"temperatures": [10], "steps": 20, "sample_interval": 10},
    )


@pytest.mark.parametrize("attack", POTENTIAL_ATTACKS)
def test_exploration_refuses_an_altered_potential(tmp_path, explore_code, attack):  # noqa: F811
    potential, message = POTENTIAL_ATTACKS[attack](tmp_path)
    starts = TrainingSetData([argon_start()], labelled=False).store()
    _refused(lambda: _explore(explore_code, potential, starts), message, potential)


def test_exploration_refuses_a_pool_whose_elements_attribute_lies(tmp_path, explore_code):  # noqa: F811
    """Copper cells that say they are argon passed the element check against the argon potential."""
    pool = _pool_with_elements(tmp_path, copper_cells(2), ["Ar"])
    _refused(lambda: _explore(explore_code, _with_asi(), pool), POOL_REFUSED, pool)


# --------------------------------------------------------------------------------------------------- labelling
@pytest.mark.parametrize("attack", POTENTIAL_ATTACKS)
def test_labeling_refuses_an_altered_potential_in_a_nested_namespace(tmp_path, ase_oracle_code, attack):  # noqa: F811
    """An oracle's fixed inputs (``oracle.inputs``, a dynamic namespace two levels down) are verified too."""
    potential, message = POTENTIAL_ATTACKS[attack](tmp_path)
    oracle = ase_oracle(ase_oracle_code, "emt")
    oracle["inputs"]["potential"] = potential
    pool = TrainingSetData(copper_cells(2), labelled=False).store()
    _refused(lambda: run_get_node(LabelingWorkChain, pool=pool, oracle=oracle), message, potential)


def test_labeling_refuses_a_pool_whose_elements_attribute_lies(tmp_path, ase_oracle_code):  # noqa: F811
    pool = _pool_with_elements(tmp_path, copper_cells(2), ["Cu", "Ni"])
    oracle = ase_oracle(ase_oracle_code, "emt")
    _refused(lambda: run_get_node(LabelingWorkChain, pool=pool, oracle=oracle), POOL_REFUSED, pool)


# -------------------------------------------------------------------------------------------------------- loop
def _loop_builder(codes, structures, test_set, oracle=None):
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        structures,
        {"temperatures": [300], "steps": 50},
        "fast",
        {"selection": {"max_structures": 3}},
        oracle=oracle or ase_oracle(codes["ase_oracle"], "emt"),
        test_set=test_set,
    )


@pytest.mark.parametrize("attack", POTENTIAL_ATTACKS)
def test_the_loop_refuses_an_altered_potential(tmp_path, loop_codes, copper_sets, attack):  # noqa: F811
    potential, message = POTENTIAL_ATTACKS[attack](tmp_path)
    oracle = ase_oracle(loop_codes["ase_oracle"], "emt")
    oracle["inputs"]["potential"] = potential
    builder = _loop_builder(loop_codes, copper_sets["initial"], copper_sets["test"], oracle)
    _refused(lambda: run_get_node(builder), message, potential)


def test_the_loop_refuses_structures_whose_elements_attribute_lies(tmp_path, loop_codes, copper_sets):  # noqa: F811
    """Labelled copper that says it is copper and nickel passed every check of the loop and of the training."""
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    structures = _pool_with_elements(tmp_path, copper_emt(4, seed=3), ["Cu", "Ni"], labelled=True)
    builder = _loop_builder(loop_codes, structures, copper_sets["test"])
    _refused(lambda: run_get_node(builder), POOL_REFUSED, structures)


# ------------------------------------------------------------------------- training, selection, the ASE oracle
def _validate(process_class, inputs: dict) -> str | None:
    namespace = process_class.spec().inputs
    return namespace.validator(inputs, namespace)


def test_training_and_selection_validators_verify_their_nodes(tmp_path, argon_structures):
    from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
    from aiida_mlip_trainer.workflows.training import TrainingWorkChain

    training_set = _pool_with_elements(tmp_path, argon_structures["train"], ["Ar", "Ne"], labelled=True)
    message = _validate(TrainingWorkChain, {"training_set": training_set, "test_fraction": orm.Float(0.2)})
    assert message is not None and f"input 'training_set': TrainingSetData<{training_set.pk}>" in message
    potential, expected = _claims_an_active_set_without_asi(tmp_path)
    message = _validate(
        SelectionWorkChain, {"pool": TrainingSetData(argon_structures["train"]), "potential": potential}
    )
    assert message is not None and f"input 'potential': PacePotentialData<{potential.pk}>" in message
    assert expected in message


def test_a_validator_that_raises_gives_a_message_naming_the_inputs(monkeypatch, explore_code):  # noqa: F811
    """No validator raises: whatever it raises all the same is a one-line validation message."""
    from aiida_mlip_trainer.calculations import explore

    def broken(settings):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(explore, "check_settings", broken)
    starts = TrainingSetData([argon_start()], labelled=False).store()
    before = _processes()
    with pytest.raises(ValueError, match=r"inputs could not be checked: RuntimeError: unexpected"):
        _explore(explore_code, _with_asi(), starts)
    assert _processes() == before


def test_the_ase_oracle_validator_never_raises(monkeypatch):
    from aiida_mlip_trainer.calculations import ase_oracle as module
    from aiida_mlip_trainer.calculations.ase_oracle import AseOracleCalculation

    def broken(name, parameters):
        raise TypeError("a port that is not a mapping")

    monkeypatch.setattr(module, "check_calculator", broken)
    message = _validate(AseOracleCalculation, {"calculator": orm.Str("emt")})
    assert message == "the 'inputs' inputs could not be checked: TypeError: a port that is not a mapping"


def test_the_wrapper_walks_nested_namespaces_and_keeps_the_validator():
    calls = []

    def validator(inputs, ctx):
        calls.append(inputs)
        return "the validator's own message"

    wrapped = refuses_altered_nodes(validator)
    assert wrapped({"a": {"b": {"c": orm.Int(1)}}}, None) == "the validator's own message"
    assert wrapped.__name__ == "validator" and len(calls) == 1


# -------------------------------------------------------------------------------------------- the active set
@pytest.mark.parametrize(
    ("asi", "message"),
    [
        (_npz(Ar=np.zeros((36, 36))), "element 'Ar': the matrix is singular"),
        (_npz(Ar=np.ones((36, 36))), "element 'Ar': the matrix is singular"),
        (_npz(Ar=np.full((36, 36), np.nan)), "element 'Ar': the matrix contains NaN"),
        (_npz(Ar=np.diag([np.inf] + [1.0] * 35)), "element 'Ar': the matrix contains NaN or infinite"),
        (_npz(Ar=np.eye(35)), r"element 'Ar': a float64 array of shape \(35, 35\), expected float \(36, 36\)"),
        (_npz(Ar=np.zeros(36 * 36)), r"shape \(1296,\)"),
        (_npz(Cu=np.eye(36)), r"matrices for \['Cu'\], the potential's elements are \['Ar'\]"),
        (_npz(Ar=np.eye(36), Cu=np.eye(36)), r"matrices for \['Ar', 'Cu'\]"),
        (_npz(Ar=np.array([object()] * 4, dtype=object)), "element 'Ar': a object array"),
        (b"PK\x03\x04 not a zip", "not an .npz archive"),
    ],
)
def test_an_active_set_that_does_not_fit_the_basis_is_refused_by_name(tmp_path, asi, message):
    """The hash is recomputed: only the check against the basis can tell."""
    node = _rehashed(_with_asi(), tmp_path, asi=asi)
    with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*potential.asi .*{message}"):
        node.verify()
    with pytest.raises(ValueError, match=message):
        PacePotentialData(POTENTIAL, active_set=asi)


def test_a_faked_active_set_of_zeros_never_reaches_exploration(tmp_path, explore_code):  # noqa: F811
    """The finding: a .asi of zeros with a matching hash made exploration exit 0 with max γ 0.0 ("converged")."""
    node = _rehashed(_with_asi(), tmp_path, asi=_npz(Ar=np.zeros((36, 36))))
    starts = TrainingSetData([argon_start()], labelled=False).store()
    _refused(lambda: _explore(explore_code, node, starts), "element 'Ar': the matrix is singular", node)


@pytest.mark.parametrize(
    ("asi", "message"),
    [
        (_npz(Ar=np.zeros((36, 36))), "element 'Ar': the matrix is singular"),
        (_npz(Ar=np.full((36, 36), np.nan)), "element 'Ar': the matrix contains NaN"),
        (_npz(Ar=np.eye(12)), "element 'Ar': a float64 array of shape"),
    ],
)
def test_the_exploration_script_checks_the_active_set_it_loads(tmp_path, asi, message):
    """The job side: ``mlip-trainer-explore`` refuses the file before pyace loads it (a NaN one failed with "Out of
    range float values are not JSON compliant"); the real active set is still accepted."""
    from aiida_mlip_trainer.tools.explore import ace_calculator

    (tmp_path / "bad.asi").write_bytes(asi)
    with pytest.raises(ActiveSetError, match=message):
        ace_calculator(str(POTENTIAL), str(tmp_path / "bad.asi"), None)
    _, ace = ace_calculator(str(POTENTIAL), str(ACTIVE_SET), None)
    atoms = argon_start()
    atoms.calc = ace
    atoms.get_potential_energy()
    assert 0.0 < float(np.max(ace.results["gamma"])) < 5.0


def test_the_real_active_set_passes_and_a_lying_element_attribute_does_not(tmp_path):
    assert set(check_active_set(ACTIVE_SET.read_bytes(), {"Ar": {"num_functions": 36, "ndensity": 1}})) == {"Ar"}
    assert tampered(_with_asi(LJ), tmp_path).verify().has_active_set
    node = tampered(_with_asi(), tmp_path, attributes={"elements": ["Cu"]})
    with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*'elements' \['Cu'\] but potential"):
        node.verify()


def test_a_yace_flag_that_lies_is_refused(tmp_path):
    node = tampered(_with_asi(), tmp_path, attributes={"has_yace": True})
    with pytest.raises(PotentialError, match="attribute 'has_yace' is True but the node has no potential.yace"):
        node.verify()


# ------------------------------------------------------------------------------------------- reference energy
def _yaml_with_reference(text: str) -> bytes:
    recorded = json.dumps(text).encode()
    return POTENTIAL.read_bytes().replace(b"metadata:\n", b"metadata:\n  reference_energy: " + recorded + b"\n", 1)


UNBOUNDED = [
    '{"Ar": ' * 5000 + "1" + "}" * 5000,
    "[" * 100_000 + "]" * 100_000,
    "[" * 3000 + "]" * 3000,  # short, and still deeper than json.loads can recurse
    '{"Ar": {"Ar": -1.0}}',
    "{" + ", ".join(f'"X{i}": 0.0' for i in range(2000)) + "}",  # flat, but no potential has 2000 elements
]


@pytest.mark.parametrize("text", UNBOUNDED, ids=["deep-object", "deep-list", "deep-short", "nested-two", "long"])
def test_a_nested_reference_energy_is_refused_with_a_message(tmp_path, text, explore_code):  # noqa: F811
    """A deeply nested ``reference_energy`` in the potential's metadata raised RecursionError; now only a flat
    mapping (or a number, or a preset name) of at most 10 000 characters is parsed."""
    yaml = _yaml_with_reference(text)
    with pytest.raises(ValueError, match="not a number, a flat dictionary of energies per element or a preset"):
        PacePotentialData(yaml)
    node = _rehashed(_with_asi(), tmp_path, yaml=yaml)
    with pytest.raises(PotentialError, match=rf"PacePotentialData<{node.pk}> .*not a number, a flat dictionary"):
        node.reference_energy  # noqa: B018 - the property is what predictions and fine-tuning read
    starts = TrainingSetData([argon_start()], labelled=False).store()
    _refused(lambda: _explore(explore_code, node, starts), "not a number, a flat dictionary", node)


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"Ar": -1.5}', {"Ar": -1.5}), ('{"Ar": -1.5, "shift": 0.5}', {"Ar": -2.0}), ("-0.25", {"Ar": -0.25})],
)
def test_a_flat_reference_energy_or_a_single_number_is_read(text, expected):
    assert PacePotentialData(_yaml_with_reference(text)).store().reference_energy == expected


def test_a_reference_energy_that_is_not_a_number_is_refused():
    with pytest.raises(ValueError, match=r"reference energy of 'Ar' must be a finite number"):
        PacePotentialData(_yaml_with_reference('{"Ar": "}{["}'))


def test_pace_activeset_output_that_is_singular_is_an_exit_code(tmp_path, parse_job, fitted_potential, argon_sets):  # noqa: F811
    """The parser refuses what PacePotentialData would refuse: an exit code, not a parser that raises."""
    import shutil

    from aiida_mlip_trainer.calculations.pace_activeset import PaceActivesetCalculation

    folder = tmp_path / "retrieved"
    shutil.copytree(FIXTURES / "pace_activeset_success", folder)
    (folder / "potential.asi").write_bytes(_npz(Ar=np.zeros((36, 36))))
    inputs = {"potential": fitted_potential, "training_set": argon_sets["train"]}
    _, calcfunction = parse_job("mlip_trainer.pace_activeset", folder, inputs)
    assert calcfunction.exit_status == PaceActivesetCalculation.exit_codes.ERROR_INVALID_ACTIVE_SET.status
    assert "element 'Ar': the matrix is singular" in calcfunction.exit_message


def test_a_non_linear_active_set_is_accepted_but_not_mixed_with_a_linear_one():
    """``pace_activeset -f`` writes matrices of side num_functions × ndensity; pyace needs one kind for all elements."""
    layout = {"Ar": {"num_functions": 36, "ndensity": 2}, "Cu": {"num_functions": 10, "ndensity": 2}}
    assert set(check_active_set(_npz(Ar=np.eye(72), Cu=np.eye(20)), layout)) == {"Ar", "Cu"}
    assert set(check_active_set(_npz(Ar=np.eye(36), Cu=np.eye(10)), layout)) == {"Ar", "Cu"}
    with pytest.raises(ActiveSetError, match="mixes linear and non-linear"):
        check_active_set(_npz(Ar=np.eye(72), Cu=np.eye(10)), layout)
    with pytest.raises(ActiveSetError, match=r"expected float \(36, 36\) or \(72, 72\)"):
        check_active_set(_npz(Ar=np.eye(50), Cu=np.eye(10)), layout)
