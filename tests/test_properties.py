"""Cubic elastic constants from any ASE calculator (physics.properties), against EMT copper worked out by hand here:
the zero-pressure lattice by bisection on the pressure, then central differences of ASE's stress over tiny strains."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.units import GPa

from aiida_mlip_trainer.physics.properties import cubic_elastic_constants


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
