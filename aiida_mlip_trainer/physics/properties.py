"""Materials properties of a potential, from any ASE calculator: the cubic elastic constants.

Finite strains about the calculator's own equilibrium lattice: the cell is relaxed under hydrostatic strain first
(ASE's ``FrechetCellFilter``), then matscipy's ``fit_elastic_constants`` applies the strain patterns of cubic
symmetry and fits stress against strain (linear regression). Results in GPa. No AiiDA here: a property work chain
calls these functions on a potential's calculator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ("cubic_elastic_constants", "relax_lattice")


def relax_lattice(atoms, calculator, *, fmax: float = 1e-5, steps: int = 200):
    """A copy of ``atoms`` whose cell is scaled (hydrostatic strain, the shape kept) and whose atoms are moved until
    the pressure and the forces vanish with ``calculator``; ValueError when BFGS does not get there in ``steps``."""
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calculator
    optimizer = BFGS(FrechetCellFilter(relaxed, hydrostatic_strain=True), logfile=None)
    if not optimizer.run(fmax=fmax, steps=steps):
        raise ValueError(f"the lattice did not relax within {steps} BFGS steps (fmax {fmax} eV/Å)")
    return relaxed


def cubic_elastic_constants(
    atoms,
    calculator,
    *,
    strain: float = 2e-3,
    points: int = 5,
    relax: bool = True,
) -> dict[str, Any]:
    """C11, C12 and C44 (GPa) of a cubic crystal with ``calculator`` (any ASE calculator with stress).

    ``atoms`` is the conventional cubic cell (e.g. ``ase.build.bulk("Cu", "fcc", cubic=True)``); with ``relax`` its
    lattice is first relaxed to the calculator's zero pressure (:func:`relax_lattice`). The strains are ``points``
    values evenly spaced over ±``strain`` (up to ±``strain``·(points−1)/points in matscipy's spacing), for each strain
    pattern of cubic symmetry; the atoms are not relaxed inside the strained cells (for a lattice whose every atom is
    a centre of inversion, such as fcc and bcc, there is nothing to relax). Returns ``C11``, ``C12``, ``C44``, the
    fit's standard errors ``C11_err``, ... (GPa), the bulk modulus ``B`` = (C11 + 2 C12)/3 and the
    ``lattice_constant`` (Å, the cell's first length) at which they were computed."""
    from ase.units import GPa
    from matscipy.elasticity import fit_elastic_constants

    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if not 0 < strain < 0.05:
        raise ValueError(f"strain must be in (0, 0.05), got {strain}")
    cell = np.asarray(atoms.cell)
    if not np.allclose(cell, np.diag(np.diag(cell))) or not np.allclose(np.diag(cell), cell[0, 0]):
        raise ValueError("give the conventional cubic cell (a diagonal cell with equal lengths)")
    structure = relax_lattice(atoms, calculator) if relax else atoms.copy()
    structure.calc = calculator
    constants, errors = fit_elastic_constants(
        structure, symmetry="cubic", N_steps=points, delta=2 * strain / points, optimizer=None, verbose=False
    )
    constants, errors = np.asarray(constants) / GPa, np.asarray(errors) / GPa
    c11, c12, c44 = float(constants[0, 0]), float(constants[0, 1]), float(constants[3, 3])
    return {
        "C11": c11,
        "C12": c12,
        "C44": c44,
        "C11_err": float(errors[0, 0]),
        "C12_err": float(errors[0, 1]),
        "C44_err": float(errors[3, 3]),
        "B": (c11 + 2 * c12) / 3,
        "lattice_constant": float(structure.cell.lengths()[0]),
        "units": "GPa",
    }
