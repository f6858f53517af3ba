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


def _with_reference(text: str, recorded: str) -> bytes:
    """The fixture potential as a fit with pacemaker's ``data: reference_energy`` would have written it."""
    return text.replace("metadata:\n", f"metadata:\n  reference_energy: '{recorded}'\n", 1).encode()


def test_reference_energy_is_added_back_by_the_calculator_and_the_yace(argon_structures, tmp_path):
    """pacemaker fits energy - sum E0 and records E0 in the metadata (``auto`` adds a shift per atom); the node's
    calculator and its .yace (whose E0 pace_yaml2yace leaves at zero) must both add E0 - shift back per atom."""
    import shutil
    import subprocess

    from pyace import PyACECalculator

    plain = PacePotentialData(POTENTIAL)
    converted = tmp_path / "converted.yace"
    subprocess.run([shutil.which("pace_yaml2yace"), str(POTENTIAL), "-o", str(converted)], check=True)
    yace = converted.read_text()
    assert "E0: [0]" in yace
    node = PacePotentialData(
        _with_reference(POTENTIAL.read_text(), '{"Ar": -107.25, "shift": 0.5}'), yace=yace.encode()
    ).store()
    assert node.reference_energy == {"Ar": -107.75}
    assert node.base.attributes.get("reference_energy") == {"Ar": -107.75}  # queryable
    assert plain.reference_energy == {} and plain.base.attributes.get("reference_energy") == {}

    atoms = argon_structures["test"][0].copy()
    atoms.calc = plain.get_calculator()
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    atoms.calc = node.get_calculator()
    assert atoms.get_potential_energy() == pytest.approx(energy - 107.75 * len(atoms), abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), forces, atol=1e-10)

    # The .yace of the node carries E0: pyace (as LAMMPS' pair_style pace) reading it predicts the same energy.
    assert "E0: [-107.75]" in node.read_file("potential.yace").decode()
    written = node.write_files(tmp_path)
    atoms.calc = PyACECalculator(str(written["yace"]))
    assert atoms.get_potential_energy() == pytest.approx(energy - 107.75 * len(atoms), abs=1e-4)


@pytest.mark.parametrize(
    ("recorded", "message"),
    [('{"Ar": "-1; import os"}', "must be a finite number"), ("NaN_PRESET", "unknown reference energy")],
)
def test_a_reference_energy_that_cannot_be_added_back_is_refused(recorded, message):
    with pytest.raises(ValueError, match=message):
        PacePotentialData(_with_reference(POTENTIAL.read_text(), recorded))
