"""`TrainingSetData`: labelled (or unlabelled) atomic structures, stored without pickles.

The content lives in the node's repository as one ``.npz`` archive of plain numeric and string arrays, read back
with ``allow_pickle=False``: loading a node from someone else's AiiDA archive can never execute code. pacemaker's
pandas ``pckl.gzip`` is produced only when a calculation prepares its input folder (:meth:`write_pacemaker_pickle`).

Units: positions and cell in Å, energies in eV (total energy of the structure), forces in eV/Å, stress in eV/Å³
in Voigt order (xx, yy, zz, yz, xz, xy), the ASE conventions.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from aiida import orm

__all__ = ("TrainingSetData", "TrainingSetError")

ARRAYS_FILENAME = "training_set.npz"
FORMAT_VERSION = 1
MAX_ATOMIC_NUMBER = 118

# Array names in a fixed order: the content hash depends on it.
_STRUCTURE_KEYS = ("natoms", "numbers", "positions", "cell", "pbc", "names")
_LABEL_KEYS = ("energy", "forces")
_STRESS_KEY = "stress"


class TrainingSetError(ValueError):
    """A training set was refused; the message names the structure and the problem."""


def _describe(index: int, names: Sequence[str] | np.ndarray) -> str:
    return f"structure {index} ({names[index]!r})"


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


def validate_arrays(arrays: dict[str, np.ndarray]) -> None:
    """Refuse inconsistent or non-physical content; every message names the offending structure."""
    names = arrays["names"]
    natoms = arrays["natoms"]
    num_structures = len(natoms)
    if num_structures == 0:
        raise TrainingSetError("the training set is empty: give at least one structure")
    if len(names) != num_structures or len(arrays["cell"]) != num_structures or len(arrays["pbc"]) != num_structures:
        raise TrainingSetError("names, cell and pbc must have one entry per structure")
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

    cell_lengths = np.linalg.norm(arrays["cell"], axis=2)
    bad_cell = np.flatnonzero((arrays["pbc"] & (cell_lengths < 1e-8)).any(axis=1))
    if bad_cell.size:
        raise TrainingSetError(
            f"{_describe(int(bad_cell[0]), names)}: is periodic along a direction whose cell vector is zero "
            "(a molecule needs pbc=False, or give the cell)"
        )

    if "energy" in arrays:
        if arrays["energy"].shape != (num_structures,):
            raise TrainingSetError(f"energy has shape {arrays['energy'].shape}, expected ({num_structures},)")
        if arrays["forces"].shape != (total, 3):
            raise TrainingSetError(f"forces have shape {arrays['forces'].shape}, expected ({total}, 3)")
        check_finite("energy", per_atom=False)
        check_finite("forces", per_atom=True)
    if _STRESS_KEY in arrays:
        if arrays[_STRESS_KEY].shape != (num_structures, 6):
            raise TrainingSetError(f"stress has shape {arrays[_STRESS_KEY].shape}, expected ({num_structures}, 6)")
        check_finite(_STRESS_KEY, per_atom=False)


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
    and ``force_norm_max`` (eV/Å) and ``content_hash``.
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if (structures is None) == (arrays is None):
            raise TypeError("give either `structures` (a list of ase.Atoms) or `arrays`")
        if arrays is None:
            arrays = arrays_from_atoms(
                structures, labelled=labelled, energy_key=energy_key, forces_key=forces_key, stress_key=stress_key
            )
        self._set_arrays(arrays)

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
        made yourself or got from people you trust. The energy is taken from ``energy_corrected`` when present
        (what pacemaker fits), else from ``energy``.
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
    def from_dataframe(cls, frame, *, labelled: bool = True, **kwargs):
        """Build from a DataFrame with pacemaker's columns (``ase_atoms``, ``energy_corrected``/``energy``,
        ``forces``, optional ``stress`` and ``name``)."""
        from ase.calculators.singlepoint import SinglePointCalculator

        if "ase_atoms" not in frame.columns:
            raise TrainingSetError("the DataFrame has no 'ase_atoms' column")
        energy_column = "energy_corrected" if "energy_corrected" in frame.columns else "energy"
        structures = []
        for row_index, (_, row) in enumerate(frame.iterrows()):
            atoms = row["ase_atoms"].copy()
            if "name" in frame.columns:
                atoms.info["name"] = str(row["name"])
            atoms.calc = None
            if labelled:
                missing = [c for c in (energy_column, "forces") if c not in frame.columns]
                if missing:
                    raise TrainingSetError(f"structure {row_index}: the DataFrame has no column(s) {missing}")
                results = {"energy": row[energy_column], "forces": row["forces"]}
                if "stress" in frame.columns and row["stress"] is not None:
                    results["stress"] = _to_voigt(row["stress"], f"structure {row_index}")
                atoms.calc = SinglePointCalculator(atoms, **results)
            structures.append(atoms)
        return cls(structures, labelled=labelled, **kwargs)

    # ---------------------------------------------------------------------------------------------------- storage
    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        arrays = {key: np.asarray(value) for key, value in arrays.items()}
        validate_arrays(arrays)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        buffer.seek(0)
        self.base.repository.put_object_from_filelike(buffer, ARRAYS_FILENAME)
        self._cached_arrays = arrays

        natoms = arrays["natoms"]
        symbols = _symbols(np.unique(arrays["numbers"]))
        attributes: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "filename": ARRAYS_FILENAME,
            "num_structures": int(len(natoms)),
            "num_atoms": int(natoms.sum()),
            "elements": sorted(symbols),
            "labelled": "energy" in arrays,
            "has_stress": _STRESS_KEY in arrays,
            "content_hash": content_hash(arrays),
        }
        if "energy" in arrays:
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

    def get_arrays(self) -> dict[str, np.ndarray]:
        """The stored arrays (``natoms``, ``numbers``, ``positions``, ``cell``, ``pbc``, ``names``, and when
        labelled ``energy``, ``forces``, optionally ``stress``). Loaded without pickle support."""
        cached = getattr(self, "_cached_arrays", None)
        if cached is None:
            content = self.base.repository.get_object_content(ARRAYS_FILENAME, mode="rb")
            with np.load(io.BytesIO(content), allow_pickle=False) as archive:
                cached = {key: archive[key] for key in archive.files}
            self._cached_arrays = cached
        return cached

    # ----------------------------------------------------------------------------------------------- attributes
    @property
    def num_structures(self) -> int:
        return self.base.attributes.get("num_structures")

    @property
    def num_atoms(self) -> int:
        return self.base.attributes.get("num_atoms")

    @property
    def elements(self) -> list[str]:
        return list(self.base.attributes.get("elements"))

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
        :func:`aiida_mlip_trainer.baselines.pair_min_distances` (one neighbour list per structure)."""
        from ..baselines import MIN_DISTANCE_SEARCH_CUTOFF, pair_min_distances

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
