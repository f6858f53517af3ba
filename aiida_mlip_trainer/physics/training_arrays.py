"""The AiiDA-free core of a training set: structures as plain arrays, their checks, and their content hash.

A training set is held as a dict of numeric and string arrays (``natoms``, ``numbers``, ``positions``, ``cell``,
``pbc``, ``names`` and, when labelled, ``energy``, ``forces``, optionally ``stress``): what
:class:`~aiida_mlip_trainer.data.training_set.TrainingSetData` stores, and what is checked here before it is stored
and again when a stored node is read. No AiiDA import here.

Units: positions and cell in Å, energies in eV (total energy of the structure), forces in eV/Å, stress in eV/Å³
in Voigt order (xx, yy, zz, yz, xz, xy), the ASE conventions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..names import control_characters

__all__ = (
    "DEFAULT_CHECKS",
    "LABEL_KEYS",
    "STRESS_KEY",
    "STRUCTURE_KEYS",
    "TrainingSetError",
    "array_summary",
    "arrays_from_atoms",
    "atoms_from_arrays",
    "check_array_types",
    "checked_thresholds",
    "closest_pair",
    "content_hash",
    "per_element_shift",
    "to_voigt",
    "validate_arrays",
)


MAX_ATOMIC_NUMBER = 118

# Default thresholds of validate_arrays (what TrainingSetData's constructor takes as keywords of the same names; the
# values used are recorded in the node's `checks` attribute).
DEFAULT_CHECKS = {"min_distance": 0.1, "max_energy_per_atom": 1.0e7, "max_force": 1.0e5}
# |det(cell)| / (|a| |b| |c|), 1 for a cube, sin(angle) for two vectors at an angle: below this a periodic cell is
# flat (its vectors nearly coplanar or collinear). No real crystal comes near it.
MIN_NORMALISED_CELL_VOLUME = 1e-3

# Array names in a fixed order: the content hash depends on it.
STRUCTURE_KEYS = ("natoms", "numbers", "positions", "cell", "pbc", "names")
LABEL_KEYS = ("energy", "forces")
STRESS_KEY = "stress"


class TrainingSetError(ValueError):
    """A training set was refused; the message names the structure and the problem."""


class MissingLabelsError(TrainingSetError):
    """A structure of a labelled training set has no energy or no forces. ``detail`` says which structure and what
    is missing; the message adds the Python way out (``labelled=False``), which a command line replaces by its own."""

    def __init__(self, detail: str):
        super().__init__(f"{detail}; pass labelled=False for an unlabelled pool")
        self.detail = detail


def _describe(index: int, names: Sequence[str] | np.ndarray) -> str:
    # str(): a numpy string would print as np.str_('x')
    return f"structure {index} ({str(names[index])!r})"


def to_voigt(stress: Any, where: str) -> np.ndarray:
    """``stress`` as a Voigt 6-vector (xx, yy, zz, yz, xz, xy) from a 6-vector or a 3×3 tensor; else
    :class:`TrainingSetError` naming ``where``."""
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
        raise MissingLabelsError(f"{where}: no energy (no calculator result and no info[{energy_key!r}])")
    if forces is None:
        raise MissingLabelsError(f"{where}: no forces (no calculator result and no arrays[{forces_key!r}])")
    try:
        energy = float(np.asarray(energy, dtype=float).reshape(()))
    except (TypeError, ValueError) as exc:
        raise TrainingSetError(f"{where}: energy {energy!r} is not a single number") from exc
    forces = np.asarray(forces, dtype=float)
    if forces.shape != (len(atoms), 3):
        raise TrainingSetError(f"{where}: forces have shape {forces.shape}, expected ({len(atoms)}, 3)")
    if stress is not None:
        stress = to_voigt(stress, where)
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
            arrays[STRESS_KEY] = np.asarray(stresses, dtype=float)
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
    missing = [key for key in STRUCTURE_KEYS if key not in arrays]
    if ("energy" in arrays) != ("forces" in arrays):
        missing.append("forces" if "energy" in arrays else "energy")
    if STRESS_KEY in arrays and "energy" not in arrays:
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
    if STRESS_KEY in arrays:
        if arrays[STRESS_KEY].shape != (num_structures, 6):
            raise TrainingSetError(f"stress has shape {arrays[STRESS_KEY].shape}, expected ({num_structures}, 6)")
        check_finite(STRESS_KEY, per_atom=False)

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
    for key in (*STRUCTURE_KEYS, *LABEL_KEYS, STRESS_KEY):
        if key not in arrays:
            continue
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def atoms_from_arrays(arrays: dict[str, np.ndarray]) -> list:
    """The structures of ``arrays`` as :class:`ase.Atoms`, with their ``name`` in ``info``; labels, when present,
    on a ``SinglePointCalculator``."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

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
            if STRESS_KEY in arrays:
                results["stress"] = arrays[STRESS_KEY][index].copy()
            atoms.calc = SinglePointCalculator(atoms, **results)
        structures.append(atoms)
    return structures


def _symbols(numbers: Iterable[int]) -> list[str]:
    from ase.data import chemical_symbols

    return [chemical_symbols[int(n)] for n in numbers]


def array_summary(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The attributes that describe the arrays (and must match them when a stored node is loaded)."""
    natoms = arrays["natoms"]
    return {
        "num_structures": int(len(natoms)),
        "num_atoms": int(natoms.sum()),
        "elements": sorted(_symbols(np.unique(arrays["numbers"]))),
        "labelled": "energy" in arrays,
        "has_stress": STRESS_KEY in arrays,
    }


def checked_thresholds(*, min_distance, max_energy_per_atom, max_force) -> dict[str, float | None]:
    """The thresholds as plain floats, refused when they are not positive numbers (``min_distance`` may be None)."""
    checks = {"min_distance": min_distance, "max_energy_per_atom": max_energy_per_atom, "max_force": max_force}
    for key, value in checks.items():
        if key == "min_distance" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or not np.isfinite(value):
            raise TrainingSetError(f"{key} must be a finite number >= 0, got {value!r}")
        checks[key] = float(value)
    return checks


def per_element_shift(arrays: dict[str, np.ndarray], shift: np.ndarray) -> dict[str, float] | None:
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
