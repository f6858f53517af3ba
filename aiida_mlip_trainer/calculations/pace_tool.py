"""What the CalcJobs of the pacemaker tools share: the base class (code, resources, exit-status file, retrieval)
and the options of pace_select / pace_activeset, checked and turned into command-line numbers."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping, Sequence
from typing import Any

# The tools' memory units are binary (pyace.aceselect.compute_mem_limit: GB = 2**30, MB = 2**20).
_MEMORY_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
MIN_MEMORY_LIMIT = 2**20

# Keys of the `parameters` Dict of PaceSelectCalculation / PaceActivesetCalculation.
COMMON_PARAMETERS = ("gamma_tolerance", "batch_size", "maxvol_iters", "maxvol_refinement", "memory_limit")
ACTIVESET_PARAMETERS = (*COMMON_PARAMETERS, "full", "all_atoms", "force_error_threshold")


def parse_memory_limit(value: int | str) -> int:
    """The memory limit in bytes, from a number of bytes or a string such as ``"2GB"``/``"500 MB"`` (binary units,
    as the pace tools read them). Raises ValueError with what to write instead."""
    if isinstance(value, bool):
        raise ValueError(f"memory_limit must be a number of bytes or a string like '2GB', got {value!r}")
    if isinstance(value, numbers.Integral):
        limit = int(value)
    elif isinstance(value, str) and (match := _MEMORY.match(value)):
        limit = int(float(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").upper()])
    else:
        raise ValueError(f"memory_limit must be a number of bytes or a string like '2GB' or '500MB', got {value!r}")
    if limit < MIN_MEMORY_LIMIT:
        raise ValueError(f"memory_limit {value!r} is below 1 MB: give the memory the job may use, e.g. '2GB'")
    return limit


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def validate_tool_parameters(parameters: Mapping[str, Any], allowed: Sequence[str]) -> str | None:
    """Return a message saying what to change, or None when ``parameters`` are valid options of a pace tool."""
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        return f"unknown parameter(s) {unknown}; allowed: {list(allowed)}"
    gamma = parameters.get("gamma_tolerance")
    if gamma is not None and not (isinstance(gamma, numbers.Real) and not isinstance(gamma, bool) and gamma >= 1.0):
        return f"gamma_tolerance must be a number >= 1 (MaxVol's tolerance, default 1.01), got {gamma!r}"
    for key in ("batch_size", "maxvol_iters", "maxvol_refinement"):
        if key in parameters and not _is_positive_int(parameters[key]):
            return f"{key} must be a positive integer, got {parameters[key]!r}"
    if "memory_limit" in parameters:
        try:
            parse_memory_limit(parameters["memory_limit"])
        except ValueError as exc:
            return str(exc)
    for key in ("full", "all_atoms"):
        if key in parameters and not isinstance(parameters[key], bool):
            return f"{key} must be true or false, got {parameters[key]!r}"
    threshold = parameters.get("force_error_threshold")
    if threshold is not None and not (
        isinstance(threshold, numbers.Real) and not isinstance(threshold, bool) and threshold >= 0
    ):
        return f"force_error_threshold must be a number >= 0 in eV/Å (0: automatic, Q3 + 1.5 IQR), got {threshold!r}"
    return None


def tool_options(parameters: dict, *, memory_flag: str) -> list[str]:
    """The command-line options of pace_select / pace_activeset for the options the user set (others: defaults).

    Every value is written by the plugin as a plain number: pace_select passes its memory limit to Python's
    ``eval``, so no string from the parameters may ever reach these arguments."""
    options = []
    for key, flag in (
        ("gamma_tolerance", "-g"),
        ("batch_size", "-b"),
        ("maxvol_iters", "-i"),
        ("maxvol_refinement", "-r"),
    ):
        if key in parameters:
            options += [flag, number_argument(parameters[key], key)]
    if "memory_limit" in parameters:
        # The tools' limit is soft (seen overshot about twofold): pass half, as a plain integer of bytes.
        options += [memory_flag, number_argument(parse_memory_limit(parameters["memory_limit"]) // 2, "memory_limit")]
    return options


def number_argument(value, name: str) -> str:
    """``value`` as a command-line number (``"100"``, ``"1.01"``), or ValueError when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))
