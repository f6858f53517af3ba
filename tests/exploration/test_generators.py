"""The structure generators of an exploration protocol (physics/generators.py, no AiiDA) and their calcfunction:
seeded (the same specification gives the same cells, another seed others) and physically what was asked."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_mlip_trainer.physics.generators import check_generator, generate, has_vacuum


def copper(name: str = "cu"):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    atoms.info["name"] = name
    return atoms


def test_strain_scales_the_cell_by_what_was_asked():
    start = copper()
    cells = generate([start], {"type": "strain", "strains": [-0.05, 0.05]})
    assert [c.info["name"] for c in cells] == ["cu@strain0", "cu@strain1"]
    for cell, strain in zip(cells, (-0.05, 0.05), strict=True):
        assert np.allclose(cell.cell.array, start.cell.array * (1 + strain))
        assert np.allclose(cell.get_scaled_positions(), start.get_scaled_positions())  # atoms move with the cell
        assert cell.get_volume() == pytest.approx(start.get_volume() * (1 + strain) ** 3)
        assert cell.info["generator"]["strain"] == strain
    (uniaxial,) = generate([start], {"type": "strain", "strains": [0.03], "axes": [2]})
    assert np.allclose(np.diag(uniaxial.cell.array) / np.diag(start.cell.array), [1, 1, 1.03])


@pytest.mark.parametrize("plane, i, j", [("xy", 0, 1), ("xz", 0, 2), ("yz", 1, 2)])
def test_shear_strain_is_what_was_asked(plane, i, j):
    start = copper()
    (cell,) = generate([start], {"type": "shear", "shears": [0.07], "plane": plane})
    # the deformation gradient that maps the start's cell onto the new one: F = 1 + γ e_i ⊗ e_j
    deformation = np.linalg.solve(start.cell.array, cell.cell.array).T
    expected = np.eye(3)
    expected[i, j] = 0.07
    assert np.allclose(deformation, expected)
    assert cell.get_volume() == pytest.approx(start.get_volume())  # simple shear keeps the volume
    assert np.allclose(cell.get_scaled_positions(), start.get_scaled_positions())


def test_vacancy_removes_atoms_reproducibly_for_a_seed():
    start = copper()
    spec = {"type": "vacancy", "count": 1, "samples": 3, "seed": 5}
    cells = generate([start], spec)
    assert [len(c) for c in cells] == [len(start) - 1] * 3
    again = generate([start], spec)
    assert all(np.array_equal(a.positions, b.positions) for a, b in zip(cells, again, strict=True))
    other = generate([start], {**spec, "seed": 6})
    assert [c.info["generator"]["removed"] for c in cells] != [c.info["generator"]["removed"] for c in other]
    for cell in cells:  # the atoms left are the start's, less the removed one
        (removed,) = cell.info["generator"]["removed"]
        assert np.allclose(cell.positions, np.delete(start.positions, removed, axis=0))
    with pytest.raises(ValueError, match="cannot remove 32"):
        generate([start], {"type": "vacancy", "count": 32})


def test_interstitial_adds_an_atom_away_from_the_others():
    start = copper()
    (cell,) = generate([start], {"type": "interstitial", "count": 2, "min_distance": 1.6, "seed": 3})
    assert len(cell) == len(start) + 2 and cell.get_chemical_symbols()[-2:] == ["Cu", "Cu"]
    distances = cell.get_all_distances(mic=True)
    for index in (-2, -1):
        assert np.sort(distances[index])[1] >= 1.6
    assert np.allclose(cell.positions[:-2], start.positions)


# fcc: the spacing of the atomic planes along the surface normal is a/√3 for (111), a/2 for (100), a/(2√2) for (110)
@pytest.mark.parametrize(
    "miller, spacing", [([1, 1, 1], 3.61 / np.sqrt(3)), ([1, 0, 0], 3.61 / 2), ([1, 1, 0], 3.61 / (2 * np.sqrt(2)))]
)
def test_slab_has_vacuum_along_z_and_the_asked_surface(miller, spacing):
    start = bulk("Cu", "fcc", a=3.61, cubic=True)
    start.info["name"] = "cu"
    (slab,) = generate([start], {"type": "slab", "miller": miller, "layers": 3, "vacuum": 8.0})
    assert slab.pbc.all() and has_vacuum(slab) and not has_vacuum(start)  # periodic for pacemaker, vacuum along z
    assert np.allclose(slab.cell[2, :2], 0) and np.allclose(slab.cell[:2, 2], 0)  # z is the surface normal
    z = slab.positions[:, 2]
    assert z.min() == pytest.approx(8.0, abs=1e-6) and slab.cell[2, 2] - z.max() == pytest.approx(8.0, abs=1e-6)
    planes = np.unique(np.round(z, 6))
    assert np.allclose(np.diff(planes), spacing)  # the atomic planes of the asked surface
    assert slab.info["generator"]["miller"] == miller
    slab.pbc = [True, True, False]
    with pytest.raises(ValueError, match="not a bulk cell"):
        generate([slab], {"type": "slab", "miller": miller})


def test_rattle_is_seeded_and_of_the_asked_size():
    start = copper().repeat((2, 2, 2))
    start.info["name"] = "cu"
    cells = generate([start], {"type": "rattle", "stdev": 0.1, "samples": 2, "seed": 4})
    displacements = [c.positions - start.positions for c in cells]
    assert np.std(displacements[0]) == pytest.approx(0.1, rel=0.1)
    assert not np.allclose(displacements[0], displacements[1])  # two samples, two draws
    again = generate([start], {"type": "rattle", "stdev": 0.1, "samples": 2, "seed": 4})
    assert np.array_equal(again[1].positions, cells[1].positions)


def test_substitution_replaces_the_asked_fraction():
    start = copper()
    cells = generate([start], {"type": "substitution", "element": "Ni", "fraction": 0.25, "samples": 2, "seed": 1})
    for cell in cells:
        symbols = cell.get_chemical_symbols()
        assert symbols.count("Ni") == 8 and symbols.count("Cu") == 24
        assert np.allclose(cell.positions, start.positions)
    assert cells[0].info["generator"]["substituted"] != cells[1].info["generator"]["substituted"]


def test_each_start_gets_its_own_draws():
    starts = [copper("a"), copper("b")]
    cells = generate(starts, {"type": "vacancy", "seed": 0})
    assert [c.info["name"] for c in cells] == ["a@vacancy0", "b@vacancy0"]
    assert cells[0].info["generator"]["removed"] != cells[1].info["generator"]["removed"] or not np.array_equal(
        cells[0].positions, cells[1].positions
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "melt"}, "a generator is a mapping with `type`"),
        ({"type": "strain"}, "give strains"),
        ({"type": "strain", "strains": [0.9]}, "must be a number in"),
        ({"type": "shear", "shears": [0.1], "plane": "xx"}, "plane must be one of"),
        ({"type": "slab", "miller": [0, 0, 0]}, "not all zero"),
        ({"type": "vacancy", "count": 1.5}, "count must be an integer"),
        ({"type": "substitution", "element": "Xx", "fraction": 0.1}, "chemical symbol"),
        ({"type": "rattle", "sigma": 0.1}, "unknown setting"),
    ],
)
def test_bad_specifications_are_refused_with_the_setting(spec, message):
    with pytest.raises(ValueError, match=message):
        check_generator(spec)


def test_the_calcfunction_records_each_generated_set(aiida_profile):
    from aiida import orm

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.workflows.functions.training_set import exploration_starts, generate_structures

    given = TrainingSetData([copper("a"), copper("b")], labelled=False).store()
    spec = orm.Dict({"type": "vacancy", "seed": 2})
    generated = generate_structures(given, spec)
    assert generated.creator.inputs.generator.pk == spec.pk  # the specification and its seed are in the graph
    assert list(generated.get_arrays()["names"]) == ["a@vacancy0", "b@vacancy0"]
    assert generated.get_arrays()["natoms"].tolist() == [31, 31]
    starts = exploration_starts(given=given, generated_00_vacancy=generated)
    assert starts["origins"].get_list() == ["given", "given", "generated_00_vacancy", "generated_00_vacancy"]
    assert starts["structures"].get_arrays()["natoms"].tolist() == [32, 32, 31, 31]


def test_the_cuni_protocol_makes_the_alloy_cells_it_describes():
    """The shipped `cuni` exploration protocol, from a random Cu-Ni cell: a Ni-richer and a Cu-richer cell (random
    substitution of a quarter of the sites, one way only), the cell strained ±5 %, a vacancy, a (111) slab with
    vacuum; and its conditions span 300 to 1500 K and ±5 GPa."""
    from aiida_mlip_trainer.tools.explore import check_settings
    from aiida_mlip_trainer.workflows.protocols import load_exploration_protocol

    protocol = load_exploration_protocol("cuni")
    start = copper("cuni")
    symbols = start.get_chemical_symbols()
    for index in np.random.default_rng(0).choice(len(start), 8, replace=False):
        symbols[index] = "Ni"
    start.set_chemical_symbols(symbols)
    made = {spec["type"] + spec.get("element", ""): generate([start], spec) for spec in protocol["generators"]}
    assert sorted(made) == ["slab", "strain", "substitutionCu", "substitutionNi", "vacancy"]
    nickel = np.array(start.get_chemical_symbols()) == "Ni"
    (richer,), (poorer,) = made["substitutionNi"], made["substitutionCu"]
    for cell, gains, loses in ((richer, "Ni", "Cu"), (poorer, "Cu", "Ni")):
        changed = np.array(cell.get_chemical_symbols()) != np.array(start.get_chemical_symbols())
        assert changed.any() and changed.sum() <= 8  # a quarter of 32 sites drawn, some already the element
        assert set(np.array(cell.get_chemical_symbols())[changed]) == {gains}
        assert set(np.array(start.get_chemical_symbols())[changed]) == {loses}
        assert np.allclose(cell.positions, start.positions)
    assert (np.array(richer.get_chemical_symbols()) == "Ni").sum() > nickel.sum()
    assert (np.array(poorer.get_chemical_symbols()) == "Ni").sum() < nickel.sum()
    volumes = [cell.get_volume() / start.get_volume() for cell in made["strain"]]
    assert volumes == pytest.approx([0.95**3, 1.05**3])
    (vacancy,) = made["vacancy"]
    assert len(vacancy) == 31 and not has_vacuum(vacancy)
    (slab,) = made["slab"]
    assert has_vacuum(slab) and set(slab.get_chemical_symbols()) == {"Cu", "Ni"}
    assert len(slab) == 64  # 2 layers of the 32-atom cell: 4 atomic planes, not a 96-atom cell per oracle call
    settings = check_settings(protocol["exploration"])
    conditions = {c["name"]: c for c in settings["conditions"]}
    assert max(t for c in conditions.values() for t in c["temperatures"]) == 1200
    assert conditions["heating_ramp"]["ramp_to"] == 1500
    assert conditions["npt_pressures"]["pressures"] == [-5.0, 5.0]


def test_the_silicon_protocol_keeps_every_cell_small_enough_for_dft():
    """The shipped `silicon` exploration protocol, from an 8-atom diamond cell: strained ±5 %, sheared, a vacancy and a
    (100) slab with vacuum, none over 16 atoms (DFT labels); 1 fs steps; the conditions of copper's."""
    from ase.build import bulk

    from aiida_mlip_trainer.tools.explore import check_settings
    from aiida_mlip_trainer.workflows.protocols import load_exploration_protocol

    protocol = load_exploration_protocol("silicon")
    start = bulk("Si", "diamond", a=5.43, cubic=True)
    start.info["name"] = "si8"
    made = {spec["type"]: generate([start], spec) for spec in protocol["generators"]}
    assert sorted(made) == ["shear", "slab", "strain", "vacancy"]
    assert [len(cell) for cells in made.values() for cell in cells] == [8, 8, 8, 7, 16]
    assert [cell.get_volume() / start.get_volume() for cell in made["strain"]] == pytest.approx([0.95**3, 1.05**3])
    (slab,) = made["slab"]
    assert has_vacuum(slab) and not any(has_vacuum(cell) for cell in made["strain"] + made["vacancy"])
    conditions = {c["name"]: c for c in check_settings(protocol["exploration"])["conditions"]}
    assert {c["timestep"] for c in conditions.values()} == {1.0}
    assert conditions["npt_pressures"]["pressures"] == [-5.0, 5.0] and conditions["heating_ramp"]["ramp_to"] == 1500
