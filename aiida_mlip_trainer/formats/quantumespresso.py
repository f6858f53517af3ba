"""Quantum ESPRESSO's ``pw.x`` as a source of labels, without AiiDA: the pseudopotentials the tests and the QE oracle
use, the units and signs of what aiida-quantumespresso's ``PwParser`` returns, the settings of a run that must agree
across a training set, and the check of a ``pw.x`` parameters dict that comes from data.

What ``PwParser`` (aiida-quantumespresso 5.1) stores: ``output_parameters['energy']`` in eV, the
``output_trajectory`` arrays ``forces`` (steps, N, 3) in eV/Å and ``stress`` (steps, 3, 3) in GPa with ``pw.x``'s
sign (positive under compression: ``P = trace / 3``). :func:`read_pw_labels` returns energy in eV, forces in eV/Å and
stress in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE's sign (negative under compression), as every oracle
adapter does.

``pw.x`` reads a Fortran namelist: ``outdir``, ``pseudo_dir``, ``wfcdir``, ``prefix`` name folders and files, and a
string value closes its quote with ``'``. So :func:`check_pw_parameters` accepts a parameters dict read from data only
within an allowlist of the ``CONTROL``, ``SYSTEM`` and ``ELECTRONS`` keywords of a single point, with values of a
plain character set (aiida-quantumespresso writes ``outdir``, ``prefix`` and ``pseudo_dir`` itself).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence

import numpy as np
from ase import units

__all__ = (
    "PSEUDO_FOLDER",
    "PSEUDOPOTENTIALS",
    "PW_PARAMETERS",
    "PwOutputError",
    "check_pw_parameters",
    "kpoint_spacing",
    "pw_settings",
    "read_pw_labels",
)

# Debian's quantum-espresso-data puts the pseudopotentials of QE's examples here (`dpkg -L quantum-espresso-data`).
PSEUDO_FOLDER = "/usr/share/espresso/pseudo"
# The files of the pseudopotential family the QE oracle and the tests install (one per element), with the cutoffs
# (Ry: wave functions, charge density) the family recommends. All PBE, the functional of the CP2K oracle's defaults,
# so that the two oracles' sets differ by the code and the pseudopotentials, not by the functional. Norm-conserving
# where the folder has one for the element (Si.pbe-rrkj: converged at a low cutoff, 20 Ry is enough for the
# seconds-long tests, charge density at 4x); ultrasoft or PAW (kjpaw, rrkjus) otherwise, charge density at 8x. Only
# silicon's cutoff was checked (tests/oracles/test_qe_real.py); the others are a starting point, not converged.
PSEUDOPOTENTIALS = {
    "Si": ("Si.pbe-rrkj.UPF", 20.0, 80.0),
    "Cu": ("Cu.pbe-kjpaw.UPF", 35.0, 280.0),
    "Ge": ("Ge.pbe-kjpaw.UPF", 30.0, 240.0),
    "H": ("H.pbe-kjpaw.UPF", 30.0, 240.0),
    "C": ("C.pbe-rrkjus.UPF", 30.0, 240.0),
    "N": ("N.pbe-kjpaw.UPF", 35.0, 280.0),
    "O": ("O.pbe-kjpaw.UPF", 35.0, 280.0),
    "Fe": ("Fe.pbe-nd-rrkjus.UPF", 35.0, 280.0),
    "Ni": ("Ni.pbe-nd-rrkjus.UPF", 35.0, 280.0),
}

# The keywords of a pw.x single point with forces and stress that a parameters dict from data may hold, by namelist.
# A tuple: the allowed values. Left out on purpose: anything naming a file or folder (outdir, prefix, pseudo_dir,
# wfcdir, input_xml_schema_file, vdw_table_name), restarts, other calculation types, and the cell or atoms (written
# by PwCalculation from the structure).
_ANY = None
PW_PARAMETERS: dict[str, dict] = {
    "CONTROL": {
        "calculation": ("scf",),
        "tprnfor": (True,),
        "tstress": (True,),
        "verbosity": ("low", "high", "default", "debug", "medium", "minimal"),
        "etot_conv_thr": _ANY,
        "forc_conv_thr": _ANY,
        "disk_io": ("none", "low", "nowf", "medium", "high", "default"),
        "max_seconds": _ANY,
        "iprint": _ANY,
    },
    "SYSTEM": {
        "ecutwfc": _ANY,
        "ecutrho": _ANY,
        "occupations": ("smearing", "fixed", "tetrahedra", "tetrahedra_opt"),
        "smearing": (
            "gaussian",
            "gauss",
            "methfessel-paxton",
            "m-p",
            "mp",
            "marzari-vanderbilt",
            "cold",
            "m-v",
            "mv",
            "fermi-dirac",
            "f-d",
            "fd",
        ),
        "degauss": _ANY,
        "nspin": (1, 2),
        "starting_magnetization": _ANY,
        "tot_charge": _ANY,
        "tot_magnetization": _ANY,
        "nbnd": _ANY,
        "input_dft": _ANY,
        "ecfixed": _ANY,
        "qcutz": _ANY,
        "q2sigma": _ANY,
        "nosym": _ANY,
        "noinv": _ANY,
        "vdw_corr": _ANY,
        "assume_isolated": _ANY,
    },
    "ELECTRONS": {
        "conv_thr": _ANY,
        "electron_maxstep": _ANY,
        "mixing_beta": _ANY,
        "mixing_mode": ("plain", "TF", "local-TF"),
        "mixing_ndim": _ANY,
        "diagonalization": ("david", "cg", "ppcg", "paro", "rmm-davidson", "rmm-paro"),
        "scf_must_converge": (True,),
        "startingwfc": ("atomic", "atomic+random", "random"),
        "startingpot": ("atomic",),
    },
}
# A string value pw.x reads inside quotes: letters, digits and a few marks; no quote, '!', '/', '&', line break.
_PLAIN = re.compile(r"[A-Za-z0-9_.+\-]{0,40}")


class PwOutputError(ValueError):
    """The outputs of a pw.x run are not a usable label; the message says why."""


def check_pw_parameters(parameters: Mapping, where: str = "pw.x parameters") -> None:
    """Refuse (ValueError, one line that starts with ``where``) a pw.x parameters dict (aiida-quantumespresso's
    format: namelists in upper case, then keywords) outside :data:`PW_PARAMETERS`, or with a value that is not a
    boolean, a finite number, a plain string or a list or mapping of those (``starting_magnetization``)."""
    if not isinstance(parameters, Mapping):
        raise ValueError(f"{where}: expected a mapping of namelists, got {type(parameters).__name__}")
    for namelist, keywords in parameters.items():
        allowed = PW_PARAMETERS.get(namelist)
        if allowed is None:
            raise ValueError(f"{where}: namelist {namelist!r} is not allowed; allowed: {', '.join(PW_PARAMETERS)}")
        if not isinstance(keywords, Mapping):
            raise ValueError(f"{where}: {namelist} must be a mapping of keywords")
        for key, value in keywords.items():
            if key not in allowed:
                raise ValueError(
                    f"{where}: {namelist}.{key} is not allowed (files, folders, restarts and other calculations "
                    f"are set by the oracle, never by data); allowed: {', '.join(allowed)}"
                )
            rule = allowed[key]
            for item in _leaves(value):
                _check_value(item, f"{namelist}.{key}", where)
                if rule is not _ANY and item not in rule:
                    raise ValueError(f"{where}: {namelist}.{key} must be one of {list(rule)}, got {item!r}")


def _leaves(value):
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not (isinstance(key, str) and _PLAIN.fullmatch(key)):
                raise ValueError(f"the key {key!r} is not a plain name")
            yield from _leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _check_value(value, here: str, where: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, numbers.Real):
        if math.isfinite(value):
            return
    elif isinstance(value, str) and _PLAIN.fullmatch(value):
        return
    raise ValueError(
        f"{where}: {here} has the value {value!r}: give a boolean, a finite number or a plain word (letters, digits "
        "and _.+- only)"
    )


def read_pw_labels(output_parameters: Mapping, forces, stress=None, natoms: int | None = None) -> dict:
    """``{"energy", "forces", "stress"}`` (eV, eV/Å, eV/Å³ in Voigt order with ASE's sign, or None) of one pw.x
    single point, from ``output_parameters`` (a plain dict) and the ``forces`` (steps, N, 3) and ``stress``
    (steps, 3, 3, GPa, pw.x's sign) arrays of its ``output_trajectory``; the last step is the label. Raises
    :class:`PwOutputError` when the energy or the forces are missing or the energy is not in eV."""
    energy = output_parameters.get("energy")
    if not isinstance(energy, numbers.Real) or isinstance(energy, bool):
        raise PwOutputError("output_parameters has no energy")
    energy_units = output_parameters.get("energy_units", "eV")
    if energy_units != "eV":
        raise PwOutputError(f"the energy is in {energy_units!r}, expected eV")
    if forces is None:
        raise PwOutputError("no forces: run pw.x with CONTROL.tprnfor = .true.")
    forces = np.asarray(forces, dtype=float)
    forces = forces[-1] if forces.ndim == 3 else forces
    if natoms is not None and forces.shape != (natoms, 3):
        raise PwOutputError(f"forces have shape {forces.shape}, the structure has {natoms} atoms")
    voigt = None
    if stress is not None:
        tensor = np.asarray(stress, dtype=float)
        tensor = tensor[-1] if tensor.ndim == 3 else tensor
        # pw.x: positive under compression, GPa -> ASE: negative under compression, eV/Å³
        tensor = -tensor * units.GPa
        voigt = np.array([tensor[0, 0], tensor[1, 1], tensor[2, 2], tensor[1, 2], tensor[0, 2], tensor[0, 1]])
    return {"energy": float(energy), "forces": forces, "stress": voigt}


def kpoint_spacing(cell, pbc: Sequence[bool], mesh: Sequence[int]) -> float | None:
    """The largest distance between k-points (1/Å, 2π included) of a Monkhorst-Pack ``mesh`` for ``cell``, over its
    periodic directions: the inverse of :func:`~aiida_mlip_trainer.formats.cp2k.kpoint_mesh`. None without a
    periodic direction."""
    reciprocal = 2.0 * math.pi * np.linalg.inv(np.asarray(cell, dtype=float)).T
    spacings = [float(np.linalg.norm(reciprocal[axis])) / max(int(mesh[axis]), 1) for axis in range(3) if pbc[axis]]
    return max(spacings) if spacings else None


def pw_settings(parameters: Mapping, pseudos: Mapping[str, str]) -> dict:
    """The settings of a pw.x run that must agree across a training set, from its input ``parameters`` (a plain
    dict) and ``pseudos`` (kind -> the pseudopotential's md5 or name): functional, pseudopotentials, cutoffs (Ry),
    smearing and spin. The k-point density is compared separately (with a tolerance)."""
    system = parameters.get("SYSTEM", {})
    ecutwfc = system.get("ecutwfc")
    occupations = system.get("occupations", "fixed")
    return {
        "code": "quantumespresso.pw",
        "functional": str(system.get("input_dft", "from the pseudopotentials")),
        "pseudopotentials": {kind: str(value) for kind, value in sorted(pseudos.items())},
        "ecutwfc": ecutwfc,
        "ecutrho": system.get("ecutrho", 4.0 * ecutwfc if isinstance(ecutwfc, numbers.Real) else None),
        "smearing": (
            f"{system.get('smearing', 'gaussian')}, degauss {system.get('degauss', 0.0)} Ry"
            if occupations == "smearing"
            else str(occupations)
        ),
        "spin": "polarized" if system.get("nspin", 1) == 2 else "unpolarized",
    }
