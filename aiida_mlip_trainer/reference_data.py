"""Small, reproducible labelled data sets from classical reference potentials (ASE calculators).

They stand in for DFT in the examples, tests and benchmarks: the reference is known exactly, so a fit's error
is a property of the fit alone. Energies in eV, forces in eV/Å, stress in eV/Å³.
"""

from __future__ import annotations

import numpy as np

__all__ = ("argon_lennard_jones",)

# Lennard-Jones argon (Rahman 1964): epsilon 10.4 meV, sigma 3.4 Å.
ARGON_EPSILON = 0.0104
ARGON_SIGMA = 3.4
ARGON_LATTICE = 5.26


def argon_lennard_jones(
    count: int,
    *,
    seed: int = 0,
    repeat: int = 2,
    strain: float = 0.03,
    rattle: float = 0.1,
    cutoff: float = 7.0,
) -> list:
    """``count`` fcc argon cells (``4 * repeat**3`` atoms each), randomly strained by up to ``strain`` and rattled
    by ``rattle`` Å, labelled by a smoothly cut Lennard-Jones potential (energy, forces, stress)."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    calculator = LennardJones(sigma=ARGON_SIGMA, epsilon=ARGON_EPSILON, rc=cutoff, smooth=True)
    structures = []
    for index in range(count):
        lattice = ARGON_LATTICE * (1 + rng.uniform(-strain, strain))
        atoms = bulk("Ar", "fcc", a=lattice, cubic=True).repeat(repeat)
        atoms.rattle(rattle, seed=int(rng.integers(2**31)))
        atoms.calc = calculator
        results = {
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces(),
            "stress": atoms.get_stress(),
        }
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = f"Ar_fcc_{seed}_{index}"
        structures.append(atoms)
    return structures
