"""GraceFSPotentialData: a GRACE-FS potential read by python-ace, hash-checked with its kind and checkpoint, with
the extrapolation grade from pace_activeset's .asi, the baseline added, and LAMMPS's grace/fs lines."""

import numpy as np
import pytest
import yaml

from aiida_mlip_trainer.data import GraceFSPotentialData, PacePotentialData, PotentialError
from aiida_mlip_trainer.physics.reference_data import copper_emt
from tests.conftest import FIXTURES

# A real GraceTrainCalculation's retrieved files (tests/integration/test_grace_train_real.py, EMT copper).
FIT = FIXTURES / "grace_train_success"
CHECKPOINT = {name: FIT / name for name in ("model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001")}
ZBL = {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}
# The E0 the fit subtracted (least squares, written by the plugin): the FS YAML leaves them out.
E0 = yaml.safe_load((FIT / "input.yaml").read_text())["data"]["reference_energy"]


@pytest.fixture
def potential():
    return GraceFSPotentialData(
        FIT / "FS_model.yaml", active_set=FIT / "FS_model.asi", checkpoint=CHECKPOINT, reference_energy=E0, baseline=ZBL
    ).store()


def test_attributes_read_by_python_ace(potential):
    assert isinstance(potential, PacePotentialData)  # every port that takes a potential takes it
    assert potential.elements == ["Cu"] and potential.cutoff == pytest.approx(5.0)
    attributes = potential.base.attributes
    assert attributes.get("model_kind") == "grace-fs" and potential.has_checkpoint and potential.has_active_set
    assert potential.basis_layout == {"Cu": {"num_functions": potential.num_functions, "ndensity": 1}}
    assert potential.reference_energy == E0 and set(E0) == {"Cu"}
    assert set(potential.checkpoint_files()) == set(CHECKPOINT)
    assert potential.verify() is potential


def test_the_calculator_predicts_emt_copper_with_the_grade_and_the_baseline(potential):
    structures = copper_emt(4, repeat=1, strain=0.03, rattle=0.05, seed=11)
    model = potential.get_ace_calculator()  # the FS YAML alone: energies less E0
    full = potential.get_calculator()  # + the baseline + E0
    stress_errors, stresses = [], []
    for atoms in structures:
        reference_energy, reference_stress = atoms.get_potential_energy(), atoms.get_stress()
        copy = atoms.copy()
        copy.calc = full
        energy, stress = copy.get_potential_energy(), copy.get_stress()
        assert abs(energy - reference_energy) / len(atoms) < 0.05  # eV/atom (without E0 added back: 0.36)
        stress_errors.append(stress - reference_stress)
        stresses.append(reference_stress)
        copy.calc = model  # the ZBL baseline is zero beyond 2 Å: the copper distances are ~2.5 Å
        assert copy.get_potential_energy() + len(atoms) * E0["Cu"] == pytest.approx(energy, abs=1e-8)
        gamma = model.results["gamma"]
        assert gamma.shape == (len(atoms),) and np.all(gamma > 0)
    # ASE's sign and units: the error is well below the stresses themselves (a flipped sign doubles them).
    assert np.sqrt(np.mean(np.square(stress_errors))) < 0.5 * np.sqrt(np.mean(np.square(stresses)))


def test_lammps_lines_are_grace_fs_over_the_baseline(potential):
    lines = potential.lammps_commands("potential.yaml")
    assert lines[0] == "pair_style hybrid/overlay grace/fs zbl 1.0 2.0"
    assert lines[1] == "pair_coeff * * grace/fs potential.yaml potential.asi Cu"
    alone = GraceFSPotentialData(FIT / "FS_model.yaml")
    assert alone.lammps_commands() == ["pair_style grace/fs", "pair_coeff * * potential.yaml Cu"]


def test_the_kind_and_the_checkpoint_are_in_the_hash(potential):
    without = GraceFSPotentialData(
        FIT / "FS_model.yaml", active_set=FIT / "FS_model.asi", reference_energy=E0, baseline=ZBL
    )
    assert without.content_hash != potential.content_hash and not without.has_checkpoint
    with pytest.raises(PotentialError, match="no gracemaker checkpoint"):
        without.checkpoint_files()
    with pytest.raises(ValueError, match="not a pacemaker potential"):
        PacePotentialData(FIT / "FS_model.yaml")  # an FS YAML is not an ACE potential


def test_an_altered_node_is_refused():
    node = GraceFSPotentialData(FIT / "FS_model.yaml", checkpoint=CHECKPOINT)
    node.base.repository.put_object_from_bytes(b"changed", "checkpoint.index")
    with pytest.raises(PotentialError, match="content_hash"):
        node.verify()
    node = GraceFSPotentialData(FIT / "FS_model.yaml")
    node.base.attributes.set("model_kind", "ace")
    with pytest.raises(PotentialError, match="model_kind"):
        node.verify()
