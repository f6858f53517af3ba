"""PacePotentialData: attributes read by pyace, de-duplication on the content hash, a ready ASE calculator."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlip_trainer.data import PacePotentialData
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"


def test_attributes_from_the_yaml():
    node = PacePotentialData(POTENTIAL).store()
    assert node.elements == ["Ar"]
    assert node.cutoff == pytest.approx(7.0)
    assert node.num_functions == 36
    assert node.baseline is None and not node.has_active_set
    assert node.get_yaml() == POTENTIAL.read_text()


def test_get_or_create_does_not_duplicate():
    def count(content_hash):
        return orm.QueryBuilder().append(PacePotentialData, filters={"attributes.content_hash": content_hash}).count()

    first = PacePotentialData.get_or_create(POTENTIAL)
    stored = count(first.content_hash)
    second = PacePotentialData.get_or_create(POTENTIAL.read_bytes())
    assert first.is_stored and second.uuid == first.uuid
    assert count(first.content_hash) == stored >= 1
    zbl = {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}
    other_baseline = PacePotentialData.get_or_create(POTENTIAL, baseline=zbl)
    assert other_baseline.uuid != first.uuid and other_baseline.baseline == zbl


def test_calculator_predicts(argon_structures):
    calc = PacePotentialData(POTENTIAL).get_calculator()
    atoms = argon_structures["test"][0].copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress()
    assert np.isfinite(energy) and forces.shape == (32, 3) and stress.shape == (6,)
    # the recorded fit is of the same LJ argon: energies agree with the reference to a few meV/atom
    reference = argon_structures["test"][0].get_potential_energy()
    assert abs(energy - reference) / len(atoms) < 0.005


def test_not_a_potential_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("species: [this is not a potential]\n")
    with pytest.raises(ValueError, match="not a pacemaker potential"):
        PacePotentialData(bad)
