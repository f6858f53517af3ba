"""Structures as JSON, the exchange format between a calculation and the script it runs (exact floats, no pickle).

A file holds ``{"format": "mlip-trainer-structures", "version": 1, "structures": [...]}``; each structure is
``{"name", "numbers", "positions" (Å), "cell" (Å), "pbc"}``. Python's JSON writes floats with all their digits, so
positions survive the round trip bit for bit.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from typing import IO

import numpy as np
from ase import Atoms

__all__ = (
    "StructureFileError",
    "atoms_from_dict",
    "atoms_to_dict",
    "bounded_number",
    "finite_number",
    "read_one_structure",
    "read_structures",
    "write_structures",
)

FORMAT = "mlip-trainer-structures"
VERSION = 1


class StructureFileError(ValueError):
    """A structures file is not what its writer would have written; the message says what is wrong."""


def atoms_to_dict(atoms: Atoms, name: str | None = None) -> dict:
    return {
        "name": str(name if name is not None else atoms.info.get("name", "")),
        "numbers": [int(n) for n in atoms.numbers],
        "positions": atoms.positions.tolist(),
        "cell": atoms.cell.array.tolist(),
        "pbc": [bool(p) for p in atoms.pbc],
    }


def atoms_from_dict(data: dict, where: str = "structure") -> Atoms:
    """An :class:`ase.Atoms` from :func:`atoms_to_dict`'s dict, checked: shapes, finite numbers, real elements."""
    if not isinstance(data, dict):
        raise StructureFileError(f"{where}: expected an object, got {type(data).__name__}")
    missing = sorted({"numbers", "positions", "cell", "pbc"} - set(data))
    if missing:
        raise StructureFileError(f"{where}: missing {missing}")
    try:
        numbers = np.asarray(data["numbers"], dtype=np.int64)
        positions = np.asarray(data["positions"], dtype=float)
        cell = np.asarray(data["cell"], dtype=float)
        pbc = np.asarray(data["pbc"], dtype=bool)
    except (TypeError, ValueError) as exc:
        raise StructureFileError(f"{where}: {exc}") from exc
    if numbers.ndim != 1 or len(numbers) == 0:
        raise StructureFileError(f"{where}: numbers must be a non-empty list")
    if positions.shape != (len(numbers), 3) or cell.shape != (3, 3) or pbc.shape != (3,):
        raise StructureFileError(
            f"{where}: shapes positions {positions.shape}, cell {cell.shape}, pbc {pbc.shape} do not fit "
            f"{len(numbers)} atoms"
        )
    if not (np.isfinite(positions).all() and np.isfinite(cell).all()):
        raise StructureFileError(f"{where}: positions or cell contain NaN or inf")
    if ((numbers < 1) | (numbers > 118)).any():
        raise StructureFileError(f"{where}: atomic numbers must be between 1 and 118")
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=pbc)
    atoms.info["name"] = str(data.get("name", ""))
    return atoms


def write_structures(path: str | os.PathLike, structures: Iterable[Atoms], names: Iterable[str] | None = None) -> None:
    structures = list(structures)
    names = list(names) if names is not None else [None] * len(structures)
    content = {
        "format": FORMAT,
        "version": VERSION,
        "structures": [atoms_to_dict(atoms, name) for atoms, name in zip(structures, names, strict=True)],
    }
    with open(path, "w", encoding="utf8") as handle:
        json.dump(content, handle)


def read_structures(source: str | os.PathLike | IO) -> list[Atoms]:
    """The structures of a file written by :func:`write_structures` (a path, or an open file), checked."""
    where = getattr(source, "name", None) or (os.fspath(source) if not hasattr(source, "read") else "structures")
    try:
        if hasattr(source, "read"):
            content = json.load(source, parse_constant=_refuse_constant)
        else:
            with open(source, encoding="utf8") as handle:
                content = json.load(handle, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StructureFileError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(content, dict) or content.get("format") != FORMAT or content.get("version") != VERSION:
        raise StructureFileError(f"{where}: not a {FORMAT} file of version {VERSION}")
    structures = content.get("structures")
    if not isinstance(structures, list) or not structures:
        raise StructureFileError(f"{where}: no structures")
    return [atoms_from_dict(data, f"structure {index}") for index, data in enumerate(structures)]


def read_one_structure(path: str | os.PathLike) -> Atoms:
    """The one structure of a file written by :func:`write_structures`; StructureFileError when it holds more."""
    structures = read_structures(path)
    if len(structures) != 1:
        raise StructureFileError(f"{os.fspath(path)} holds {len(structures)} structures, expected one")
    return structures[0]


def _refuse_constant(name: str) -> float:
    # json accepts NaN and Infinity by default; a structure never needs them.
    raise StructureFileError(f"{name} is not a valid number here")


def finite_number(value, where: str) -> float:
    """``value`` as a float, refusing booleans, NaN and inf (for parameters read from JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    return float(value)


def bounded_number(value, where: str, low: float, high: float, *, open_below: bool = True) -> float:
    """``value`` as a float within (low, high] (``open_below``) or [low, high]; ValueError naming ``where``."""
    number = finite_number(value, where)
    if number < low or (open_below and number == low) or number > high:
        interval = f"{'(' if open_below else '['}{low:g}, {high:g}]"
        raise ValueError(f"{where} must lie in {interval}, got {value!r}")
    return number
