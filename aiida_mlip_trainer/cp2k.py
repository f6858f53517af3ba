"""CP2K as a labelling oracle, without AiiDA: the DFT settings, the k-point rule and the one reader of CP2K's output.

The settings are a nested dict in aiida-cp2k's format (what ``Cp2kCalculation`` takes as ``parameters`` and renders
with ``aiida_cp2k.utils.Cp2kInput``): section names in upper case, keywords and values. The structure, its cell and
the k-point mesh are added per structure (by ``Cp2kCalculation`` from its ``structure`` and ``kpoints`` inputs).

Basis sets and pseudopotentials are looked up by name in CP2K's own data directory (Debian's ``cp2k-data`` puts
``BASIS_MOLOPT`` and ``GTH_POTENTIALS`` in ``/usr/share/cp2k``, compiled in as CP2K's ``__DATA_DIR``), so no file
from the user's disk enters a recorded input.

Units of what :func:`read_cp2k_output` returns: energy in eV (CP2K prints Hartree), forces in eV/Å (CP2K: Hartree/Bohr),
stress in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE's sign (negative under compression; CP2K prints the
opposite sign, in GPa).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
from ase import units

__all__ = (
    "CP2K_DEFAULTS",
    "Cp2kOutputError",
    "cp2k_parameters",
    "kpoint_mesh",
    "read_cp2k_output",
)

# Measured on rattled silicon cells of 2 and 8 atoms (benchmarks/si_dft_dataset.py --convergence): 150 Ry is within
# 0.4 meV/atom and 1.5 meV/Å of 300 Ry; a k-point spacing of 0.3 /Å (2π included) is within 1.4 (8 atoms) to 4.5
# (2 atoms) meV/atom and 3.5 to 5.8 meV/Å of 0.2 /Å, at half the cost. DZVP is needed: SZV moves forces by 30 % and
# the pressure by 4 GPa. The 8-atom cube at Γ alone is 1.2 eV/atom off, with 2×2×2 k-points 80 meV/atom.
CP2K_DEFAULTS = {
    "basis_set": "DZVP-MOLOPT-SR-GTH",
    "pseudopotential": "GTH-PBE",
    "functional": "PBE",
    "cutoff": 150.0,  # Ry, finest grid
    "rel_cutoff": 30.0,  # Ry
    "smearing_temperature": 1000.0,  # K, Fermi-Dirac: rattled, defective or surface cells can be metallic
    "eps_scf": 1.0e-6,
    "max_scf": 80,
    "kpoint_distance": 0.3,  # 1/Å, 2π included; see kpoint_mesh
}

_FORCES_HEADER = "ATOMIC FORCES in [a.u.]"
_STRESS_HEADER = re.compile(r"STRESS\| (Analytical|Numerical) stress tensor \[GPa\]")
_ENERGY_LINE = re.compile(r"^ ENERGY\| Total FORCE_EVAL \( \w+ \) energy \[a\.u\.\]:\s+(\S+)", re.MULTILINE)
_NUMBER = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?"


class Cp2kOutputError(ValueError):
    """CP2K's output is not a usable label; the message says why (SCF not converged, no forces, ...)."""


def cp2k_parameters(
    elements: Sequence[str],
    *,
    basis_set: str = CP2K_DEFAULTS["basis_set"],
    pseudopotential: str = CP2K_DEFAULTS["pseudopotential"],
    functional: str = CP2K_DEFAULTS["functional"],
    cutoff: float = CP2K_DEFAULTS["cutoff"],
    rel_cutoff: float = CP2K_DEFAULTS["rel_cutoff"],
    smearing_temperature: float | None = CP2K_DEFAULTS["smearing_temperature"],
    eps_scf: float = CP2K_DEFAULTS["eps_scf"],
    max_scf: int = CP2K_DEFAULTS["max_scf"],
    stress: bool = True,
) -> dict:
    """The CP2K input (aiida-cp2k's nested-dict format) of a single point with energy, forces and stress.

    Pass the chemical symbols the structures contain. You get ``RUN_TYPE ENERGY_FORCE`` with Quickstep (GPW),
    ``functional`` (PBE), the ``basis_set`` and ``pseudopotential`` names for every element (looked up in CP2K's
    data directory: ``BASIS_MOLOPT``, ``GTH_POTENTIALS``), plane-wave ``cutoff``/``rel_cutoff`` in Ry, diagonalisation
    with Broyden mixing and Fermi-Dirac smearing at ``smearing_temperature`` K (None: no smearing, for insulators
    only), and the forces and the analytical stress tensor printed (``stress=False`` for cells that are not
    periodic in all three directions). ``max_scf`` bounds the SCF: a run that does not converge stops with an error
    instead of giving an unconverged label.
    """
    if not elements:
        raise ValueError("give at least one element")
    for name, value in (("cutoff", cutoff), ("rel_cutoff", rel_cutoff), ("eps_scf", eps_scf)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value}")
    if int(max_scf) < 1:
        raise ValueError(f"max_scf must be at least 1, got {max_scf}")
    scf: dict = {"EPS_SCF": eps_scf, "MAX_SCF": int(max_scf), "SCF_GUESS": "ATOMIC"}
    if smearing_temperature is not None:
        if not smearing_temperature > 0:
            raise ValueError(f"smearing_temperature must be positive (K) or None, got {smearing_temperature}")
        scf.update(
            {
                # All unoccupied orbitals: smearing needs some, and for cells of a few atoms all of them cost nothing.
                "ADDED_MOS": -1,
                "SMEAR": {
                    "_": "ON",
                    "METHOD": "FERMI_DIRAC",
                    "ELECTRONIC_TEMPERATURE": f"[K] {smearing_temperature}",
                },
                "MIXING": {"METHOD": "BROYDEN_MIXING", "ALPHA": 0.4},
            }
        )
    force_eval: dict = {
        "METHOD": "Quickstep",
        "DFT": {
            "BASIS_SET_FILE_NAME": "BASIS_MOLOPT",
            "POTENTIAL_FILE_NAME": "GTH_POTENTIALS",
            "MGRID": {"CUTOFF": cutoff, "REL_CUTOFF": rel_cutoff},
            "QS": {"EPS_DEFAULT": 1.0e-10},
            "SCF": scf,
            "XC": {"XC_FUNCTIONAL": {"_": functional}},
        },
        "SUBSYS": {
            "KIND": [
                {"_": element, "BASIS_SET": basis_set, "POTENTIAL": pseudopotential} for element in sorted(elements)
            ]
        },
        "PRINT": {"FORCES": {"_": "ON"}},
    }
    if stress:
        force_eval["STRESS_TENSOR"] = "ANALYTICAL"
        force_eval["PRINT"]["STRESS_TENSOR"] = {"_": "ON"}
    return {"GLOBAL": {"RUN_TYPE": "ENERGY_FORCE", "PRINT_LEVEL": "LOW"}, "FORCE_EVAL": force_eval}


def kpoint_mesh(cell, pbc: Sequence[bool], distance: float = CP2K_DEFAULTS["kpoint_distance"]) -> list[int]:
    """Monkhorst-Pack mesh with at most ``distance`` (1/Å, 2π included) between k-points along each reciprocal
    vector: ``n_i = ceil(|b_i| / distance)``, and 1 along a non-periodic direction. The rule of aiida-core's
    ``KpointsData.set_kpoints_mesh_from_density``: cells of different shapes get the same sampling density, so that
    their energies are comparable. (A slab's vacuum direction gets one k-point once the cell is longer than
    2π / ``distance``, 21 Å at 0.3 /Å.)
    """
    if not distance > 0:
        raise ValueError(f"the k-point distance must be positive (1/Å), got {distance}")
    cell = np.asarray(cell, dtype=float).reshape(3, 3)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the cell has no volume: a k-point mesh needs a periodic cell")
    reciprocal = 2 * math.pi * np.linalg.inv(cell).T
    mesh = []
    for axis in range(3):
        if not pbc[axis]:
            mesh.append(1)
        else:
            mesh.append(max(1, math.ceil(round(float(np.linalg.norm(reciprocal[axis])) / distance, 5))))
    return mesh


def _float(text: str) -> float:
    return float(text.replace("D", "E").replace("d", "e"))


def read_cp2k_output(text: str, natoms: int | None = None) -> dict:
    """Energy, forces and (when printed) stress of a CP2K ``ENERGY_FORCE`` run, from its main output file.

    Returns ``{"energy": float (eV), "forces": (N, 3) array (eV/Å), "stress": (6,) array (eV/Å³, ASE sign) or None,
    "warnings": int}``. Raises :class:`Cp2kOutputError` when the output is not a usable label: the SCF did not
    converge, CP2K did not finish, no energy or no forces block, or (with ``natoms``) another number of atoms.
    The last block of each kind is used, as CP2K prints them once per force evaluation.
    """
    if "SCF run NOT converged" in text:
        raise Cp2kOutputError("the SCF did not converge: the energy and forces are not a label")
    if "PROGRAM ENDED AT" not in text and "PROGRAM STOPPED IN" not in text:
        raise Cp2kOutputError("CP2K did not finish (no 'PROGRAM ENDED' line): killed, out of time or crashed")
    energies = _ENERGY_LINE.findall(text)
    if not energies:
        raise Cp2kOutputError("no 'ENERGY| Total FORCE_EVAL' line: not a single-point or MD output")
    energy = _float(energies[-1]) * units.Hartree

    lines = text.splitlines()
    forces = _last_forces_block(lines)
    if forces is None:
        raise Cp2kOutputError(f"no '{_FORCES_HEADER}' block: set FORCE_EVAL/PRINT/FORCES to ON")
    if natoms is not None and len(forces) != natoms:
        raise Cp2kOutputError(f"CP2K printed forces on {len(forces)} atoms, the structure has {natoms}")
    stress = _last_stress_block(lines)
    if stress is not None:
        # CP2K prints the stress with the opposite sign to ASE's (positive pressure under compression), in GPa.
        stress = -np.array([stress[0, 0], stress[1, 1], stress[2, 2], stress[1, 2], stress[0, 2], stress[0, 1]])
        stress = stress * units.GPa
    warnings = re.findall(r"The number of warnings for this run is\s*:\s*(\d+)", text)
    return {
        "energy": float(energy),
        "forces": forces * (units.Hartree / units.Bohr),
        "stress": stress,
        "warnings": int(warnings[-1]) if warnings else 0,
    }


def _last_forces_block(lines: list[str]) -> np.ndarray | None:
    starts = [index for index, line in enumerate(lines) if line.strip() == _FORCES_HEADER]
    if not starts:
        return None
    rows = []
    for line in lines[starts[-1] + 1 :]:
        if line.strip().startswith("SUM OF ATOMIC FORCES"):
            break
        fields = line.split()
        # "   1      1      Si    -0.01064653    -0.03197768    -0.01019401"
        if len(fields) == 6 and fields[0].isdigit():
            rows.append([_float(value) for value in fields[3:6]])
        elif fields and not line.lstrip().startswith("#"):
            raise Cp2kOutputError(f"unexpected line in the forces block: {line.strip()!r}")
    if not rows:
        raise Cp2kOutputError("the forces block is empty")
    return np.array(rows, dtype=float)


def _last_stress_block(lines: list[str]) -> np.ndarray | None:
    starts = [index for index, line in enumerate(lines) if _STRESS_HEADER.search(line)]
    if not starts:
        return None
    rows = []
    pattern = re.compile(rf"STRESS\|\s+([xyz])\s+({_NUMBER})\s+({_NUMBER})\s+({_NUMBER})\s*$")
    for line in lines[starts[-1] + 1 : starts[-1] + 6]:
        match = pattern.search(line)
        if match:
            rows.append([_float(match.group(i)) for i in (2, 3, 4)])
    if len(rows) != 3:
        raise Cp2kOutputError("the stress tensor block does not have three rows x, y, z")
    return np.array(rows, dtype=float)
