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
        (
            lambda: [Atoms("Ar", cell=np.eye(3) * 4, pbc=True)],
            r"structure 0 \('structure_0'\): no energy .*; pass labelled=False for an unlabelled pool$",
        ),
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


# --------------------------------------------------------------------------------- geometry and labels (issue 9)
def _cu(positions=None, cell=None, pbc=True, energy=-3.5, forces=None, name=None):
    atoms = Atoms(
        "Cu2", positions=positions if positions is not None else [[0, 0, 0], [1.8, 1.8, 0]], cell=cell, pbc=pbc
    )
    if cell is None and pbc is not False:
        atoms.cell = np.eye(3) * 3.6
    if name is not None:
        atoms.info["name"] = name
    return labelled(atoms, energy=energy, forces=forces)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: [_cu(), _cu(pbc=[True, True, False], name="slab")],
            r"structure 1 \('slab'\): pbc \(True, True, False\) is mixed; pacemaker fits only fully periodic or "
            r"non-periodic structures: pad .* with vacuum",
        ),
        (
            lambda: [_cu(positions=[[0, 0, 0], [0.05, 0, 0]], name="dup")],
            r"structure 0 \('dup'\): atoms 0 and 1 are 0.05 Å apart .*min_distance=0.1 Å",
        ),
        (  # closer through the periodic boundary than inside the cell
            lambda: [_cu(positions=[[0.01, 1, 1], [3.55, 1, 1]], name="image")],
            r"structure 0 \('image'\): atoms 0 and 1 are 0.06 Å apart \(periodic images included\)",
        ),
        (
            lambda: [_cu(positions=[[0, 0, 0], [0, 0, 0.02]], pbc=False, cell=np.zeros((3, 3)), name="molecule")],
            r"structure 0 \('molecule'\): atoms 0 and 1 are 0.02 Å apart",
        ),
        (
            lambda: [_cu(cell=[[3.6, 0, 0], [3.6, 0, 0], [0, 0, 3.6]], name="flat")],
            r"structure 0 \('flat'\): the periodic cell is flat or degenerate",
        ),
        (
            lambda: [_cu(), _cu(energy=1e30, name="huge")],
            r"structure 1 \('huge'\): energy 1e\+30 eV is 5e\+29 eV/atom .*max_energy_per_atom=1e\+07",
        ),
        (
            lambda: [_cu(forces=np.array([[0, 0, 0], [0, 2e5, 0]]), name="kick")],
            r"structure 0 \('kick'\): atom 1 has a force of 2e\+05 eV/Å, beyond max_force=1e\+05",
        ),
        (
            lambda: [_cu(name="two\nlines")],
            r"structure 0 \('two\\nlines'\): the name contains a line break",
        ),
    ],
)
def test_unfittable_geometry_and_labels_are_refused_naming_the_structure(make, message):
    with pytest.raises(TrainingSetError, match=message):
        TrainingSetData(make())


def test_the_suggested_fix_for_a_slab_is_accepted():
    slab = Atoms("Cu2", positions=[[0, 0, 0], [1.8, 1.8, 0]], cell=np.eye(3) * 3.6, pbc=[True, True, False])
    slab.center(vacuum=10.0, axis=2)
    slab.pbc = True
    assert TrainingSetData([labelled(slab)]).num_structures == 1


def test_thresholds_can_be_overridden_and_are_recorded():
    close = [_cu(positions=[[0, 0, 0], [0.05, 0, 0]]), _cu(energy=-2e7)]
    node = TrainingSetData(close, min_distance=0.01, max_energy_per_atom=2e7).store()
    assert node.base.attributes.get("checks") == {"min_distance": 0.01, "max_energy_per_atom": 2e7, "max_force": 1e5}
    # a derived set is built with the same thresholds
    derived = TrainingSetData(arrays=node.get_arrays(), **node.checks)
    assert derived.content_hash == node.content_hash
    with pytest.raises(TrainingSetError, match="closer than min_distance=0.1"):
        TrainingSetData(arrays=node.get_arrays())
    assert TrainingSetData([close[0]], min_distance=None).num_structures == 1
    with pytest.raises(TrainingSetError, match="max_force must be a finite number >= 0"):
        TrainingSetData(close, max_force=-1)


def test_names_are_printed_as_plain_strings():
    """Not as np.str_('x'): the messages of arrays-built sets name structures like the others."""
    arrays = {key: value for key, value in _arrays_of([_cu(name="x"), _cu(energy=float("nan"), name="y")]).items()}
    with pytest.raises(TrainingSetError) as error:
        TrainingSetData(arrays=arrays)
    assert "structure 1 ('y')" in str(error.value) and "np.str_" not in str(error.value)


def _arrays_of(structures):
    from aiida_mlip_trainer.physics.training_arrays import arrays_from_atoms

    return arrays_from_atoms(structures)


# ------------------------------------------------------------------------------------------ labels kept (issue 9)
def _pacemaker_frame(structures, references):
    """A DataFrame as pace_collect writes it: total `energy`, and `energy_corrected` less per-element references."""
    import pandas as pd

    energy = [a.get_potential_energy() for a in structures]
    shift = [sum(references[s] for s in a.get_chemical_symbols()) for a in structures]
    return pd.DataFrame(
        {
            "name": [a.info["name"] for a in structures],
            "ase_atoms": [a.copy() for a in structures],
            "energy": energy,
            "energy_corrected": [e - s for e, s in zip(energy, shift, strict=True)],
            "forces": [a.get_forces() for a in structures],
            "energy_corrected_per_atom": [(e - s) / len(a) for e, s, a in zip(energy, shift, structures, strict=True)],
            "w_energy": [1.0] * len(structures),
        }
    )


def _alloy(count=6):
    from ase.build import bulk

    structures = []
    rng = np.random.default_rng(3)
    for index in range(count):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        symbols = atoms.get_chemical_symbols()
        for k in rng.choice(4, size=index % 4, replace=False):
            symbols[k] = "Ni"
        atoms.set_chemical_symbols(symbols)
        atoms.rattle(0.05, seed=index)
        atoms.calc = EMT()
        atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=atoms.get_potential_energy(), forces=atoms.get_forces())
        atoms.info["name"] = f"alloy_{index}"
        structures.append(atoms)
    return structures


def test_both_energy_columns_of_a_pacemaker_pickle_are_kept(tmp_path):
    """It kept only `energy_corrected` (as `energy`) and dropped `energy` without a word."""
    structures = _alloy()
    references = {"Cu": -1500.25, "Ni": -1700.5}
    frame = _pacemaker_frame(structures, references)
    path = tmp_path / "data.pckl.gzip"
    frame.to_pickle(path, compression="gzip", protocol=4)
    node = TrainingSetData.from_pacemaker_pickle(path, trusted=True).store()
    attributes = node.base.attributes.all
    assert attributes["energy_column"] == "energy_corrected"
    np.testing.assert_allclose(node.get_arrays()["energy"], frame["energy_corrected"])
    other = attributes["other_energy"]
    assert other["column"] == "energy"
    assert other["per_element_shift"] == pytest.approx(references)
    np.testing.assert_array_equal(node.get_other_energies()["energy"], frame["energy"].to_numpy())
    assert attributes["dropped_columns"] == ["energy_corrected_per_atom", "w_energy"]

    total = TrainingSetData.from_dataframe(frame, energy_column="energy")
    assert total.base.attributes.get("energy_column") == "energy"
    np.testing.assert_allclose(total.get_arrays()["energy"], frame["energy"])
    assert total.base.attributes.get("other_energy")["per_element_shift"] == pytest.approx(
        {key: -value for key, value in references.items()}
    )


def test_a_shift_that_is_not_per_element_is_kept_per_structure():
    structures = _alloy()
    frame = _pacemaker_frame(structures, {"Cu": -1.0, "Ni": -2.0})
    frame.loc[2, "energy_corrected"] += 0.5  # one structure off any per-element rule
    node = TrainingSetData.from_dataframe(frame)
    assert node.base.attributes.get("other_energy") == {"column": "energy", "per_element_shift": None}
    np.testing.assert_array_equal(node.get_other_energies()["energy"], frame["energy"].to_numpy())
