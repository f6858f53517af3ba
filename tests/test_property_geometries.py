"""Properties as geometries plus single points (physics.property_geometries), with EMT copper: each property against
an independent route (the functions of physics.properties, hand slopes, ASE's own phonon code), the oracle side
recomputed from labels, and the settings' checks."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mlip_trainer.physics.properties import equation_of_state, surface_energy, vacancy_formation_energy
from aiida_mlip_trainer.physics.property_geometries import (
    check_property_settings,
    compute_properties,
    plan_names,
    properties_from_labels,
    property_rows,
)

from .test_properties import _emt_by_hand

SETTINGS = {
    "eos": {},
    "elastic": {},
    "vacancy": {"supercell": [2, 2, 2]},
    "surface": {"miller": [[1, 1, 1]], "layers": 4},
    "phonons": {},
}


@pytest.fixture(scope="module")
def emt_copper():
    return compute_properties(bulk("Cu", "fcc", a=3.65, cubic=True), EMT(), SETTINGS)


def test_every_property_of_emt_copper_matches_an_independent_route(emt_copper):
    properties, plan, geometries = emt_copper
    start = bulk("Cu", "fcc", a=3.65, cubic=True)
    hand = _emt_by_hand()
    for name in ("C11", "C12", "C44"):  # least squares with a constant term against central differences
        assert properties["elastic"][name] == pytest.approx(hand[name], rel=0.01), name
    eos = equation_of_state(start, EMT())
    for name in ("a0", "B0", "E0"):
        assert properties["eos"][name] == pytest.approx(eos[name], rel=1e-6), name
    assert properties["eos"]["a0"] == pytest.approx(hand["lattice_constant"], abs=1e-3)
    assert properties["eos"]["B0"] == pytest.approx((hand["C11"] + 2 * hand["C12"]) / 3, rel=0.02)
    vacancy = vacancy_formation_energy(bulk("Cu", "fcc", a=properties["lattice_constant"], cubic=True).repeat(2), EMT())
    assert properties["vacancy"]["unrelaxed"] == pytest.approx(vacancy["unrelaxed"], abs=1e-6)
    assert properties["vacancy"]["relaxed"] == pytest.approx(vacancy["relaxed"], abs=2e-3)
    assert properties["vacancy"]["relaxed"] < properties["vacancy"]["unrelaxed"]
    (surface,) = properties["surface"]
    reference = surface_energy(start, EMT(), (1, 1, 1), layers=4)
    assert surface["unrelaxed"] == pytest.approx(reference["unrelaxed"], rel=1e-4)
    assert surface["relaxed"] == pytest.approx(reference["relaxed"], rel=1e-3)
    # every geometry the plan names is there, once
    names = [atoms.info["name"] for atoms in geometries]
    assert sorted(set(plan_names(plan))) == sorted(names)


def test_phonons_match_ase_phonons_at_commensurate_q_points(emt_copper, tmp_path):
    """phonopy on the conventional 2x2x2 supercell against ASE's own finite differences on a primitive 2x2x2 one:
    X and L are commensurate with both, so the two agree up to the displacement's anharmonic part."""
    from ase.phonons import Phonons
    from ase.units import _e, _hplanck

    properties, _, _ = emt_copper
    primitive = bulk("Cu", "fcc", a=properties["lattice_constant"])
    phonons = Phonons(primitive, EMT(), supercell=(2, 2, 2), delta=0.01, name=str(tmp_path / "phonon"))
    phonons.run()
    phonons.read(acoustic=True)
    qpoints = properties["phonons"]["qpoints"]  # reduced coordinates of the primitive reciprocal lattice, as ASE's
    ours = np.array(properties["phonons"]["frequencies"])
    energies = phonons.band_structure(np.asarray(qpoints), verbose=False)  # eV
    theirs = np.sort(energies, axis=1) * _e / _hplanck / 1e12  # THz
    assert ours.shape == theirs.shape == (2, 3)
    np.testing.assert_allclose(ours, theirs, rtol=0.01)
    assert (ours > 1).all()  # no acoustic zero away from Γ: the q-points are not Γ in disguise


def test_the_oracle_side_recomputes_every_property_from_labels_on_the_same_geometries(emt_copper):
    properties, plan, geometries = emt_copper

    def labelled(calculator):
        result = {}
        for atoms in geometries:
            copy = atoms.copy()
            copy.calc = calculator
            values = {"energy": copy.get_potential_energy(), "forces": copy.get_forces(), "stress": copy.get_stress()}
            copy.calc = SinglePointCalculator(copy, **values)
            result[atoms.info["name"]] = copy
        return result

    same = properties_from_labels(plan, labelled(EMT()))
    rows = property_rows(properties, same)
    assert len(rows) == 3 + 3 + 1 + 1 + 6  # eos, elastic, vacancy, one surface, 2 q-points x 3 branches
    for row in rows:
        assert abs(row["reference_error"]) < 1e-9, row
        assert (
            row["reference_relative_error"] is None
            if row["property"] == "E0"
            else abs(row["reference_relative_error"]) < 1e-9
        )
    # another calculator on the same geometries: a different material, and the table says so
    other = properties_from_labels(plan, labelled(LennardJones(sigma=2.3, epsilon=0.4, rc=6.0)))
    errors = {row["property"]: row["reference_relative_error"] for row in property_rows(properties, other)}
    assert abs(errors["B0"]) > 0.1 and abs(errors["C44"]) > 0.1
    # the elastic fit on geometries away from the oracle's own lattice: its residual stress is a fitted constant
    assert abs(other["elastic"]["residual_pressure"]) > 1  # GPa
    with pytest.raises(KeyError, match="vacancy_relaxed"):
        properties_from_labels(plan, {k: v for k, v in labelled(EMT()).items() if k != "vacancy_relaxed"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "at least one property"),
        ({"bandgap": {}}, "unknown property settings"),
        ({"eos": {"strain": 0.5}}, r"eos.strain must lie in \(0, 0.2\]"),
        ({"eos": {"points": 3}}, "eos.points must be an integer in"),
        ({"elastic": {"points": True}}, "elastic.points must be an integer"),
        ({"vacancy": {"supercell": [2, 2]}}, "vacancy.supercell must be a list of three"),
        ({"vacancy": {"supercell": [2, 2, 20]}}, r"vacancy.supercell\[2\] must be an integer in \[1, 8\]"),
        ({"surface": {"miller": [[0, 0, 0]]}}, "must not be"),
        ({"surface": {"miller": [[1, 1, 1]] * 9}}, "list of 1 to 8"),
        ({"phonons": {"qpoints": [[0.5, "x", 0]]}}, "finite number"),
        ({"md": {"temperature": float("nan")}}, "finite number"),
        ({"eos": {"strian": 0.1}}, r"eos: unknown keys \['strian'\]"),
        ({"eos": []}, "must be a dict"),
    ],
)
def test_settings_are_typed_and_bounded(settings, message):
    with pytest.raises(ValueError, match=message):
        check_property_settings(settings)


def test_settings_fill_the_defaults_and_oversized_supercells_are_refused():
    checked = check_property_settings({"eos": {"points": 9}})
    assert checked == {"relax": {"fmax": 1e-5, "steps": 200}, "eos": {"strain": 0.03, "points": 9}}
    with pytest.raises(ValueError, match="more than 1000"):
        compute_properties(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), {"vacancy": {"supercell": [8, 8, 8]}})
    with pytest.raises(ValueError, match="conventional cubic cell"):
        compute_properties(bulk("Cu", "fcc", a=3.6), EMT(), {"elastic": {}})
