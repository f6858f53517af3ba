"""TrainingSetData: construction from every source, validation, storage without pickles, exports."""

import io
import zipfile

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mlip_trainer.data import TrainingSetData, TrainingSetError
from aiida_mlip_trainer.data.training_set import ARRAYS_FILENAME


def labelled(atoms, energy=-1.0, forces=None, stress=None):
    atoms = atoms.copy()
    forces = np.zeros((len(atoms), 3)) if forces is None else forces
    results = {"energy": energy, "forces": forces}
    if stress is not None:
        results["stress"] = stress
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def test_attributes_and_roundtrip(argon_structures):
    structures = argon_structures["train"]
    node = TrainingSetData(structures).store()
    loaded = orm.load_node(node.pk)

    assert loaded.num_structures == 16
    assert loaded.num_atoms == 16 * 32
    assert loaded.elements == ["Ar"]
    assert loaded.labelled and loaded.has_stress
    energies = np.array([a.get_potential_energy() / len(a) for a in structures])
    forces = np.concatenate([a.get_forces() for a in structures])
    attributes = loaded.base.attributes.all
    assert attributes["energy_per_atom_min"] == pytest.approx(energies.min())
    assert attributes["energy_per_atom_max"] == pytest.approx(energies.max())
    assert attributes["energy_per_atom_std"] == pytest.approx(energies.std())
    assert attributes["force_component_rms"] == pytest.approx(np.sqrt(np.mean(forces**2)))

    back = loaded.to_atoms()
    for original, restored in zip(structures, back, strict=True):
        assert restored.info["name"] == original.info["name"]
        np.testing.assert_array_equal(restored.positions, original.positions)
        np.testing.assert_array_equal(restored.cell.array, original.cell.array)
        assert restored.get_potential_energy() == original.get_potential_energy()
        np.testing.assert_array_equal(restored.get_forces(), original.get_forces())
        np.testing.assert_array_equal(restored.get_stress(), original.get_stress())


def test_queryable_attributes(argon_structures):
    node = TrainingSetData(argon_structures["test"]).store()
    query = orm.QueryBuilder().append(
        TrainingSetData,
        filters={"attributes.elements": {"contains": ["Ar"]}, "attributes.num_structures": 6, "id": node.pk},
    )
    assert query.count() == 1


def test_storage_is_not_a_pickle(argon_structures):
    """The repository holds an .npz of plain arrays that loads with allow_pickle=False."""
    node = TrainingSetData(argon_structures["test"]).store()
    assert node.base.repository.list_object_names() == [ARRAYS_FILENAME]
    content = node.base.repository.get_object_content(ARRAYS_FILENAME, mode="rb")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert all(name.endswith(".npy") for name in archive.namelist())
    with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
        assert all(arrays[key].dtype != object for key in arrays.files)


def test_content_hash_depends_on_content_only(argon_structures):
    first = TrainingSetData(argon_structures["test"])
    again = TrainingSetData(argon_structures["test"])
    changed = [labelled(a, a.get_potential_energy(), a.get_forces(), a.get_stress()) for a in argon_structures["test"]]
    changed[0].calc.results["energy"] += 1e-6
    assert first.content_hash == again.content_hash
    assert TrainingSetData(changed).content_hash != first.content_hash


def test_from_extxyz_and_ase_db(tmp_path):
    structures = []
    for index, strain in enumerate((0.98, 1.0, 1.02)):
        atoms = Atoms(
            "Cu4",
            scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
            cell=np.eye(3) * 3.6 * strain,
            pbc=True,
        )
        atoms.rattle(0.05, seed=index)
        atoms.calc = EMT()
        atoms.get_forces(), atoms.get_stress()  # computed, so that ASE writes the labels
        structures.append(atoms)
    from ase.io import write

    write(tmp_path / "cu.extxyz", structures)
    write(tmp_path / "cu.db", structures)
    from_xyz = TrainingSetData.from_file(tmp_path / "cu.extxyz")
    from_db = TrainingSetData.from_file(tmp_path / "cu.db")
    for node in (from_xyz, from_db):
        assert node.num_structures == 3 and node.elements == ["Cu"] and node.has_stress
        np.testing.assert_allclose(node.get_arrays()["energy"], [a.get_potential_energy() for a in structures])
    # and back out to a file ASE reads
    from_xyz.write(tmp_path / "out.extxyz")
    assert TrainingSetData.from_file(tmp_path / "out.extxyz").content_hash == from_xyz.content_hash


def test_labels_from_info_and_arrays():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    atoms.info["dft_energy"] = -31.5
    atoms.arrays["dft_forces"] = np.array([[0, 0, -0.1], [0, 0, 0.1]])
    node = TrainingSetData([atoms], energy_key="dft_energy", forces_key="dft_forces")
    assert node.get_arrays()["energy"][0] == -31.5
    assert not node.has_stress


def test_molecule_without_cell_is_valid():
    water = labelled(molecule("H2O"), energy=-14.2)
    node = TrainingSetData([water]).store()
    assert node.elements == ["H", "O"]
    assert not node.to_atoms()[0].pbc.any()


def test_pacemaker_pickle_roundtrip(tmp_path, argon_structures):
    node = TrainingSetData(argon_structures["test"])
    path = node.write_pacemaker_pickle(tmp_path / "data.pckl.gzip")
    with open(path, "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b"  # really gzip, as pacemaker expects
    frame = node.to_dataframe()
    assert {"ase_atoms", "energy", "energy_corrected", "forces", "stress", "name"} <= set(frame.columns)
    with pytest.raises(TrainingSetError, match="trusted=True"):
        TrainingSetData.from_pacemaker_pickle(path)
    imported = TrainingSetData.from_pacemaker_pickle(path, trusted=True)
    assert imported.content_hash == node.content_hash


def test_unlabelled_pool():
    pool = [Atoms("Ar", cell=np.eye(3) * 4, pbc=True), Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]])]
    node = TrainingSetData(pool, labelled=False).store()
    assert not node.labelled
    assert "energy_per_atom_min" not in node.base.attributes.all
    assert "energy" not in node.to_dataframe().columns


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: [], "empty"),
        (lambda: [Atoms("Ar", cell=np.eye(3) * 4, pbc=True)], r"structure 0 \('structure_0'\): no energy"),
        (
            lambda: [
                labelled(Atoms("Ar2", positions=[[0, 0, 0], [3, 0, 0]])),
                _with_info(Atoms("Ar", cell=np.eye(3) * 4, pbc=True), name="lonely", energy=-0.1),
            ],
            r"structure 1 \('lonely'\): no forces",
        ),
        (
            lambda: [_with_info(Atoms("Ar2", positions=[[0, 0, 0], [3, 0, 0]]), energy=-0.1, forces=np.zeros((2, 2)))],
            r"forces have shape \(2, 2\), expected \(2, 3\)",
        ),
        (
            lambda: [
                labelled(Atoms("Ar", cell=np.eye(3) * 4, pbc=True)),
                labelled(Atoms("Ar", cell=np.eye(3) * 4, pbc=True), energy=float("nan")),
            ],
            r"structure 1 .*energy contains NaN or inf",
        ),
        (
            lambda: [
                labelled(Atoms("Ar2", positions=[[0, 0, 0], [3, 0, 0]]), forces=np.array([[0, 0, 0], [np.inf, 0, 0]]))
            ],
            r"structure 0 .*forces contains NaN or inf \(atom 1\)",
        ),
        (lambda: [labelled(Atoms("X2", positions=[[0, 0, 0], [1, 0, 0]]))], "atomic number 0, which is not"),
        (
            lambda: [
                labelled(Atoms("Ar", cell=np.eye(3) * 4, pbc=True)),
                labelled(Atoms(numbers=[18, 119], positions=[[0, 0, 0], [2, 0, 0]])),
            ],
            r"structure 1 .*atom 1 has atomic number 119",
        ),
        (lambda: [labelled(Atoms("Ar", pbc=True))], "periodic along a direction whose cell vector is zero"),
        (
            lambda: [
                labelled(Atoms("Ar", cell=np.eye(3) * 4, pbc=True), stress=np.zeros(6)),
                labelled(Atoms("Ar", cell=np.eye(3) * 4, pbc=True)),
            ],
            "structure 1 .*has no stress while others do",
        ),
    ],
)
def test_bad_input_is_refused_with_the_structure_named(make, message):
    with pytest.raises(TrainingSetError, match=message):
        TrainingSetData(make())


def _with_info(atoms, name=None, energy=None, forces=None):
    if name is not None:
        atoms.info["name"] = name
    if energy is not None:
        atoms.info["energy"] = energy
    if forces is not None:
        atoms.arrays["forces"] = forces
    return atoms
