"""`TrainingSetData`: labelled (or unlabelled) atomic structures, stored without pickles.

The content lives in the node's repository as one ``.npz`` archive of plain numeric and string arrays, read back
with ``allow_pickle=False``: loading a node from someone else's AiiDA archive can never execute code. pacemaker's
pandas ``pckl.gzip`` is produced only when a calculation prepares its input folder (:meth:`write_pacemaker_pickle`).

Units: positions and cell in Å, energies in eV (total energy of the structure), forces in eV/Å, stress in eV/Å³
in Voigt order (xx, yy, zz, yz, xz, xy), the ASE conventions.

What is refused at construction, naming the structure (thresholds are keywords of the constructor):

- structures pacemaker cannot read: no atoms, an atomic number that is not an element, NaN or inf anywhere, a
  structure name with a line break (it would break every line-based format), **mixed periodicity** such as a slab
  with pbc ``(True, True, False)`` (pacemaker's neighbour lists take fully periodic or non-periodic cells only: pad
  the slab with vacuum and make it fully periodic), a periodic cell that is flat or degenerate;
- two atoms closer than ``min_distance`` (default 0.1 Å, periodic images included): a duplicated atom or a unit
  error, which would otherwise end as a NaN loss that names no structure;
- labels beyond physical bounds: ``|E|/atom`` above ``max_energy_per_atom`` (default 1e7 eV, an order of magnitude
  above the all-electron total energy of the heaviest atoms) or a force above ``max_force`` (default 1e5 eV/Å,
  several times the screened nuclear repulsion of two tungsten atoms 0.5 Å apart): a unit error, e.g. energies in
  meV.

A stored node is untrusted when it is loaded again (it may come from an archive): :meth:`TrainingSetData.get_arrays`
re-checks the arrays' names, dtypes and shapes, finite values, names and periodicity, and compares them with the
``content_hash`` attribute, before anything is read from them.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from aiida import orm

from ..names import UnsafeNameError, check_element_symbols, control_characters

__all__ = ("TrainingSetData", "TrainingSetError")

ARRAYS_FILENAME = "training_set.npz"
# The other energy column of an imported pacemaker dataset (energy or energy_corrected), kept next to the arrays.
OTHER_ENERGIES_FILENAME = "other_energies.npz"
FORMAT_VERSION = 1
MAX_ATOMIC_NUMBER = 118

# Default thresholds of the checks at construction (see the module docstring), overridable with the keywords of the
# same names; the values used are recorded in the node's `checks` attribute.
DEFAULT_CHECKS = {"min_distance": 0.1, "max_energy_per_atom": 1.0e7, "max_force": 1.0e5}
# |det(cell)| / (|a| |b| |c|), 1 for a cube, sin(angle) for two vectors at an angle: below this a periodic cell is
# flat (its vectors nearly coplanar or collinear). No real crystal comes near it.
MIN_NORMALISED_CELL_VOLUME = 1e-3

# Array names in a fixed order: the content hash depends on it.
_STRUCTURE_KEYS = ("natoms", "numbers", "positions", "cell", "pbc", "names")
_LABEL_KEYS = ("energy", "forces")
_STRESS_KEY = "stress"


class TrainingSetError(ValueError):
    """A training set was refused; the message names the structure and the problem."""


def _describe(index: int, names: Sequence[str] | np.ndarray) -> str:
    # str(): a numpy string would print as np.str_('x')
    return f"structure {index} ({str(names[index])!r})"


def _to_voigt(stress: Any, where: str) -> np.ndarray:
    array = np.asarray(stress, dtype=float)
    if array.shape == (6,):
        return array
    if array.shape in ((3, 3), (9,)):
        s = array.reshape(3, 3)
        return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
    raise TrainingSetError(f"{where}: stress has shape {array.shape}, expected (6,) Voigt or (3, 3)")


def _labels_of(atoms, where: str, energy_key: str, forces_key: str, stress_key: str):
    """Energy, forces and stress (or None) of one structure: its calculator first, then ``info``/``arrays``."""
    from ase.calculators.calculator import PropertyNotImplementedError

    energy = forces = stress = None
    calc = atoms.calc
    if calc is not None:
        try:
            energy = atoms.get_potential_energy()
        except (PropertyNotImplementedError, RuntimeError):
            energy = None
            results, check_state = getattr(calc, "results", {}), getattr(calc, "check_state", None)
            if ("energy" in results or "forces" in results) and check_state is not None and check_state(atoms):
                # The calculator refuses results for atoms that changed since: say so instead of "no energy".
                raise TrainingSetError(
                    f"{where}: its calculator's results belong to other positions or another cell (the atoms were "
                    "changed after they were labelled): label the structure as it is"
                ) from None
        try:
            forces = atoms.get_forces()
        except (PropertyNotImplementedError, RuntimeError):
            forces = None
        results = getattr(calc, "results", {})
        if "stress" in results:
            stress = results["stress"]
        elif "stress" in getattr(calc, "implemented_properties", ()) and atoms.pbc.all():
            try:
                stress = atoms.get_stress()
            except (PropertyNotImplementedError, RuntimeError):
                stress = None
    if energy is None and energy_key in atoms.info:
        energy = atoms.info[energy_key]
    if forces is None and forces_key in atoms.arrays:
        forces = atoms.arrays[forces_key]
    if stress is None and stress_key in atoms.info:
        stress = atoms.info[stress_key]

    if energy is None:
        raise TrainingSetError(
            f"{where}: no energy (no calculator result and no info[{energy_key!r}]); "
            "pass labelled=False for an unlabelled pool"
        )
    if forces is None:
        raise TrainingSetError(
            f"{where}: no forces (no calculator result and no arrays[{forces_key!r}]); "
            "pass labelled=False for an unlabelled pool"
        )
    try:
        energy = float(np.asarray(energy, dtype=float).reshape(()))
    except (TypeError, ValueError) as exc:
        raise TrainingSetError(f"{where}: energy {energy!r} is not a single number") from exc
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3):
        raise TrainingSetError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    if stress is not None:
        stress = _to_voigt(stress, where)
    return energy, forces, stress


def arrays_from_atoms(
    structures: Iterable,
    *,
    labelled: bool = True,
    energy_key: str = "energy",
    forces_key: str = "forces",
    stress_key: str = "stress",
) -> dict[str, np.ndarray]:
    """Collect a list of :class:`ase.Atoms` into the flat arrays a :class:`TrainingSetData` stores."""
    natoms, numbers, positions, cells, pbcs, names = [], [], [], [], [], []
    energies, forces, stresses = [], [], []
    for index, atoms in enumerate(structures):
        name = str(atoms.info.get("name", f"structure_{index}"))
        where = f"structure {index} ({name!r})"
        # Before the labels: a calculator refuses to give results for positions that compare unequal (NaN), which
        # would otherwise read as "no energy".
        if not (np.isfinite(atoms.positions).all() and np.isfinite(atoms.cell.array).all()):
            rows = np.flatnonzero(~np.isfinite(atoms.positions).all(axis=1))
            detail = f"positions contains NaN or inf (atom {int(rows[0])})" if rows.size else "cell contains NaN or inf"
            raise TrainingSetError(f"{where}: {detail}")
        natoms.append(len(atoms))
        numbers.append(atoms.numbers)
        positions.append(atoms.positions)
        cells.append(atoms.cell.array)
        pbcs.append(atoms.pbc)
        names.append(name)
        if labelled:
            energy, force, stress = _labels_of(atoms, where, energy_key, forces_key, stress_key)
            energies.append(energy)
            forces.append(force)
            stresses.append(stress)

    arrays: dict[str, np.ndarray] = {
        "natoms": np.asarray(natoms, dtype=np.int64),
        "numbers": np.concatenate(numbers).astype(np.int64) if numbers else np.zeros(0, dtype=np.int64),
        "positions": np.concatenate(positions).astype(float) if positions else np.zeros((0, 3)),
        "cell": np.asarray(cells, dtype=float).reshape(-1, 3, 3),
        "pbc": np.asarray(pbcs, dtype=bool).reshape(-1, 3),
        "names": np.asarray(names, dtype=str),
    }
    if labelled:
        arrays["energy"] = np.asarray(energies, dtype=float)
        arrays["forces"] = np.concatenate(forces).astype(float) if forces else np.zeros((0, 3))
        with_stress = [s is not None for s in stresses]
        if any(with_stress):
            if not all(with_stress):
                missing = with_stress.index(False)
                raise TrainingSetError(
                    f"{_describe(missing, names)}: has no stress while others do; give stress for all structures "
                    f"or for none"
                )
            arrays[_STRESS_KEY] = np.asarray(stresses, dtype=float)
    return arrays


# dtype kind of each array ('i' integer, 'f' float, 'b' bool, 'U' unicode string) and its number of dimensions.
_ARRAY_TYPES = {
    "natoms": ("iu", 1),
    "numbers": ("iu", 1),
    "positions": ("f", 2),
    "cell": ("f", 3),
    "pbc": ("b", 2),
    "names": ("U", 1),
    "energy": ("f", 1),
    "forces": ("f", 2),
    "stress": ("f", 2),
}


def check_array_types(arrays: dict[str, np.ndarray]) -> None:
    """Refuse unknown, missing or mistyped arrays: only the known names, each with its dtype kind and dimensions
    (no object arrays, no strings where numbers belong)."""
    unknown = sorted(set(arrays) - set(_ARRAY_TYPES))
    if unknown:
        raise TrainingSetError(f"unknown array(s) {unknown}; a training set holds only {list(_ARRAY_TYPES)}")
    missing = [key for key in _STRUCTURE_KEYS if key not in arrays]
    if ("energy" in arrays) != ("forces" in arrays):
        missing.append("forces" if "energy" in arrays else "energy")
    if _STRESS_KEY in arrays and "energy" not in arrays:
        missing.append("energy")
    if missing:
        raise TrainingSetError(f"array(s) {missing} are missing")
    for key, value in arrays.items():
        kinds, ndim = _ARRAY_TYPES[key]
        if value.dtype.kind not in kinds or value.ndim != ndim:
            raise TrainingSetError(
                f"array {key!r} has dtype {value.dtype} and {value.ndim} dimension(s), expected kind {kinds!r} "
                f"and {ndim}"
            )


def validate_arrays(
    arrays: dict[str, np.ndarray],
    *,
    min_distance: float | None = DEFAULT_CHECKS["min_distance"],
    max_energy_per_atom: float = DEFAULT_CHECKS["max_energy_per_atom"],
    max_force: float = DEFAULT_CHECKS["max_force"],
) -> None:
    """Refuse inconsistent, non-physical or unfittable content; every message names the offending structure.

    ``min_distance`` (Å) is the shortest distance allowed between two atoms, periodic images included (None skips
    this check, the only one that needs neighbour lists); ``max_energy_per_atom`` (eV) bounds ``|E|/N`` and
    ``max_force`` (eV/Å) the force on one atom."""
    check_array_types(arrays)
    names = arrays["names"]
    natoms = arrays["natoms"]
    num_structures = len(natoms)
    if num_structures == 0:
        raise TrainingSetError("the training set is empty: give at least one structure")
    if len(names) != num_structures or len(arrays["cell"]) != num_structures or len(arrays["pbc"]) != num_structures:
        raise TrainingSetError("names, cell and pbc must have one entry per structure")
    if arrays["cell"].shape[1:] != (3, 3) or arrays["pbc"].shape[1:] != (3,):
        raise TrainingSetError(f"cell and pbc have shapes {arrays['cell'].shape} and {arrays['pbc'].shape}")
    empty = np.flatnonzero(natoms <= 0)
    if empty.size:
        raise TrainingSetError(f"{_describe(int(empty[0]), names)}: has no atoms")
    total = int(natoms.sum())
    offsets = np.concatenate([[0], np.cumsum(natoms)])

    def owner(atom_index: int) -> int:
        return int(np.searchsorted(offsets, atom_index, side="right") - 1)

    for key, shape in (("numbers", (total,)), ("positions", (total, 3))):
        if arrays[key].shape != shape:
            raise TrainingSetError(f"{key} has shape {arrays[key].shape}, expected {shape}")

    for index, name in enumerate(names.tolist()):
        if control_characters(name):
            raise TrainingSetError(
                f"{_describe(index, names)}: the name contains a line break or another control character, which "
                "breaks line-based formats such as extxyz: give a one-line name"
            )

    numbers = arrays["numbers"]
    bad = np.flatnonzero((numbers < 1) | (numbers > MAX_ATOMIC_NUMBER))
    if bad.size:
        atom = int(bad[0])
        index = owner(atom)
        raise TrainingSetError(
            f"{_describe(index, names)}: atom {atom - offsets[index]} has atomic number {numbers[atom]}, "
            "which is not a chemical element"
        )

    def check_finite(key: str, per_atom: bool) -> None:
        values = arrays[key].reshape(len(arrays[key]), -1)
        rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if rows.size:
            row = int(rows[0])
            index = owner(row) if per_atom else row
            detail = f" (atom {row - offsets[index]})" if per_atom else ""
            raise TrainingSetError(f"{_describe(index, names)}: {key} contains NaN or inf{detail}")

    check_finite("positions", per_atom=True)
    check_finite("cell", per_atom=False)

    pbc = arrays["pbc"]
    mixed = np.flatnonzero(pbc.any(axis=1) & ~pbc.all(axis=1))
    if mixed.size:
        index = int(mixed[0])
        raise TrainingSetError(
            f"{_describe(index, names)}: pbc {tuple(bool(p) for p in pbc[index])} is mixed; pacemaker fits only "
            "fully periodic or non-periodic structures: pad the non-periodic direction with vacuum and make the cell "
            "fully periodic (e.g. atoms.center(vacuum=10.0, axis=2); atoms.pbc = True), or make it non-periodic"
        )
    cell = arrays["cell"]
    cell_lengths = np.linalg.norm(cell, axis=2)
    bad_cell = np.flatnonzero((pbc & (cell_lengths < 1e-8)).any(axis=1))
    if bad_cell.size:
        raise TrainingSetError(
            f"{_describe(int(bad_cell[0]), names)}: is periodic along a direction whose cell vector is zero "
            "(a molecule needs pbc=False, or give the cell)"
        )
    periodic = pbc.all(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = np.abs(np.linalg.det(cell)) / np.prod(cell_lengths, axis=1)
    flat = np.flatnonzero(periodic & ~(normalised >= MIN_NORMALISED_CELL_VOLUME))
    if flat.size:
        index = int(flat[0])
        volume = abs(float(np.linalg.det(cell[index])))
        raise TrainingSetError(
            f"{_describe(index, names)}: the periodic cell is flat or degenerate (volume {volume:.3g} Å³, its vectors "
            "nearly coplanar): give three independent cell vectors"
        )

    if "energy" in arrays:
        if arrays["energy"].shape != (num_structures,):
            raise TrainingSetError(f"energy has shape {arrays['energy'].shape}, expected ({num_structures},)")
        if arrays["forces"].shape != (total, 3):
            raise TrainingSetError(f"forces have shape {arrays['forces'].shape}, expected ({total}, 3)")
        check_finite("energy", per_atom=False)
        check_finite("forces", per_atom=True)
        per_atom = np.abs(arrays["energy"]) / natoms
        beyond = np.flatnonzero(per_atom > max_energy_per_atom)
        if beyond.size:
            index = int(beyond[0])
            raise TrainingSetError(
                f"{_describe(index, names)}: energy {arrays['energy'][index]:.6g} eV is {per_atom[index]:.3g} eV/atom "
                f"in magnitude, beyond max_energy_per_atom={max_energy_per_atom:.3g} eV: energies must be total "
                "energies in eV (a unit error?); pass a larger max_energy_per_atom only if this is real"
            )
        norms = np.linalg.norm(arrays["forces"], axis=1)
        beyond = np.flatnonzero(norms > max_force)
        if beyond.size:
            atom = int(beyond[0])
            index = owner(atom)
            raise TrainingSetError(
                f"{_describe(index, names)}: atom {atom - offsets[index]} has a force of {norms[atom]:.3g} eV/Å, "
                f"beyond max_force={max_force:.3g} eV/Å: forces must be in eV/Å (a unit error?); pass a larger "
                "max_force only if this is real"
            )
    if _STRESS_KEY in arrays:
        if arrays[_STRESS_KEY].shape != (num_structures, 6):
            raise TrainingSetError(f"stress has shape {arrays[_STRESS_KEY].shape}, expected ({num_structures}, 6)")
        check_finite(_STRESS_KEY, per_atom=False)

    if min_distance:
        for index in range(num_structures):
            start, stop = offsets[index], offsets[index + 1]
            close = closest_pair(arrays["positions"][start:stop], cell[index], bool(periodic[index]), min_distance)
            if close is not None:
                i, j, distance = close
                raise TrainingSetError(
                    f"{_describe(index, names)}: atoms {i} and {j} are {distance:.3g} Å apart (periodic images "
                    f"included), closer than min_distance={min_distance:g} Å: a duplicated atom or a unit error? "
                    "Fix the structure, or pass a smaller min_distance if it is real"
                )


def closest_pair(positions: np.ndarray, cell: np.ndarray, periodic: bool, min_distance: float):
    """``(i, j, distance)`` of the closest pair of atoms nearer than ``min_distance`` (Å), periodic images included
    (``j == i`` for an atom and its own image), or None."""
    from matscipy.neighbours import neighbour_list

    count = len(positions)
    if periodic:
        # matscipy bins space in cubes of the cutoff: a cutoff near the mean spacing keeps the bins few and the
        # pairs within it few (about one per atom), however small min_distance is.
        volume = abs(float(np.linalg.det(cell)))
        cutoff = max(min_distance, 0.5 * (volume / count) ** (1 / 3))
        i, j, d = neighbour_list("ijd", positions=positions, cell=cell, pbc=np.ones(3, bool), cutoff=cutoff)
    else:
        if count < 2:
            return None
        # A box around the atoms: matscipy needs a cell to bin in, even without periodicity.
        low = positions.min(axis=0)
        span = positions.max(axis=0) - low
        cutoff = max(min_distance, 0.5 * (float(np.prod(span + 1.0)) / count) ** (1 / 3))
        box = np.diag(span + 2 * cutoff)
        i, j, d = neighbour_list(
            "ijd", positions=positions - low + cutoff, cell=box, pbc=np.zeros(3, bool), cutoff=cutoff
        )
    inside = np.flatnonzero(d < min_distance)
    if not inside.size:
        return None
    k = inside[np.argmin(d[inside])]
    return int(min(i[k], j[k])), int(max(i[k], j[k])), float(d[k])


def content_hash(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes, in a fixed order (independent of zip metadata)."""
    digest = hashlib.sha256()
    for key in (*_STRUCTURE_KEYS, *_LABEL_KEYS, _STRESS_KEY):
        if key not in arrays:
            continue
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class TrainingSetData(orm.Data):
    """Atomic structures with DFT labels (energy, forces, optional stress), or an unlabelled pool of candidates.

    Build it from a list of :class:`ase.Atoms` (labels from their calculators, else from ``info``/``arrays``),
    with :meth:`from_file` (anything :func:`ase.io.read` reads: extxyz, ASE db, ...) or, for files you trust,
    :meth:`from_pacemaker_pickle`. Queryable attributes: ``num_structures``, ``num_atoms``, ``elements``,
    ``labelled``, ``has_stress``, ``energy_per_atom_min``/``max``/``std`` (eV/atom), ``force_component_rms``
    and ``force_norm_max`` (eV/Å), ``content_hash`` and ``checks`` (the thresholds it was checked with).

    What is refused, and the thresholds, are in the module docstring: ``min_distance`` (Å, default 0.1; None or 0
    skips the check), ``max_energy_per_atom`` (eV, default 1e7) and ``max_force`` (eV/Å, default 1e5) are keywords
    for the rare data that need other bounds. A set derived from this one (a subset, a residual) should be built
    with the same thresholds: ``TrainingSetData(arrays=..., **parent.checks)``.
    """

    def __init__(
        self,
        structures: Iterable | None = None,
        *,
        labelled: bool = True,
        energy_key: str = "energy",
        forces_key: str = "forces",
        stress_key: str = "stress",
        arrays: dict[str, np.ndarray] | None = None,
        min_distance: float | None = DEFAULT_CHECKS["min_distance"],
        max_energy_per_atom: float = DEFAULT_CHECKS["max_energy_per_atom"],
        max_force: float = DEFAULT_CHECKS["max_force"],
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (structures is None) == (arrays is None):
            raise TypeError("give either `structures` (a list of ase.Atoms) or `arrays`")
        checks = _checked_thresholds(
            min_distance=min_distance, max_energy_per_atom=max_energy_per_atom, max_force=max_force
        )
        if arrays is None:
            arrays = arrays_from_atoms(
                structures, labelled=labelled, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key
            )
        self._set_arrays(arrays, checks)

    # ----------------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_file(cls, path: str | os.PathLike, *, index: str | int = ":", format: str | None = None, **kwargs):
        """Read every structure of a file ASE can read (extxyz, ASE database, VASP OUTCAR, ...)."""
        from ase.io import read

        structures = read(str(path), index=index, format=format)
        if not isinstance(structures, list):
            structures = [structures]
        return cls(structures, **kwargs)

    @classmethod
    def from_pacemaker_pickle(cls, path: str | os.PathLike, *, trusted: bool = False, labelled: bool = True, **kwargs):
        """Import an existing pacemaker dataset (pandas ``pckl.gzip``).

        Unpickling runs whatever code the file contains, so this needs ``trusted=True``: only import files you
        made yourself or got from people you trust. Which energy column is used, and what happens to the other
        columns, is described in :meth:`from_dataframe`.
        """
        if not trusted:
            raise TrainingSetError(
                f"{path}: a pickle can execute arbitrary code when loaded; pass trusted=True only for files you trust"
            )
        import pandas as pd

        # pandas does not infer gzip from pacemaker's `.pckl.gzip` suffix: look at the magic bytes instead.
        with open(path, "rb") as handle:
            compression = "gzip" if handle.read(2) == b"\x1f\x8b" else None
        frame = pd.read_pickle(path, compression=compression)
        return cls.from_dataframe(frame, labelled=labelled, **kwargs)

    @classmethod
    def from_dataframe(cls, frame, *, labelled: bool = True, energy_column: str | None = None, **kwargs):
        """Build from a DataFrame with pacemaker's columns (``ase_atoms``, ``energy_corrected`` and/or ``energy``,
        ``forces``, optional ``stress`` and ``name``).

        The fitted energy is ``energy_column``: by default ``energy_corrected`` when present (what pacemaker fits),
        else ``energy``. Nothing is dropped silently: the node records ``energy_column``; when the frame has both
        columns the other one is kept in the repository (:meth:`get_other_energies`) and summarised in the
        ``other_energy`` attribute (its column name and, when the difference is a sum of per-element constants as
        for pacemaker's reference energies, those constants in eV per atom); every other column that is not kept
        is listed in ``dropped_columns`` (and logged as a warning).
        """
        import logging

        from ase.calculators.singlepoint import SinglePointCalculator

        if "ase_atoms" not in frame.columns:
            raise TrainingSetError("the DataFrame has no 'ase_atoms' column")
        energies = [column for column in ("energy_corrected", "energy") if column in frame.columns]
        if energy_column is None:
            energy_column = energies[0] if energies else "energy"
        elif energy_column not in ("energy_corrected", "energy"):
            raise TrainingSetError(f"energy_column must be 'energy_corrected' or 'energy', got {energy_column!r}")
        if labelled and energy_column not in frame.columns:
            raise TrainingSetError(f"the DataFrame has no {energy_column!r} column (columns: {list(frame.columns)})")
        structures = []
        for row_index, (_, row) in enumerate(frame.iterrows()):
            atoms = row["ase_atoms"].copy()
            if "name" in frame.columns:
                atoms.info["name"] = str(row["name"])
            atoms.calc = None
            if labelled:
                if "forces" not in frame.columns:
                    raise TrainingSetError(f"structure {row_index}: the DataFrame has no column(s) ['forces']")
                results = {"energy": row[energy_column], "forces": row["forces"]}
                if "stress" in frame.columns and row["stress"] is not None:
                    results["stress"] = _to_voigt(row["stress"], f"structure {row_index}")
                atoms.calc = SinglePointCalculator(atoms, **results)
            structures.append(atoms)
        node = cls(structures, labelled=labelled, **kwargs)

        kept = {"ase_atoms", "name"} | ({energy_column, "forces", "stress"} if labelled else set())
        other = [column for column in energies if column != energy_column] if labelled else []
        attributes: dict[str, Any] = {}
        if labelled:
            attributes["energy_column"] = energy_column
        if other:
            values = np.asarray(frame[other[0]].to_numpy(), dtype=float)
            node._set_other_energies(other[0], values)
            attributes["other_energy"] = {
                "column": other[0],
                "per_element_shift": _per_element_shift(node.get_arrays(), values - node.get_arrays()["energy"]),
            }
            kept.add(other[0])
        dropped = sorted(str(column) for column in frame.columns if column not in kept)
        if dropped:
            attributes["dropped_columns"] = dropped
            logging.getLogger(__name__).warning("from_dataframe: columns not kept on the node: %s", dropped)
        node.base.attributes.set_many(attributes)
        return node

    # ---------------------------------------------------------------------------------------------------- storage
    def _set_arrays(self, arrays: dict[str, np.ndarray], checks: dict[str, float | None]) -> None:
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        validate_arrays(arrays, **checks)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, ARRAYS_FILENAME)
        self._cached_arrays = arrays
        attributes = {
            "format_version": FORMAT_VERSION,
            "filename": ARRAYS_FILENAME,
            **_summary(arrays),
            "content_hash": content_hash(arrays),
            "checks": checks,
        }
        if "energy" in arrays:
            natoms = arrays["natoms"]
            per_atom = arrays["energy"] / natoms
            forces = arrays["forces"]
            attributes.update(
                energy_per_atom_min=float(per_atom.min()),
                energy_per_atom_max=float(per_atom.max()),
                energy_per_atom_std=float(per_atom.std()),
                force_component_rms=float(np.sqrt(np.mean(forces**2))),
                force_norm_max=float(np.linalg.norm(forces, axis=1).max()),
            )
        self.base.attributes.set_many(attributes)

    def _set_other_energies(self, column: str, values: np.ndarray) -> None:
        if values.shape != (self.num_structures,) or not np.isfinite(values).all():
            raise TrainingSetError(f"the {column!r} column must hold one finite energy per structure")
        buffer = io.BytesIO()
        np.savez(buffer, **{column: values})
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, OTHER_ENERGIES_FILENAME)

    def get_other_energies(self) -> dict[str, np.ndarray]:
        """The energy column of an imported pacemaker dataset that was not fitted (``energy`` when
        ``energy_corrected`` was used, or the reverse), total energies in eV; ``{}`` when there was none."""
        if OTHER_ENERGIES_FILENAME not in self.base.repository.list_object_names():
            return {}
        content = self.base.repository.get_object_content(OTHER_ENERGIES_FILENAME, mode="rb")
        try:
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                values = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise TrainingSetError(f"{self._where()}: {OTHER_ENERGIES_FILENAME} cannot be read: {error}") from None
        if any(v.dtype.kind != "f" or v.shape != (self.num_structures,) for v in values.values()):
            raise TrainingSetError(f"{self._where()}: {OTHER_ENERGIES_FILENAME} holds something else than energies")
        return values

    def get_arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays (``natoms``, ``numbers``, ``positions``, ``cell``, ``pbc``, ``names``, and when
        labelled ``energy``, ``forces``, optionally ``stress``).

        A stored node is untrusted (it may come from someone else's archive): its ``.npz`` is read without pickle
        support, and its arrays are checked again (names, dtypes, shapes, finite values, structure names,
        periodicity, label bounds) and compared with the ``content_hash`` and summary attributes before they are
        returned; a mismatch raises :class:`TrainingSetError` naming the node."""
        cached = getattr(self, "_cached_arrays", None)
        if cached is None:
            cached = self._load_arrays()
            self._cached_arrays = cached
        return cached

    def _where(self) -> str:
        return f"TrainingSetData<{self.pk}> ({self.uuid})" if self.is_stored else "an unstored TrainingSetData"

    def verify(self) -> TrainingSetData:
        """Check what reaches other programs (element symbols, the baseline, the arrays against the content hash)
        and return the node; :class:`TrainingSetError` naming the node when it is corrupt or was altered."""
        from ..physics.baselines import BaselineError, validate_baseline

        self.elements  # noqa: B018 - reading it is the check
        baseline = self.base.attributes.get("baseline", None)
        if baseline is not None:
            try:
                validate_baseline(baseline)
            except BaselineError as error:
                raise TrainingSetError(f"{self._where()} attribute 'baseline': {error}") from None
        self.get_arrays()
        return self

    def _load_arrays(self) -> dict[str, np.ndarray]:
        where = self._where()
        tampered = "the node is corrupt or was altered (e.g. in an archive): do not use it"
        try:
            content = self.base.repository.get_object_content(ARRAYS_FILENAME, mode="rb")
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:  # object arrays raise ValueError without pickle
            raise TrainingSetError(f"{where}: {ARRAYS_FILENAME} cannot be read safely ({error}); {tampered}") from None
        stored = self.base.attributes.all
        checks = {**DEFAULT_CHECKS, **(stored.get("checks") or {}), "min_distance": None}  # the hash covers geometry
        try:
            validate_arrays(arrays, **_checked_thresholds(**checks))
        except (TrainingSetError, TypeError, ValueError) as error:
            raise TrainingSetError(f"{where}: {error}; {tampered}") from None
        if content_hash(arrays) != stored.get("content_hash"):
            raise TrainingSetError(f"{where}: its arrays do not match its content_hash attribute; {tampered}")
        summary = _summary(arrays)
        differs = sorted(key for key, value in summary.items() if stored.get(key) != value)
        if differs:
            raise TrainingSetError(f"{where}: attribute(s) {differs} do not match its arrays; {tampered}")
        return arrays

    # ----------------------------------------------------------------------------------------------- attributes
    @property
    def num_structures(self) -> int:
        return self.base.attributes.get("num_structures")

    @property
    def num_atoms(self) -> int:
        return self.base.attributes.get("num_atoms")

    @property
    def elements(self) -> list[str]:
        """The chemical symbols of the set, sorted; checked to be symbols (they reach pacemaker's input.yaml)."""
        try:
            return check_element_symbols(self.base.attributes.get("elements"), f"{self._where()} attribute 'elements'")
        except UnsafeNameError as error:
            raise TrainingSetError(f"{error}: the node is corrupt or was altered; do not use it") from None

    @property
    def checks(self) -> dict[str, float | None]:
        """The thresholds this set was checked with (``min_distance``, ``max_energy_per_atom``, ``max_force``), to
        build a derived set with the same ones: ``TrainingSetData(arrays=..., **parent.checks)``."""
        return _checked_thresholds(**{**DEFAULT_CHECKS, **(self.base.attributes.get("checks", None) or {})})

    @property
    def labelled(self) -> bool:
        return self.base.attributes.get("labelled")

    @property
    def has_stress(self) -> bool:
        return self.base.attributes.get("has_stress")

    @property
    def content_hash(self) -> str:
        return self.base.attributes.get("content_hash")

    def __len__(self) -> int:
        return self.num_structures

    def pair_min_distances(self, cutoff: float | None = None) -> dict[str, float]:
        """The shortest distance (Å) of every element pair in the set, periodic images included: ``{"Cu-Ni": 2.21,
        ...}``; pairs never closer than ``cutoff`` (default 5 Å) are left out. See
        :func:`aiida_mlip_trainer.physics.baselines.pair_min_distances` (one neighbour list per structure)."""
        from ..physics.baselines import MIN_DISTANCE_SEARCH_CUTOFF, pair_min_distances

        return pair_min_distances(self.to_atoms(), MIN_DISTANCE_SEARCH_CUTOFF if cutoff is None else cutoff)

    # -------------------------------------------------------------------------------------------------- exports
    def to_atoms(self) -> list:
        """The structures as :class:`ase.Atoms`; labels, when present, on a ``SinglePointCalculator``."""
        from ase import Atoms
        from ase.calculators.singlepoint import SinglePointCalculator

        arrays = self.get_arrays()
        offsets = np.concatenate([[0], np.cumsum(arrays["natoms"])])
        structures = []
        for index in range(len(arrays["natoms"])):
            start, stop = offsets[index], offsets[index + 1]
            atoms = Atoms(
                numbers=arrays["numbers"][start:stop],
                positions=arrays["positions"][start:stop],
                cell=arrays["cell"][index],
                pbc=arrays["pbc"][index],
            )
            atoms.info["name"] = str(arrays["names"][index])
            if "energy" in arrays:
                results = {"energy": float(arrays["energy"][index]), "forces": arrays["forces"][start:stop].copy()}
                if _STRESS_KEY in arrays:
                    results["stress"] = arrays[_STRESS_KEY][index].copy()
                atoms.calc = SinglePointCalculator(atoms, **results)
            structures.append(atoms)
        return structures

    def to_dataframe(self):
        """A pandas DataFrame in pacemaker's layout: ``name``, ``ase_atoms`` and, when labelled, ``energy``,
        ``energy_corrected`` (the same total energy: no reference energies are subtracted), ``forces`` and
        ``stress``."""
        import pandas as pd

        structures = self.to_atoms()
        columns: dict[str, list] = {"name": [a.info["name"] for a in structures], "ase_atoms": structures}
        if self.labelled:
            arrays = self.get_arrays()
            offsets = np.concatenate([[0], np.cumsum(arrays["natoms"])])
            energies = arrays["energy"].tolist()
            columns["energy"] = energies
            columns["energy_corrected"] = energies
            columns["forces"] = [arrays["forces"][offsets[i] : offsets[i + 1]] for i in range(len(structures))]
            if _STRESS_KEY in arrays:
                columns["stress"] = list(arrays[_STRESS_KEY])
            for atoms in structures:
                atoms.calc = None
        return pd.DataFrame(columns)

    def write_pacemaker_pickle(self, path: str | os.PathLike) -> pathlib.Path:
        """Write pacemaker's dataset file (gzip-compressed pandas pickle, protocol 4) and return its path."""
        path = pathlib.Path(path)
        self.to_dataframe().to_pickle(path, compression="gzip", protocol=4)
        return path

    def write(self, path: str | os.PathLike, format: str | None = None) -> pathlib.Path:
        """Write the structures with their labels to any format ASE writes (extxyz recommended)."""
        from ase.io import write

        path = pathlib.Path(path)
        write(str(path), self.to_atoms(), format=format)
        return path


def _symbols(numbers: Iterable[int]) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[int(n)] for n in numbers]


def _summary(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The attributes that describe the arrays (and must match them when a stored node is loaded)."""
    natoms = arrays["natoms"]
    return {
        "num_structures": int(len(natoms)),
        "num_atoms": int(natoms.sum()),
        "elements": sorted(_symbols(np.unique(arrays["numbers"]))),
        "labelled": "energy" in arrays,
        "has_stress": _STRESS_KEY in arrays,
    }


def _checked_thresholds(*, min_distance, max_energy_per_atom, max_force) -> dict[str, float | None]:
    """The thresholds as plain floats, refused when they are not positive numbers (``min_distance`` may be None)."""
    checks = {"min_distance": min_distance, "max_energy_per_atom": max_energy_per_atom, "max_force": max_force}
    for key, value in checks.items():
        if key == "min_distance" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or not np.isfinite(value):
            raise TrainingSetError(f"{key} must be a finite number >= 0, got {value!r}")
        checks[key] = float(value)
    return checks


def _per_element_shift(arrays: dict[str, np.ndarray], shift: np.ndarray) -> dict[str, float] | None:
    """Per-element constants ``c`` with ``shift = sum over atoms of c[element]`` for every structure (the form of
    pacemaker's reference energies), in eV per atom; None when no such constants reproduce ``shift``."""
    numbers = arrays["numbers"]
    species = np.unique(numbers)
    structure = np.repeat(np.arange(len(arrays["natoms"])), arrays["natoms"])
    counts = np.zeros((len(arrays["natoms"]), len(species)))
    np.add.at(counts, (structure, np.searchsorted(species, numbers)), 1.0)
    constants, *_ = np.linalg.lstsq(counts, shift, rcond=None)
    tolerance = 1e-6 * max(1.0, float(np.abs(shift).max()))
    if np.abs(counts @ constants - shift).max() > tolerance:
        return None
    return {symbol: float(value) for symbol, value in zip(_symbols(species), constants, strict=True)}
