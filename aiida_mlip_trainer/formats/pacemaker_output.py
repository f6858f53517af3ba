"""The one reader of what pacemaker writes: the error tables of ``log.txt`` and the ``metrics.txt`` tables.

Units: pacemaker's log tables report energies in meV/atom and forces in meV/Å **per force component**; the
``metrics.txt`` columns are in eV/atom (``rmse_epa``) and eV/Å per component (``rmse_f_comp``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime

__all__ = ("final_error_tables", "last_iteration", "learning_curve", "log_wall_time", "read_metrics_table")

_TITLE = re.compile(r"^-{5,}(?P<title>[A-Za-z ]+?):?-{5,}\s*$")
_ROW = re.compile(r"^\s*(?P<kind>RMSE|MAE|MAX_AE):\s+(?P<values>.+)$")
_ITERATION = re.compile(r"^Iteration:\s+#(?P<iteration>\d+)")
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) ")
# One line per iteration of the fit: `... I - Iteration   #4    (6 evals):  Loss: 2.4455e-04 | RMSE Energy(low):
# 9.68 (9.68) meV/at | Forces(low): 11.48 (11.48) meV/A | ...` (the start as `Initial state:#0`).
_PROGRESS = re.compile(
    r" - (?:Iteration\s+|Initial state:)#(?P<iteration>\d+)\s+\(\d+ evals\):\s+Loss: (?P<loss>\S+)"
    r" \| RMSE Energy\(low\): (?P<energy>\S+) .*?\| Forces\(low\): (?P<forces>\S+)"
)

# Title of the train and test tables, from the most to the least final.
_TRAIN_TITLES = ("Cycle last iteration", "FIT STATS", "INIT STATS")
_TEST_TITLES = ("TEST Cycle last iteration", "TEST STATS", "INIT TEST STATS")


def _tables(text: str) -> list[tuple[str, dict]]:
    """Every error table of the log as (title, {iteration, energy_rmse, ..., force_max_ae})."""
    tables: list[tuple[str, dict]] = []
    current: tuple[str, dict] | None = None
    for line in text.splitlines():
        title = _TITLE.match(line)
        if title:
            current = (title.group("title").strip(), {})
            tables.append(current)
            continue
        if current is None:
            continue
        iteration = _ITERATION.match(line)
        if iteration:
            current[1]["iteration"] = int(iteration.group("iteration"))
            continue
        row = _ROW.match(line)
        if row:
            values = [float(v) for v in row.group("values").split()]
            key = row.group("kind").lower()
            # columns: energy, energy of low-energy structures, force, force of low-energy structures
            current[1][f"energy_{key}"] = values[0]
            current[1][f"force_{key}"] = values[2]
    return [table for table in tables if "force_rmse" in table[1]]


def final_error_tables(text: str) -> dict[str, dict]:
    """The last train and test error tables of a ``log.txt``: ``{'train': {...}, 'test': {...}}``.

    Keys: ``iteration``, ``energy_rmse``/``energy_mae``/``energy_max_ae`` (meV/atom) and
    ``force_rmse``/``force_mae``/``force_max_ae`` (meV/Å per component). A fit stopped early gives the last
    table it printed; a log without any table gives an empty dictionary.
    """
    tables = _tables(text)
    result: dict[str, dict] = {}
    for label, titles in (("train", _TRAIN_TITLES), ("test", _TEST_TITLES)):
        for title in titles:
            matching = [values for name, values in tables if name == title]
            if matching:
                result[label] = matching[-1]
                break
    return result


def read_metrics_table(text: str) -> list[dict[str, float]]:
    """Rows of a whitespace table such as ``metrics.txt`` (header line first), as dictionaries of floats.

    NaN and inf are kept as floats: the caller decides what they mean."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            continue  # a line cut short by a kill
        rows.append({name: float(value) for name, value in zip(header, fields, strict=True)})
    return rows


def last_iteration(text: str) -> dict[str, float] | None:
    """The last iteration of the fit a ``log.txt`` shows so far (also while pacemaker writes it): ``iteration``,
    ``loss``, ``energy_rmse`` (meV/atom) and ``force_rmse`` (meV/Å) on the training data; None before the first."""
    found = None
    for line in text.splitlines():
        match = _PROGRESS.search(line)
        if match:
            found = match
    if found is None:
        return None
    return {
        "iteration": int(found["iteration"]),
        "loss": float(found["loss"]),
        "energy_rmse": float(found["energy"]),
        "force_rmse": float(found["forces"]),
    }


def log_wall_time(text: str) -> float | None:
    """Seconds between the first and the last time stamp of a ``log.txt``."""
    stamps = [m.group(1) for m in map(_TIMESTAMP.match, text.splitlines()) if m]
    if len(stamps) < 2:
        return None
    fmt = "%Y-%m-%d %H:%M:%S,%f"
    return (datetime.strptime(stamps[-1], fmt) - datetime.strptime(stamps[0], fmt)).total_seconds()


def first_non_finite(rows: list[dict[str, float]], column: str = "loss") -> dict[str, float] | None:
    """The first row whose ``column`` is NaN or inf, or None."""
    for row in rows:
        if not math.isfinite(row.get(column, 0.0)):
            return row
    return None


def learning_curve(train_rows: list[dict[str, float]], test_rows: list[dict[str, float]]) -> dict[str, list[dict]]:
    """``{"train": [...], "test": [...]}``: one point per row of ``metrics.txt`` (every iteration) and of
    ``test_metrics.txt`` (every ``display_step``), each with ``iteration``, ``loss``, ``energy_rmse`` (meV/atom)
    and ``force_rmse`` (meV/Å per component)."""
    return {
        label: [
            {
                "iteration": int(row["iter_num"]),
                "loss": row["loss"],
                "energy_rmse": 1000 * row["rmse_epa"],
                "force_rmse": 1000 * row["rmse_f_comp"],
            }
            for row in rows
        ]
        for label, rows in (("train", train_rows), ("test", test_rows))
    }
