"""Cubic elastic constants from any ASE calculator (physics.properties), against EMT copper worked out by hand here:
the zero-pressure lattice by bisection on the pressure, then central differences of ASE's stress over tiny strains."""

import numpy as np
import pytest
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.optimize import BFGS
from ase.units import GPa

from aiida_mlip_trainer.physics.properties import (
    cubic_elastic_constants,
    equation_of_state,
    md_stability,
    surface_energy,
    vacancy_formation_energy,
)


def _stress(lattice: float, strain: np.ndarray) -> np.ndarray:
    """ASE's stress (Voigt, GPa) of the EMT copper cube of side ``lattice`` deformed by (1 + ``strain``)."""
    atoms = bulk("Cu", "fcc", a=lattice, cubic=True)
    atoms.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
    atoms.calc = EMT()
    return atoms.get_stress() / GPa


def _emt_by_hand() -> dict[str, float]:
    low, high = 3.5, 3.7  # EMT copper: compressed (pressure > 0, ASE stress < 0) and stretched
    for _ in range(60):
        middle = (low + high) / 2
        low, high = (middle, high) if _stress(middle, np.zeros((3, 3)))[0] < 0 else (low, middle)
    lattice, step = (low + high) / 2, 1e-4
    normal, shear = np.zeros((3, 3)), np.zeros((3, 3))
    normal[0, 0] = step
    shear[1, 2] = shear[2, 1] = step / 2  # engineering shear strain γ_yz = step
    d_normal = (_stress(lattice, normal) - _stress(lattice, -normal)) / (2 * step)
    d_shear = (_stress(lattice, shear) - _stress(lattice, -shear)) / (2 * step)
    return {"C11": d_normal[0], "C12": d_normal[1], "C44": d_shear[3], "lattice_constant": lattice}


def test_cubic_elastic_constants_of_emt_copper_match_the_stress_strain_slopes():
    expected = _emt_by_hand()
    # Start away from equilibrium: the function relaxes the lattice itself.
    result = cubic_elastic_constants(bulk("Cu", "fcc", a=3.65, cubic=True), EMT())
    assert result["units"] == "GPa"
    assert result["lattice_constant"] == pytest.approx(expected["lattice_constant"], abs=1e-4)
    for name in ("C11", "C12", "C44"):
        # the fit spans ±0.2 % strain, the hand slope ±0.01 %: they agree to well under 1 %
        assert result[name] == pytest.approx(expected[name], rel=0.01), (name, result, expected)
    assert result["B"] == pytest.approx((expected["C11"] + 2 * expected["C12"]) / 3, rel=0.01)
    # EMT copper is a stable cubic crystal with C12 < C11 (the constants are not swapped or of the wrong sign)
    assert expected["C11"] > expected["C12"] > 0 and expected["C44"] > 0


def test_cubic_elastic_constants_refuse_what_is_not_a_cube():
    with pytest.raises(ValueError, match="cubic cell"):
        cubic_elastic_constants(bulk("Cu", "fcc", a=3.6), EMT())  # the primitive cell
    with pytest.raises(ValueError, match="points"):
        cubic_elastic_constants(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), points=1)


# ---------------------------------------------------------------------------------------------- equation of state
def test_equation_of_state_of_emt_copper_agrees_with_its_elastic_constants_and_its_lattice():
    """Birch–Murnaghan on EMT copper: B0 is (C11 + 2 C12)/3 of the stress–strain slopes by hand, a0 the lattice of
    zero pressure by hand, E0 EMT's energy per atom there."""
    expected = _emt_by_hand()
    result = equation_of_state(bulk("Cu", "fcc", a=3.65, cubic=True), EMT())
    assert result["a0"] == pytest.approx(expected["lattice_constant"], abs=2e-4)
    assert result["B0"] == pytest.approx((expected["C11"] + 2 * expected["C12"]) / 3, rel=0.01)
    at_a0 = bulk("Cu", "fcc", a=result["a0"], cubic=True)
    at_a0.calc = EMT()
    assert result["E0"] == pytest.approx(at_a0.get_potential_energy() / 4, abs=1e-5)
    assert result["V0"] == pytest.approx(result["a0"] ** 3 / 4, rel=1e-6)
    assert 3 < result["B0_prime"] < 7  # metals: about 4-6
    # sampled about the relaxed lattice: the middle sample is the lowest, the fit's E0 within its error of it
    energies = result["energies"]
    assert energies.index(min(energies)) == len(energies) // 2
    assert result["E0"] == pytest.approx(min(energies), abs=5e-5)
    with pytest.raises(ValueError, match="points must be at least 5"):
        equation_of_state(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), points=4)


# ------------------------------------------------------------------------------------------------------ vacancy
def test_vacancy_formation_energy_is_the_energy_difference_and_relaxation_lowers_it():
    cell = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(2)  # 32 atoms
    result = vacancy_formation_energy(cell, EMT(), index=5)
    perfect, defect = cell.copy(), cell.copy()
    del defect[5]
    perfect.calc, defect.calc = EMT(), EMT()
    by_hand = defect.get_potential_energy() - 31 / 32 * perfect.get_potential_energy()
    assert result["unrelaxed"] == pytest.approx(by_hand, abs=1e-9)
    assert 0 < result["relaxed"] < result["unrelaxed"]  # relaxing the neighbours releases energy, never adds
    # relaxed by hand (the cell compressed by 3 %: E(N) far from zero, so the (N-1)/N term counts)
    squeezed = bulk("Cu", "fcc", a=3.48, cubic=True).repeat(2)
    result = vacancy_formation_energy(squeezed, EMT(), index=5)
    perfect, defect = squeezed.copy(), squeezed.copy()
    del defect[5]
    perfect.calc, defect.calc = EMT(), EMT()
    assert perfect.get_potential_energy() / 32 > 0.03  # eV/atom: the term is 30 times the tolerance below
    BFGS(defect, logfile=None).run(fmax=1e-3, steps=500)
    by_hand = defect.get_potential_energy() - 31 / 32 * perfect.get_potential_energy()
    assert result["relaxed"] == pytest.approx(by_hand, abs=1e-3)
    assert result["unrelaxed"] - result["relaxed"] < 0.2 * result["unrelaxed"]  # EMT copper: a small relaxation
    with pytest.raises(ValueError, match="periodic in all three"):
        slab = cell.copy()
        slab.pbc = (True, True, False)
        vacancy_formation_energy(slab, EMT())


# ------------------------------------------------------------------------------------------------------ surface
def test_surface_energy_matches_a_slab_built_another_way_and_orders_the_facets():
    """γ(111) from the function against the same slab made with ``ase.build.fcc111`` at the relaxed lattice; fcc
    copper's close-packed (111) surface costs the least."""
    a0 = _emt_by_hand()["lattice_constant"]
    result = surface_energy(bulk("Cu", "fcc", a=3.65, cubic=True), EMT(), (1, 1, 1), layers=6, vacuum=10.0)
    slab = fcc111("Cu", (2, 2, 6), a=a0, vacuum=10.0, periodic=True)
    slab.calc = EMT()
    reference = bulk("Cu", "fcc", a=a0, cubic=True)
    reference.calc = EMT()
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    gamma = (slab.get_potential_energy() - len(slab) * reference.get_potential_energy() / 4) / (2 * area)
    assert result["atoms"] == len(slab) and result["area"] == pytest.approx(area, rel=1e-4)
    assert result["unrelaxed_eV_per_A2"] == pytest.approx(gamma, rel=1e-3)
    assert result["unrelaxed"] == pytest.approx(gamma * 16.021766, rel=1e-3)  # 1 eV/Å² = 16.02 J/m²
    assert result["relaxed"] <= result["unrelaxed"] + 1e-9
    hundred = surface_energy(bulk("Cu", "fcc", a=3.6, cubic=True), EMT(), (1, 0, 0), relax=False)
    assert "relaxed" not in hundred and result["relaxed"] < hundred["unrelaxed"]


# ------------------------------------------------------------------------------------------------- MD stability
def test_md_stability_passes_emt_copper_and_stops_a_collapsing_potential():
    """EMT copper at 1500 K stays physical for 0.4 ps; a Lennard-Jones 'copper' with its minimum at 1.1 Å (sigma
    1 Å, deep well) pulls neighbours together and is stopped at the first check with a pair closer than 1.5 Å."""
    start = bulk("Cu", "fcc", a=3.59, cubic=True).repeat(2)
    physical = md_stability(EMT(), start, 1500.0, 0.4, seed=7)
    assert physical["stopped"] is None and physical["time_ps"] == pytest.approx(0.4)
    assert 2.0 < physical["min_distance"] < 2.54  # thermal motion brings pairs closer than the lattice's 2.54 Å
    assert 750 <= physical["T_min"] <= physical["T_max"] <= 3000
    collapsing = md_stability(LennardJones(sigma=1.0, epsilon=5.0, rc=3.0), start, 1500.0, 0.4, seed=7)
    assert collapsing["stopped"] == "pair closer than 1.5 Å"
    assert collapsing["min_distance"] < 1.5 and collapsing["time_ps"] < 0.4
