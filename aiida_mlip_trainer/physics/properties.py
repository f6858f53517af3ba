"""Materials properties of a potential, from any ASE calculator: the cubic elastic constants, the equation of state
(Birch–Murnaghan), the vacancy formation energy, surface energies and whether MD stays physical.

Finite strains about the calculator's own equilibrium lattice: the cell is relaxed under hydrostatic strain first
(ASE's ``FrechetCellFilter``), then matscipy's ``fit_elastic_constants`` applies the strain patterns of cubic
symmetry and fits stress against strain (linear regression). Results in GPa. No AiiDA here: a property work chain
calls these functions on a potential's calculator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = (
    "cubic_elastic_constants",
    "equation_of_state",
    "md_stability",
    "relax_lattice",
    "relax_positions",
    "surface_energy",
    "vacancy_formation_energy",
)


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


def equation_of_state(
    atoms, calculator, *, strain: float = 0.03, points: int = 7, relax: bool = True
) -> dict[str, Any]:
    """E0, V0, a0 and B0 from a Birch–Murnaghan fit (ASE's ``EquationOfState``) of the energy of ``atoms`` scaled
    isotropically to ``points`` lattice strains evenly spaced over ±``strain`` about its relaxed lattice
    (:func:`relax_lattice`, with ``relax``), the atoms moved with the cell (exact for lattices whose every atom is a
    centre of inversion, such as fcc and bcc). Returns ``E0`` (eV/atom), ``V0`` (Å³/atom), ``a0`` (Å, the first
    cell length at V0), ``B0`` (GPa), ``B0_prime`` (dimensionless) and the sampled ``volumes`` (Å³/atom) and
    ``energies`` (eV/atom)."""
    from ase.eos import EquationOfState
    from ase.units import GPa

    if points < 5:
        raise ValueError(f"points must be at least 5 for a fit of 4 parameters, got {points}")
    if not 0 < strain < 0.2:
        raise ValueError(f"strain must be in (0, 0.2), got {strain}")
    structure = relax_lattice(atoms, calculator) if relax else atoms.copy()
    count = len(structure)
    volumes, energies = [], []
    for factor in np.linspace(1 - strain, 1 + strain, points):
        scaled = structure.copy()
        scaled.set_cell(structure.cell * factor, scale_atoms=True)
        scaled.calc = calculator
        volumes.append(scaled.get_volume() / count)
        energies.append(scaled.get_potential_energy() / count)
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, bulk_modulus = eos.fit()
    b0_prime = float(eos.eos_parameters[2])  # birchmurnaghan: (E0, B0, B0', V0)
    a0 = float(structure.cell.lengths()[0] * (v0 / (structure.get_volume() / count)) ** (1 / 3))
    return {
        "E0": float(e0),
        "V0": float(v0),
        "a0": a0,
        "B0": float(bulk_modulus / GPa),
        "B0_prime": b0_prime,
        "volumes": [float(v) for v in volumes],
        "energies": [float(e) for e in energies],
        "units": {"E0": "eV/atom", "V0": "Å^3/atom", "a0": "Å", "B0": "GPa"},
    }


def relax_positions(atoms, calculator, fmax: float, steps: int):
    """``atoms`` with its positions relaxed (cell fixed) by BFGS; ValueError when it does not converge."""
    from ase.optimize import BFGS

    relaxed = atoms.copy()
    relaxed.calc = calculator
    if not BFGS(relaxed, logfile=None).run(fmax=fmax, steps=steps):
        raise ValueError(f"the positions did not relax within {steps} BFGS steps (fmax {fmax} eV/Å)")
    return relaxed


def vacancy_formation_energy(
    supercell, calculator, *, index: int = 0, relax: bool = True, fmax: float = 1e-3, steps: int = 500
) -> dict[str, Any]:
    """The formation energy (eV) of a vacancy at site ``index`` of the perfect periodic ``supercell`` (periodic in
    3D, one element or an alloy: the removed atom's chemical potential is taken as the supercell's energy per atom):
    E_f = E(N−1) − (N−1)/N · E(N), the cell fixed. With ``relax`` the atoms around the vacancy are relaxed (BFGS,
    ``fmax`` eV/Å); ``unrelaxed`` is the same without. The supercell is used as given: converge its size yourself."""
    if not supercell.pbc.all():
        raise ValueError("give a supercell periodic in all three directions")
    if not 0 <= index < len(supercell):
        raise ValueError(f"index {index} is not a site of the {len(supercell)}-atom supercell")
    perfect = supercell.copy()
    perfect.calc = calculator
    energy = perfect.get_potential_energy()
    defect = supercell.copy()
    del defect[index]
    defect.calc = calculator
    count = len(supercell)
    unrelaxed = defect.get_potential_energy() - (count - 1) / count * energy
    result = {"unrelaxed": float(unrelaxed), "atoms": count, "units": "eV"}
    if relax:
        relaxed = relax_positions(defect, calculator, fmax, steps)
        result["relaxed"] = float(relaxed.get_potential_energy() - (count - 1) / count * energy)
    return result


def surface_energy(
    atoms,
    calculator,
    miller: tuple[int, int, int],
    *,
    layers: int = 6,
    vacuum: float = 10.0,
    relax: bool = True,
    fmax: float = 1e-3,
    steps: int = 500,
) -> dict[str, Any]:
    """The energy (J/m² and eV/Å²) of the ``miller`` surface of the bulk ``atoms`` (its conventional cell, e.g.
    ``ase.build.bulk("Cu", "fcc", cubic=True)``, relaxed first to the calculator's lattice with :func:`relax_lattice`):
    a slab of ``layers`` layers (``ase.build.surface``) with ``vacuum`` Å on each side, γ = (E_slab − N·e_bulk)/(2A),
    e_bulk the relaxed bulk's energy per atom. With ``relax`` the slab's atoms are relaxed (cell fixed);
    ``unrelaxed`` is the same without. Converge ``layers`` yourself."""
    from ase.build import surface
    from ase.units import J, m

    if layers < 2:
        raise ValueError(f"layers must be at least 2, got {layers}")
    bulk_cell = relax_lattice(atoms, calculator)
    bulk_cell.calc = calculator
    per_atom = bulk_cell.get_potential_energy() / len(bulk_cell)
    slab = surface(bulk_cell, tuple(int(k) for k in miller), layers, vacuum=vacuum, periodic=True)
    slab.calc = calculator
    area = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
    to_si = m**2 / J  # eV/Å² -> J/m²

    def gamma(energy):
        return (energy - len(slab) * per_atom) / (2 * area)

    unrelaxed = gamma(slab.get_potential_energy())
    result = {
        "miller": [int(k) for k in miller],
        "atoms": len(slab),
        "area": area,
        "unrelaxed": float(unrelaxed * to_si),
        "unrelaxed_eV_per_A2": float(unrelaxed),
        "units": "J/m^2",
    }
    if relax:
        relaxed = gamma(relax_positions(slab, calculator, fmax, steps).get_potential_energy())
        result["relaxed"] = float(relaxed * to_si)
        result["relaxed_eV_per_A2"] = float(relaxed)
    return result


def md_stability(calculator, start, temperature: float, picoseconds: float, seed: int, min_distance: float = 1.5,
                 band: tuple[float, float] = (0.5, 2.0), timestep: float = 2.0, check: int = 10) -> dict:  # fmt: skip
    """Langevin MD of ``start`` with ``calculator`` at ``temperature`` K for ``picoseconds``; every ``check`` steps
    the shortest pair distance (Å), the temperature and the largest γ. Stops at the first check where a pair is
    closer than ``min_distance`` Å, the temperature leaves ``band`` (fractions of ``temperature``; from 0.2 ps on) or
    the energy is not finite; says why in ``stopped`` (None: physical to the end). With an ACE calculator (or a sum
    whose first part is one) that sets ``results["gamma"]``, also the largest extrapolation grade met."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.neighborlist import neighbor_list

    atoms = start.copy()
    atoms.calc = calculator
    ace = calculator.calcs[0] if hasattr(calculator, "calcs") else calculator
    rng = np.random.default_rng(seed)
    # velocities at twice the target: half goes into potential energy at once (equipartition)
    MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)
    dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.01, rng=rng)
    steps = int(round(picoseconds * 1000 / timestep))
    record = {"steps": 0, "min_distance": np.inf, "T_min": np.inf, "T_max": 0.0, "max_gamma": None, "stopped": None}
    for _ in dynamics.irun(steps):
        step = dynamics.nsteps
        gamma = getattr(ace, "results", {}).get("gamma")
        if gamma is not None:
            record["max_gamma"] = max(record["max_gamma"] or 0.0, float(np.max(gamma)))
        if step % check:
            continue
        record["steps"] = step
        distances = neighbor_list("d", atoms, 3.0)
        shortest = float(distances.min()) if len(distances) else 3.0
        temperature_now = float(atoms.get_temperature())
        record["min_distance"] = min(record["min_distance"], shortest)
        settled = step * timestep >= 200
        if settled:
            record["T_min"] = min(record["T_min"], temperature_now)
            record["T_max"] = max(record["T_max"], temperature_now)
        if not np.isfinite(atoms.get_potential_energy()):
            record["stopped"] = "energy not finite"
        elif shortest < min_distance:
            record["stopped"] = f"pair closer than {min_distance} Å"
        elif settled and not band[0] * temperature <= temperature_now <= band[1] * temperature:
            record["stopped"] = f"T {temperature_now:.0f} K outside {band[0]:g}-{band[1]:g}×{temperature:.0f} K"
        if record["stopped"]:
            break
    record["time_ps"] = record["steps"] * timestep / 1000
    return record
