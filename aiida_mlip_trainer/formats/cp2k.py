"""CP2K as a labelling oracle, without AiiDA: the DFT settings, the k-point rule and the one reader of CP2K's output.

The settings are a nested dict in aiida-cp2k's format (what ``Cp2kCalculation`` takes as ``parameters`` and renders
with ``aiida_cp2k.utils.Cp2kInput``): section names in upper case, keywords and values. The structure, its cell and
the k-point mesh are added per structure (by ``Cp2kCalculation`` from its ``structure`` and ``kpoints`` inputs).

Basis sets and pseudopotentials are looked up by name in CP2K's own data directory (Debian's ``cp2k-data`` puts
``BASIS_MOLOPT`` and ``GTH_POTENTIALS`` in ``/usr/share/cp2k``, compiled in as CP2K's ``__DATA_DIR``), so no file
from the user's disk enters a recorded input.

CP2K reads its input through a preprocessor (``@INCLUDE``, ``@SET``, ``$VAR``, ``@IF``), treats ``!`` and ``#`` as
comments, ``\\`` at a line end as a continuation and ``&`` at a line start as a section; many keywords name files
(``*_FILE_NAME``, ``FILENAME``, ``PROJECT``, ``EXT_RESTART``). So the settings are data, never input text: the
arguments of :func:`cp2k_parameters` are checked by kind (element symbols, plain names, bounded numbers), and
:func:`check_cp2k_parameters` accepts a parameters dict (for example a ``Dict`` read from the database) only within
an allowlist of sections and keywords of a single point, with values of a plain character set.

Units of what :func:`read_cp2k_output` returns: energy in eV (CP2K prints Hartree), forces in eV/Å (CP2K: Hartree/Bohr),
stress in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE's sign (negative under compression; CP2K prints the
opposite sign, in GPa).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import units

from ..names import UnsafeNameError, check_element_symbols

__all__ = (
    "CP2K_DEFAULTS",
    "CP2K_SETTINGS",
    "Cp2kOutputError",
    "check_cp2k_elements",
    "check_cp2k_parameters",
    "cp2k_parameters",
    "cp2k_settings",
    "MIN_KPOINT_DISTANCE",
    "kpoint_mesh",
    "read_cp2k_output",
    "usable_kpoint_distance",
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
# Below 0.05 /Å (2π included) a 2 Å cell gets 63 k-points per axis: no single point of a labelling finishes.
MIN_KPOINT_DISTANCE = 0.05

# The keyword arguments of cp2k_parameters after `elements` (cp2k_oracle and the learn YAML accept these).
CP2K_SETTINGS = (
    "basis_set",
    "pseudopotential",
    "functional",
    "cutoff",
    "rel_cutoff",
    "smearing_temperature",
    "eps_scf",
    "max_scf",
    "stress",
)
# Bounds of the numeric settings: wide enough for any sensible single point, narrow enough to refuse a typo
# (a cutoff in eV, a temperature in eV) or an input that cannot finish (MAX_SCF 10**9). Ry, Ry, K, Hartree, cycles.
_SETTING_RANGES = {
    "cutoff": (10.0, 5000.0, " Ry"),
    "rel_cutoff": (5.0, 1000.0, " Ry"),
    "smearing_temperature": (1.0, 100000.0, " K"),
    "eps_scf": (1.0e-14, 1.0e-2, ""),
    "max_scf": (1, 10000, ""),
}
# A basis set, pseudopotential or functional name: one token of CP2K's data files (DZVP-MOLOPT-SR-GTH, GTH-PBE-q4,
# PBE). Nothing CP2K's preprocessor or parser reads as syntax: no space, '@', '$', '&', '!', '#', '\\', quote.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+\-]{0,79}")

# ---- the allowlist of a parameters dict (aiida-cp2k's format: sections are dicts, repeated sections lists of dicts,
# `_` the section parameter; rendered by aiida_cp2k.utils.Cp2kInput as `&SECTION <_>` ... `&END SECTION` and
# `KEYWORD <value>` lines, a list of values as one line each).
_ANY = None  # a keyword with a plain value (or a list of plain values)
_DATA_FILE = "data file"  # a file of CP2K's data directory, by bare name (BASIS_MOLOPT, GTH_POTENTIALS, dftd3.dat)
_ELEMENT = "element"  # a chemical symbol
_REPEATED = "repeated"  # a section that may be given as a list of sections (KIND)
_SECTION_PARAMETER = "_"
# The sections and keywords of a Quickstep (GPW) single point with energy, forces and stress: what cp2k_parameters
# writes and what users tune for one (charge and spin, SCF solvers, smearing, functionals, dispersion, grids,
# k-point options, Poisson solver for molecules, kinds). Left out on purpose: anything that names a file, restarts,
# MOTION (other run types), the structure (CELL, COORD, TOPOLOGY: aiida-cp2k writes them from the structure, and a
# CELL or COORD given here would silently replace it) and IGNORE_CONVERGENCE_FAILURE (an unconverged SCF as a label).
_ALLOWED: dict = {
    "GLOBAL": {
        "RUN_TYPE": ("ENERGY_FORCE", "ENERGY"),
        "PRINT_LEVEL": ("SILENT", "LOW", "MEDIUM", "HIGH", "DEBUG"),
        "EXTENDED_FFT_LENGTHS": _ANY,
    },
    "FORCE_EVAL": {
        "METHOD": ("QUICKSTEP", "QS"),
        "STRESS_TENSOR": ("ANALYTICAL", "NUMERICAL", "NONE", "DIAGONAL_ANALYTICAL", "DIAGONAL_NUMERICAL"),
        "DFT": {
            "BASIS_SET_FILE_NAME": _DATA_FILE,
            "POTENTIAL_FILE_NAME": _DATA_FILE,
            "CHARGE": _ANY,
            "MULTIPLICITY": _ANY,
            "UKS": _ANY,
            "LSD": _ANY,
            "ROKS": _ANY,
            "RELAX_MULTIPLICITY": _ANY,
            "SURFACE_DIPOLE_CORRECTION": _ANY,
            "SURF_DIP_DIR": _ANY,
            "QS": {
                "METHOD": _ANY,
                "EPS_DEFAULT": _ANY,
                "EPS_PGF_ORB": _ANY,
                "EPS_FILTER_MATRIX": _ANY,
                "EXTRAPOLATION": _ANY,
                "EXTRAPOLATION_ORDER": _ANY,
            },
            "SCF": {
                "EPS_SCF": _ANY,
                "MAX_SCF": _ANY,
                "SCF_GUESS": _ANY,
                "ADDED_MOS": _ANY,
                "CHOLESKY": _ANY,
                "EPS_EIGVAL": _ANY,
                "LEVEL_SHIFT": _ANY,
                "MAX_ITER_LUMO": _ANY,
                "EPS_LUMO": _ANY,
                "OT": {
                    "_": _ANY,
                    "MINIMIZER": _ANY,
                    "PRECONDITIONER": _ANY,
                    "ENERGY_GAP": _ANY,
                    "ALGORITHM": _ANY,
                    "LINESEARCH": _ANY,
                    "STEPSIZE": _ANY,
                    "ROTATION": _ANY,
                },
                "OUTER_SCF": {"_": _ANY, "MAX_SCF": _ANY, "EPS_SCF": _ANY, "TYPE": _ANY, "OPTIMIZER": _ANY},
                "DIAGONALIZATION": {
                    "_": _ANY,
                    "ALGORITHM": _ANY,
                    "EPS_ADAPT": _ANY,
                    "EPS_ITER": _ANY,
                    "MAX_ITER": _ANY,
                },
                "MIXING": {
                    "_": _ANY,
                    "METHOD": _ANY,
                    "ALPHA": _ANY,
                    "BETA": _ANY,
                    "NBROYDEN": _ANY,
                    "NBUFFER": _ANY,
                    "NMIXING": _ANY,
                    "NSKIP": _ANY,
                },
                "SMEAR": {
                    "_": _ANY,
                    "METHOD": _ANY,
                    "ELECTRONIC_TEMPERATURE": _ANY,
                    "WINDOW_SIZE": _ANY,
                    "FIXED_MAGNETIC_MOMENT": _ANY,
                },
                # Only to switch CP2K's own restart files (in the job folder) on or off.
                "PRINT": {"RESTART": {"_": _ANY, "BACKUP_COPIES": _ANY}, "RESTART_HISTORY": {"_": _ANY}},
            },
            "XC": {
                "XC_FUNCTIONAL": {
                    "_": _ANY,
                    "PBE": {"_": _ANY, "PARAMETRIZATION": _ANY, "SCALE_X": _ANY, "SCALE_C": _ANY},
                    "BECKE88": {"_": _ANY, "SCALE_X": _ANY},
                    "LYP": {"_": _ANY, "SCALE_C": _ANY},
                    "PADE": {"_": _ANY},
                    "VWN": {"_": _ANY, "FUNCTIONAL_TYPE": _ANY, "SCALE_C": _ANY},
                },
                "VDW_POTENTIAL": {
                    "POTENTIAL_TYPE": _ANY,
                    "DISPERSION_FUNCTIONAL": _ANY,
                    "PAIR_POTENTIAL": {
                        "TYPE": _ANY,
                        "PARAMETER_FILE_NAME": _DATA_FILE,
                        "REFERENCE_FUNCTIONAL": _ANY,
                        "R_CUTOFF": _ANY,
                        "CALCULATE_C9_TERM": _ANY,
                        "REFERENCE_C9_TERM": _ANY,
                        "EPS_CN": _ANY,
                    },
                },
            },
            "MGRID": {"CUTOFF": _ANY, "REL_CUTOFF": _ANY, "NGRIDS": _ANY, "PROGRESSION_FACTOR": _ANY},
            "KPOINTS": {
                "SCHEME": _ANY,
                "FULL_GRID": _ANY,
                "SYMMETRY": _ANY,
                "EPS_GEO": _ANY,
                "PARALLEL_GROUP_SIZE": _ANY,
            },
            "POISSON": {"PERIODIC": _ANY, "PSOLVER": _ANY},
        },
        "SUBSYS": {
            "KIND": {
                _REPEATED: True,
                "_": _ANY,
                "ELEMENT": _ELEMENT,
                "BASIS_SET": _ANY,
                "POTENTIAL": _ANY,
                "MAGNETIZATION": _ANY,
                "GHOST": _ANY,
            },
        },
        "PRINT": {"FORCES": {"_": _ANY}, "STRESS_TENSOR": {"_": _ANY}},
    },
}
# A section or keyword name as CP2K spells it; aiida-cp2k renders only upper-case names (it raises on others).
_KEY = re.compile(r"[A-Z_][A-Z0-9_]{0,79}")
# A value: words, numbers, units ("[K] 1000", "[eV/angstrom]"), lists of numbers. Not: line breaks, '@' (directives),
# '$' (variables), '&' (sections), '!' and '#' (comments), '\\' (continuation), quotes, '=' (CP2K's "=path").
_VALUE = re.compile(r"[A-Za-z0-9 _.+\-\[\]()/*^,:]{0,200}")
# A file of CP2K's data directory by bare name: CP2K looks in the job folder, then in its data directory.
_DATA_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,79}")


def _refused_name(key: str) -> str | None:
    """Why a section or keyword is refused wherever it appears, or None."""
    if "FILE" in key or key in ("PROJECT", "PROJECT_NAME"):
        return "names a file (CP2K would read or write a path the input chooses)"
    if "RESTART" in key and key not in ("RESTART", "RESTART_HISTORY"):
        return "restarts from or writes to a file"
    return None


def check_cp2k_parameters(parameters: dict, where: str = "CP2K parameters") -> None:
    """Refuse a CP2K parameters dict (aiida-cp2k's nested format) that is not plain data of a single point.

    Accepted: the sections and keywords of the allowlist (those :func:`cp2k_parameters` writes, and what a single
    point of Quickstep needs besides: charge and spin, SCF, OT, diagonalisation, mixing, smearing, functionals,
    dispersion, grids, k-point options, Poisson, kinds), names in upper case, values that are booleans, finite
    numbers or plain text (letters, digits, spaces, ``_.+-[]()/*^,:``), lists of those for a keyword, lists of
    sections for ``KIND``. The data-directory file keywords (``BASIS_SET_FILE_NAME``, ``POTENTIAL_FILE_NAME``,
    ``PARAMETER_FILE_NAME``) take a bare file name only, so CP2K finds them in its data directory.
    Refused everywhere with the path of the offender (``FORCE_EVAL/DFT/...``): any other keyword that names a file
    (``*_FILE_NAME``, ``FILENAME``, ``PROJECT``), ``EXT_RESTART`` and restart files, preprocessor directives
    (``@INCLUDE``, ``@SET``, ...), variables (``$``), line breaks, comments, ``&``.
    Raises ValueError with a one-line message; returns None when the dict is accepted.
    """
    if not isinstance(parameters, dict):
        raise ValueError(f"{where}: expected a mapping of CP2K sections, got {type(parameters).__name__}")
    _check_section(parameters, _ALLOWED, "", where)


def _check_section(section: dict, allowed: dict, path: str, where: str) -> None:
    for key, value in section.items():
        here = f"{path}/{key}" if path else str(key)
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(
                f"{where}: {here!r} is not a CP2K section or keyword name (upper-case letters, digits and '_'; "
                "no preprocessor directive such as @INCLUDE or @SET)"
            )
        refused = _refused_name(key)
        if refused is not None and allowed.get(key) is not _DATA_FILE:
            raise ValueError(f"{where}: {here} is refused: it {refused}")
        if key == _SECTION_PARAMETER and key in allowed:
            _check_value(value, here, where)
            continue
        if key not in allowed or key == _REPEATED:
            known = ", ".join(sorted(name for name in allowed if name != _REPEATED))
            inside = path or "the top level"
            raise ValueError(
                f"{where}: {here} is not in the allowlist of single-point settings; {inside} takes {known}"
            )
        rule = allowed[key]
        if isinstance(rule, dict):
            items = value if rule.get(_REPEATED) and isinstance(value, list) else [value]
            for item in items:
                if not isinstance(item, dict):
                    raise ValueError(f"{where}: {here} is a section: give a mapping of its keywords")
                _check_section(item, rule, here, where)
            continue
        for item in value if isinstance(value, list) else [value]:
            _check_value(item, here, where)
            if rule is _DATA_FILE and (
                not isinstance(item, str) or not _DATA_FILE_NAME.fullmatch(item) or ".." in item
            ):
                raise ValueError(
                    f"{where}: {here} must be the bare name of a file of CP2K's data directory (such as BASIS_MOLOPT), "
                    f"got {item!r}"
                )
            if rule is _ELEMENT:
                check_element_symbols([item], f"{where}: {here}")
            if isinstance(rule, tuple) and str(item).upper() not in rule:
                raise ValueError(f"{where}: {here} must be one of {', '.join(rule)}, got {item!r}")


def _check_value(value, here: str, where: str) -> None:
    """A keyword value aiida-cp2k renders as plain text: a bool, a finite number, or a string of the plain set."""
    if isinstance(value, bool):
        return
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {here} must be a finite number, got {value!r}")
        return
    if isinstance(value, str) and _VALUE.fullmatch(value):
        return
    raise ValueError(
        f"{where}: {here} has the value {value!r}: give a number, a boolean or plain text (letters, digits, spaces "
        "and _.+-[]()/*^,: only; no line break, '@', '$', '&', '!', '#', quote or backslash)"
    )


def _check_name(value, name: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(
            f"cp2k {name} {value!r} is not a plain name (letters, digits, '_', '.', '+', '-'; one token, such as "
            f"{CP2K_DEFAULTS[name]!r})"
        )
    return value


def _check_number(value, name: str, integer: bool = False) -> int | float:
    low, high, unit = _SETTING_RANGES[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
        raise ValueError(f"cp2k {name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"cp2k {name} must be between {low:g} and {high:g}{unit}, got {value!r}")
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def check_cp2k_elements(elements) -> list[str]:
    """``elements`` as a sorted list of distinct chemical symbols; a string (``"Si"``, ``"SiO"``) or anything that is
    not a symbol is refused with a ValueError (a string would otherwise be read letter by letter: kinds S and i)."""
    if isinstance(elements, str | bytes):
        raise ValueError(
            f"cp2k elements must be a list of chemical symbols such as ['Si'], not the string {elements!r}"
        )
    try:
        symbols = check_element_symbols(elements, "cp2k elements")
    except UnsafeNameError as exc:
        raise ValueError(str(exc)) from None
    if not symbols:
        raise ValueError("cp2k elements: give at least one element")
    return sorted(set(symbols))


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

    Every argument is data, never input text: ``elements`` a list of chemical symbols (not a string), the names one
    plain token each, the numbers within ``cutoff`` 10-5000 Ry, ``rel_cutoff`` 5-1000 Ry, ``smearing_temperature``
    1-100000 K, ``eps_scf`` 1e-14 to 1e-2, ``max_scf`` 1-10000 (an integer); else a one-line ValueError.
    """
    elements = check_cp2k_elements(elements)
    basis_set = _check_name(basis_set, "basis_set")
    pseudopotential = _check_name(pseudopotential, "pseudopotential")
    functional = _check_name(functional, "functional")
    cutoff, rel_cutoff, eps_scf = (
        _check_number(v, n) for v, n in ((cutoff, "cutoff"), (rel_cutoff, "rel_cutoff"), (eps_scf, "eps_scf"))
    )
    max_scf = _check_number(max_scf, "max_scf", integer=True)
    if smearing_temperature is not None:
        smearing_temperature = _check_number(smearing_temperature, "smearing_temperature")
    if not isinstance(stress, bool):
        raise ValueError(f"cp2k stress must be true or false, got {stress!r}")
    scf: dict = {"EPS_SCF": eps_scf, "MAX_SCF": int(max_scf), "SCF_GUESS": "ATOMIC"}
    if smearing_temperature is not None:
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
            "KIND": [{"_": element, "BASIS_SET": basis_set, "POTENTIAL": pseudopotential} for element in elements]
        },
        "PRINT": {"FORCES": {"_": "ON"}},
    }
    if stress:
        force_eval["STRESS_TENSOR"] = "ANALYTICAL"
        force_eval["PRINT"]["STRESS_TENSOR"] = {"_": "ON"}
    parameters = {"GLOBAL": {"RUN_TYPE": "ENERGY_FORCE", "PRINT_LEVEL": "LOW"}, "FORCE_EVAL": force_eval}
    # What is written here must pass the rule a stored parameters Dict passes (the allowlist is the one place).
    check_cp2k_parameters(parameters)
    return parameters


def cp2k_settings(parameters: dict) -> dict:
    """The settings of a CP2K run that must agree across a training set, from its parameters (aiida-cp2k's nested
    dict): functional, basis set and pseudopotential of every kind, cutoffs (Ry), smearing and spin. The k-point
    density is compared separately (with a tolerance)."""
    force_eval = parameters.get("FORCE_EVAL", {})
    force_eval = force_eval[0] if isinstance(force_eval, list) and force_eval else force_eval
    dft = force_eval.get("DFT", {})
    functional = dft.get("XC", {}).get("XC_FUNCTIONAL", {})
    kinds = force_eval.get("SUBSYS", {}).get("KIND", [])
    smear = dft.get("SCF", {}).get("SMEAR", {})
    smearing = "none"
    if isinstance(smear, dict) and str(smear.get("_", "OFF")).upper() in ("ON", "TRUE", ".TRUE."):
        smearing = f"{smear.get('METHOD', 'FERMI_DIRAC')}, {smear.get('ELECTRONIC_TEMPERATURE', '300')}"
    return {
        "code": "cp2k",
        "functional": str(functional.get("_", functional) if isinstance(functional, dict) else functional),
        "basis and pseudopotentials": {
            str(kind.get("_")): f"{kind.get('BASIS_SET')} {kind.get('POTENTIAL')}"
            for kind in (kinds if isinstance(kinds, list) else [kinds])
        },
        "cutoff": dft.get("MGRID", {}).get("CUTOFF"),
        "rel_cutoff": dft.get("MGRID", {}).get("REL_CUTOFF"),
        "smearing": smearing,
        "spin": "polarized" if any(dft.get(key) for key in ("UKS", "LSD")) else "unpolarized",
    }


def usable_kpoint_distance(distance: Any) -> bool:
    """A k-point distance (1/Å) a labelling can finish with: a finite number of at least :data:`MIN_KPOINT_DISTANCE`."""
    real = isinstance(distance, numbers.Real) and not isinstance(distance, bool)
    return real and math.isfinite(distance) and distance >= MIN_KPOINT_DISTANCE


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
