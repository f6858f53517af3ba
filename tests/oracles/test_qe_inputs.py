"""Quantum ESPRESSO without pw.x: the units and signs of the adapter, the allowlist of pw.x parameters from data, the
QE oracle's description and what a tampered one may not carry, and the comparison of DFT settings of an import."""

import io
import pathlib

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlip_trainer.formats.cp2k import kpoint_mesh
from aiida_mlip_trainer.formats.quantumespresso import (
    PSEUDO_FOLDER,
    PSEUDOPOTENTIALS,
    PwOutputError,
    check_pw_parameters,
    kpoint_spacing,
    read_pw_labels,
)
from aiida_mlip_trainer.oracles import qe_oracle, validate_oracle
from aiida_mlip_trainer.physics.dft_settings import describe_settings_groups, group_by_settings
from aiida_mlip_trainer.workflows import import_processes

GPA = 160.21766208  # GPa per eV/Å³


# ------------------------------------------------------------------------------------------------------ labels
def test_pw_labels_are_ev_ev_per_angstrom_and_ase_stress():
    """pw.x's stress (GPa, positive under compression) becomes ASE's (eV/Å³, negative under compression), in Voigt
    order; the last step of the trajectory is the label."""
    tensor = np.array([[1.0, 0.6, 0.5], [0.6, 2.0, 0.4], [0.5, 0.4, 3.0]])
    forces = np.arange(6.0).reshape(2, 3)
    labels = read_pw_labels(
        {"energy": -310.5, "energy_units": "eV"}, np.stack([forces * 0, forces]), np.stack([tensor * 0, tensor])
    )
    assert labels["energy"] == -310.5
    assert labels["forces"] == pytest.approx(forces)
    assert labels["stress"] == pytest.approx(-np.array([1.0, 2.0, 3.0, 0.4, 0.5, 0.6]) / GPA)
    assert read_pw_labels({"energy": 1.0}, forces)["stress"] is None


@pytest.mark.parametrize(
    "parameters, forces, fragment",
    [
        ({}, np.zeros((2, 3)), "no energy"),
        ({"energy": -1.0, "energy_units": "Ry"}, np.zeros((2, 3)), "in 'Ry'"),
        ({"energy": -1.0}, None, "no forces"),
        ({"energy": -1.0}, np.zeros((3, 3)), "the structure has 2 atoms"),
    ],
)
def test_unusable_pw_outputs_are_refused(parameters, forces, fragment):
    with pytest.raises(PwOutputError, match=fragment):
        read_pw_labels(parameters, forces, natoms=2)


def test_kpoint_spacing_is_the_inverse_of_the_mesh_rule():
    cell = bulk("Si", "diamond", a=5.47).cell.array
    for distance in (0.2, 0.3, 0.6, 1.0):
        mesh = kpoint_mesh(cell, [True] * 3, distance)
        assert kpoint_spacing(cell, [True] * 3, mesh) <= distance + 1e-12
    assert kpoint_spacing(cell, [True] * 3, [2, 2, 2]) == pytest.approx(2 * np.pi * np.sqrt(3) / 5.47 / 2)
    assert kpoint_spacing(cell, [False] * 3, [1, 1, 1]) is None


# --------------------------------------------------------------------------------------- parameters from data
@pytest.mark.parametrize(
    "parameters, fragment",
    [
        ({"CONTROL": {"outdir": "/tmp/elsewhere"}}, "CONTROL.outdir is not allowed"),
        ({"CONTROL": {"pseudo_dir": "/home/user"}}, "CONTROL.pseudo_dir is not allowed"),
        ({"CONTROL": {"prefix": "../x"}}, "CONTROL.prefix is not allowed"),
        ({"CONTROL": {"wfcdir": "/tmp"}}, "CONTROL.wfcdir is not allowed"),
        ({"CONTROL": {"calculation": "relax"}}, "CONTROL.calculation must be one of"),
        ({"SYSTEM": {"input_dft": "PBE'\n/\n&CONTROL outdir='/tmp'"}}, "SYSTEM.input_dft has the value"),
        ({"SYSTEM": {"ecutwfc": float("nan")}}, "SYSTEM.ecutwfc has the value"),
        ({"SYSTEM": {"starting_magnetization": {"Fe'": 0.5}}}, "not a plain name"),
        ({"CELL": {"cell_dofree": "all"}}, "namelist 'CELL' is not allowed"),
    ],
)
def test_pw_parameters_from_data_are_a_single_point_without_files(parameters, fragment):
    with pytest.raises(ValueError, match=fragment):
        check_pw_parameters(parameters)


# --------------------------------------------------------------------------------------------- the QE oracle
@pytest.fixture
def fake_pw(installed_code):
    """A code of the quantumespresso.pw plugin that never runs, and the oracle's pseudopotential family."""
    if not all((pathlib.Path(PSEUDO_FOLDER) / name).is_file() for name, _, _ in PSEUDOPOTENTIALS.values()):
        pytest.skip("no UPF files: scripts/qe.sh installs Debian's quantum-espresso-data as root")
    return installed_code("fake-pw", "/bin/true", "quantumespresso.pw")


def _validate(oracle, structure, job_options=None):
    return validate_oracle(
        oracle["process"],
        oracle["structure_port"],
        oracle["adapter"],
        oracle["inputs"],
        oracle.get("options"),
        job_options=job_options,
        structure=structure,
    )


def test_qe_oracle_is_the_protocol_with_the_family_and_passes(fake_pw):
    silicon = orm.StructureData(ase=bulk("Si", "diamond", a=5.47))
    oracle = qe_oracle(fake_pw, ["Si"], overrides={"kpoints_distance": 0.5})
    assert _validate(oracle, silicon) is None
    parameters = oracle["inputs"]["pw"]["parameters"].get_dict()
    assert parameters["SYSTEM"]["ecutwfc"] == 20.0 and parameters["SYSTEM"]["ecutrho"] == 80.0  # the family's
    assert parameters["CONTROL"]["tprnfor"] and parameters["CONTROL"]["tstress"]
    assert parameters["ELECTRONS"]["conv_thr"] == pytest.approx(1e-10)
    assert oracle["inputs"]["pw"]["pseudos"]["Si"].filename == "Si.pbe-rrkj.UPF"
    assert oracle["inputs"]["kpoints_distance"].value == 0.5
    # job-script text typed in Python reaches the calculation's options; from the description it is refused
    assert _validate(oracle, silicon, {"prepend_text": "module load qe"}) is None
    oracle["options"]["prepend_text"] = "id"
    assert "option 'prepend_text'" in _validate(oracle, silicon)
    with pytest.raises(ValueError, match="no pseudopotential in the family"):
        qe_oracle(fake_pw, ["Si", "Xe"])
    with pytest.raises(ValueError, match="not the string"):
        qe_oracle(fake_pw, "Si")


def test_a_tampered_qe_description_is_refused_before_any_job(fake_pw):
    """Parameters that name folders, and a pseudopotential whose file name would break pw.x's input file."""
    from aiida.plugins import DataFactory

    silicon = orm.StructureData(ase=bulk("Si", "diamond", a=5.47))
    oracle = qe_oracle(fake_pw, ["Si"])
    parameters = oracle["inputs"]["pw"]["parameters"].get_dict()
    parameters["CONTROL"]["outdir"] = "/tmp/elsewhere"
    oracle["inputs"]["pw"]["parameters"] = orm.Dict(parameters)
    assert "CONTROL.outdir is not allowed" in _validate(oracle, silicon)

    oracle = qe_oracle(fake_pw, ["Si"])
    content = (pathlib.Path(PSEUDO_FOLDER) / "Si.pbe-rrkj.UPF").read_bytes()
    renamed = DataFactory("pseudo.upf")(io.BytesIO(content), filename="Si.UPF'\nid")
    oracle["inputs"]["pw"]["pseudos"] = {"Si": renamed}
    assert "is not a plain file stem" in _validate(oracle, silicon)


def test_learn_yaml_takes_a_qe_oracle(fake_pw):
    """`learn launch`'s YAML: {type: qe, code, elements, protocol, overrides, options}, checked by qe_oracle."""
    from aiida_mlip_trainer.cli.learning_yaml import _oracle_from_yaml

    spec = {"type": "qe", "code": fake_pw.full_label, "elements": ["Si"], "overrides": {"kpoints_distance": 0.5}}
    oracle = _oracle_from_yaml(spec, "learn.yaml")
    assert oracle["process"] == "aiida.workflows:quantumespresso.pw.base" and oracle["adapter"] == "quantumespresso"
    assert oracle["inputs"]["kpoints_distance"].value == 0.5
    with pytest.raises(ValueError, match=r"learn.yaml: oracle: unknown qe oracle key\(s\) \['cutoff'\]"):
        _oracle_from_yaml({**spec, "cutoff": 30}, "learn.yaml")
    with pytest.raises(ValueError, match="CONTROL.outdir is not allowed"):
        _oracle_from_yaml({**spec, "overrides": {"pw": {"parameters": {"CONTROL": {"outdir": "/tmp"}}}}}, "learn.yaml")


# ----------------------------------------------------------------------------------------- settings of a set
def test_settings_group_by_equality_and_kpoint_density():
    qe20 = {"code": "qe", "ecutwfc": 20.0}
    records = [
        {"settings": qe20, "kpoint_spacing": 0.30},
        {"settings": qe20, "kpoint_spacing": 0.35},  # within 0.1 /Å
        {"settings": qe20, "kpoint_spacing": 0.60},  # another density
        {"settings": {**qe20, "ecutwfc": 25.0}, "kpoint_spacing": 0.30},
        {"settings": qe20, "kpoint_spacing": None},  # Γ only
    ]
    groups = group_by_settings(records)
    assert groups == [[0, 1], [2], [3], [4]]
    assert group_by_settings(records, kpoint_tolerance=0.5) == [[0, 1, 2], [3], [4]]
    text = describe_settings_groups(records, groups, ["a", "b", "c", "d", "e"])
    assert "group 1: 2 calculation(s) [a, b]: code=qe, ecutwfc=20.0; k-point spacing 0.300 /Å" in text
    assert "group 3: 1 calculation(s) [d]: code=qe, ecutwfc=25.0" in text and "group 4" in text and "Γ only" in text


def test_processes_that_give_no_label_are_listed():
    """A failed calculation, one still running and one no adapter reads: nothing to import, each with its reason."""
    failed = orm.CalcJobNode(process_type="aiida.calculations:quantumespresso.pw")
    failed.set_process_state("finished")
    failed.set_exit_status(410)
    failed.set_exit_message("The electronic minimization cycle did not reach self-consistency.")
    running = orm.CalcJobNode(process_type="aiida.calculations:quantumespresso.pw")
    running.set_process_state("running")
    other = orm.CalcJobNode(process_type="aiida.calculations:core.arithmetic.add")
    other.set_process_state("finished")
    other.set_exit_status(0)
    nodes = [node.store() for node in (failed, running, other)]
    with pytest.raises(ValueError) as refused:
        import_processes(nodes)
    message = str(refused.value)
    assert "failed (exit status 410: The electronic minimization" in message
    assert "not finished" in message
    assert "no adapter reads aiida.calculations:core.arithmetic.add" in message
