"""The labels of one structure as an oracle returns them: energy (eV), forces (eV/Å) and optionally stress (eV/Å³,
Voigt order) in an ``ArrayData``, checked (shapes, finite values) where it is made."""

from __future__ import annotations

import numpy as np
from aiida import orm

__all__ = ("LabelError", "labels_array", "read_labels")


class LabelError(ValueError):
    """An oracle's output is not a usable label; the message says why."""


def labels_array(energy: float, forces, stress=None, *, natoms: int | None = None) -> orm.ArrayData:
    """The labels of one structure as the ``ArrayData`` every adapter returns (checked: shapes, finite values)."""
    try:
        energy_array = np.asarray(energy, dtype=float).reshape(1)
        forces_array = np.asarray(forces, dtype=float)
        stress_array = None if stress is None else np.asarray(stress, dtype=float)
    except (TypeError, ValueError) as exc:
        raise LabelError(f"the labels are not numbers: {exc}") from exc
    if forces_array.ndim != 2 or forces_array.shape[1] != 3:
        raise LabelError(f"forces have shape {forces_array.shape}, expected (N, 3)")
    if natoms is not None and len(forces_array) != natoms:
        raise LabelError(f"forces on {len(forces_array)} atoms, but the structure has {natoms}")
    if stress_array is not None and stress_array.shape != (6,):
        raise LabelError(f"stress has shape {stress_array.shape}, expected (6,) in Voigt order")
    for name, value in (("energy", energy_array), ("forces", forces_array), ("stress", stress_array)):
        if value is not None and not np.isfinite(value).all():
            raise LabelError(f"{name} contains NaN or inf")
    array = orm.ArrayData()
    array.set_array("energy", energy_array)
    array.set_array("forces", forces_array)
    if stress_array is not None:
        array.set_array("stress", stress_array)
    return array


def read_labels(array: orm.ArrayData) -> tuple[float, np.ndarray, np.ndarray | None]:
    """``(energy, forces, stress or None)`` of a labels ``ArrayData``."""
    names = array.get_arraynames()
    stress = array.get_array("stress") if "stress" in names else None
    return float(array.get_array("energy")[0]), array.get_array("forces"), stress
