"""pacemaker's dataset format: a pandas DataFrame (``name``, ``ase_atoms``, ``energy``, ``energy_corrected``,
``forces``, ``stress``) in a gzip-compressed pickle, read and written in one place. No AiiDA import here.

Reading a pickle runs whatever code the file contains: :func:`read_pacemaker_pickle` is for files you trust only.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ..physics.training_arrays import STRESS_KEY, TrainingSetError, atoms_from_arrays, to_voigt

__all__ = (
    "ENERGY_COLUMNS",
    "dataframe_from_arrays",
    "read_pacemaker_pickle",
    "structures_from_dataframe",
    "write_pacemaker_pickle",
)

# The energy columns of pacemaker's DataFrame, the fitted one first by default.
ENERGY_COLUMNS = ("energy_corrected", "energy")


def read_pacemaker_pickle(path: str | os.PathLike):
    """The DataFrame of a pacemaker dataset file (pandas pickle, gzip-compressed or not). Unpickling runs whatever
    code the file contains: call this only for files you trust."""
    import pandas as pd

    # pandas does not infer gzip from pacemaker's `.pckl.gzip` suffix: look at the magic bytes instead.
    with open(path, "rb") as handle:
        compression = "gzip" if handle.read(2) == b"\x1f\x8b" else None
    return pd.read_pickle(path, compression=compression)


def structures_from_dataframe(frame, *, labelled: bool = True, energy_column: str | None = None) -> dict[str, Any]:
    """The structures of a DataFrame with pacemaker's columns, and what was done with its columns.

    The fitted energy is ``energy_column``: by default ``energy_corrected`` when present (what pacemaker fits), else
    ``energy``. Returns ``{"structures": [ase.Atoms, labels on a SinglePointCalculator], "energy_column": str or None
    (unlabelled), "other_energy": (column, per-structure values) or None, "dropped_columns": [names]}``: the other
    energy column, when the frame has both, and every column that is not kept, so that nothing is dropped silently.
    A frame without ``ase_atoms``, or without the labels asked for, raises :class:`TrainingSetError`."""
    from ase.calculators.singlepoint import SinglePointCalculator

    if "ase_atoms" not in frame.columns:
        raise TrainingSetError("the DataFrame has no 'ase_atoms' column")
    energies = [column for column in ENERGY_COLUMNS if column in frame.columns]
    if energy_column is None:
        energy_column = energies[0] if energies else "energy"
    elif energy_column not in ENERGY_COLUMNS:
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
                results["stress"] = to_voigt(row["stress"], f"structure {row_index}")
            atoms.calc = SinglePointCalculator(atoms, **results)
        structures.append(atoms)

    kept = {"ase_atoms", "name"} | ({energy_column, "forces", "stress"} if labelled else set())
    other = [column for column in energies if column != energy_column] if labelled else []
    other_energy = None
    if other:
        other_energy = (other[0], np.asarray(frame[other[0]].to_numpy(), dtype=float))
        kept.add(other[0])
    return {
        "structures": structures,
        "energy_column": energy_column if labelled else None,
        "other_energy": other_energy,
        "dropped_columns": sorted(str(column) for column in frame.columns if column not in kept),
    }


def dataframe_from_arrays(arrays: dict[str, np.ndarray]):
    """A pandas DataFrame in pacemaker's layout from training-set arrays: ``name``, ``ase_atoms`` and, when labelled,
    ``energy``, ``energy_corrected`` (the same total energy: no reference energies are subtracted), ``forces`` and
    ``stress``."""
    import pandas as pd

    structures = atoms_from_arrays(arrays)
    columns: dict[str, list] = {"name": [a.info["name"] for a in structures], "ase_atoms": structures}
    if "energy" in arrays:
        offsets = np.concatenate([[0], np.cumsum(arrays["natoms"])])
        energies = arrays["energy"].tolist()
        columns["energy"] = energies
        columns["energy_corrected"] = energies
        columns["forces"] = [arrays["forces"][offsets[i] : offsets[i + 1]] for i in range(len(structures))]
        if STRESS_KEY in arrays:
            columns["stress"] = list(arrays[STRESS_KEY])
        for atoms in structures:
            atoms.calc = None
    return pd.DataFrame(columns)


def write_pacemaker_pickle(frame, path: str | os.PathLike) -> pathlib.Path:
    """Write ``frame`` as pacemaker's dataset file (gzip-compressed pandas pickle, protocol 4); its path."""
    path = pathlib.Path(path)
    frame.to_pickle(path, compression="gzip", protocol=4)
    return path
