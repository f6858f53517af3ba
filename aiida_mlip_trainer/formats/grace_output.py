"""The one reader of gracemaker's metrics files (``train_metrics.yaml``, ``test_metrics.yaml``).

Each file is a YAML list with one mapping per epoch: ``rmse/depa`` (energy per atom, eV/atom), ``rmse/f_comp``
(force components, eV/Å), ``rmse/stress`` (stress components, eV/Å³; the log prints them in GPa), the MAEs,
``total_loss/train`` or ``total_loss/test``, ``epoch``. :func:`final_errors` turns the row of the model gracemaker
ends with into the plugin's units: meV/atom, meV/Å and GPa.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from ase.units import GPa

__all__ = ("EV_PER_A3_TO_GPA", "best_row", "errors_in_plugin_units", "read_metrics_rows")

EV_PER_A3_TO_GPA = 1.0 / GPa  # 160.2 GPa per eV/Å³

# gracemaker's key -> (the plugin's key, factor to the plugin's unit)
_ERRORS = {
    "rmse/depa": ("energy_rmse", 1000.0),
    "mae/depa": ("energy_mae", 1000.0),
    "rmse/f_comp": ("force_rmse", 1000.0),
    "mae/f_comp": ("force_mae", 1000.0),
    "rmse/stress": ("stress_rmse", EV_PER_A3_TO_GPA),
    "mae/stress": ("stress_mae", EV_PER_A3_TO_GPA),
}


def read_metrics_rows(text: str | None) -> list[dict[str, Any]]:
    """The epochs of a metrics file, oldest first; ``[]`` for no file or one that is not a list of mappings (the file
    comes from the remote machine: only numbers are kept)."""
    if not text:
        return []
    try:
        rows = yaml.safe_load(text)
    except yaml.YAMLError:
        return []
    if not isinstance(rows, list):
        return []
    kept = []
    for row in rows:
        if isinstance(row, dict):
            kept.append(
                {
                    str(key): float(value)
                    for key, value in row.items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                }
            )
    return kept


def best_row(rows: list[dict[str, float]], loss_key: str) -> dict[str, float] | None:
    """The row with the lowest finite ``loss_key`` (the model gracemaker keeps when it has test data), else None."""
    finite = [row for row in rows if math.isfinite(row.get(loss_key, math.nan))]
    return min(finite, key=lambda row: row[loss_key]) if finite else None


def errors_in_plugin_units(row: dict[str, float]) -> dict[str, float]:
    """``energy_rmse``/``energy_mae`` (meV/atom), ``force_rmse``/``force_mae`` (meV/Å), ``stress_rmse``/
    ``stress_mae`` (GPa) and ``epoch`` of one metrics row; the errors a row lacks are left out."""
    errors = {name: row[key] * factor for key, (name, factor) in _ERRORS.items() if key in row}
    if "epoch" in row:
        errors["epoch"] = int(row["epoch"])
    return errors
