"""The settings of the calculations behind a training set, compared: labels of one potential must come from one DFT
setting (code, functional, pseudopotentials or basis, cutoffs, smearing, spin) and a similar k-point density.

A record is ``{"settings": {name: value}, "kpoint_spacing": float or None}`` (the largest distance between k-points,
1/Å with 2π included; None for Γ only or no periodic direction). Two records are in one group when their settings are
equal and their k-point spacings differ by at most the tolerance. No AiiDA here: plain dicts in, plain lists out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

__all__ = ("KPOINT_TOLERANCE", "describe_settings_groups", "group_by_settings")

# 1/Å (2π included): 0.3 /Å is the CP2K oracle's default spacing and 0.2 /Å a converged one; a set whose spacings
# differ by more than 0.1 /Å mixes labels of another convergence.
KPOINT_TOLERANCE = 0.1


def group_by_settings(records: Sequence[Mapping], kpoint_tolerance: float = KPOINT_TOLERANCE) -> list[list[int]]:
    """The positions of ``records`` grouped by setting, groups in the order of their first record: equal settings,
    and k-point spacings within ``kpoint_tolerance`` of the group's first record (Γ only is its own density)."""
    groups: list[tuple[str, float | None, list[int]]] = []
    for position, record in enumerate(records):
        key = json.dumps(record["settings"], sort_keys=True, default=str)
        spacing = record.get("kpoint_spacing")
        for group_key, group_spacing, members in groups:
            if group_key == key and _close(spacing, group_spacing, kpoint_tolerance):
                members.append(position)
                break
        else:
            groups.append((key, spacing, [position]))
    return [members for _, _, members in groups]


def _close(first: float | None, second: float | None, tolerance: float) -> bool:
    if first is None or second is None:
        return first is None and second is None
    return abs(first - second) <= tolerance


def describe_settings_groups(records: Sequence[Mapping], groups: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """One line per group: how many calculations, their settings, their k-point spacing, the first few names."""
    lines = []
    for number, members in enumerate(groups, start=1):
        first = records[members[0]]
        settings = ", ".join(f"{key}={value}" for key, value in sorted(first["settings"].items()))
        spacing = first.get("kpoint_spacing")
        kpoints = "Γ only" if spacing is None else f"k-point spacing {spacing:.3f} /Å"
        shown = ", ".join(names[member] for member in members[:3]) + (" ..." if len(members) > 3 else "")
        lines.append(f"  group {number}: {len(members)} calculation(s) [{shown}]: {settings}; {kpoints}")
    return "\n".join(lines)
