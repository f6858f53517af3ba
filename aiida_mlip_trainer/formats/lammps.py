"""LAMMPS input lines: the ``pair_style``/``pair_coeff`` lines of a pair baseline, alone or overlaid on an ACE
potential (``pair_style pace``). The baseline's physics (parameters, mixing, validation) is
:mod:`aiida_mlip_trainer.physics.baselines`; here it is only written in LAMMPS's words. No AiiDA import here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ase.data import atomic_numbers

from ..physics.baselines import BaselineError, element_symbol, evaluable_baseline, pair_parameters

__all__ = ("ACE_STYLES", "LAMMPS_STYLE", "lammps_pair_commands")

# The LAMMPS pair style of each baseline type: the same function as physics.baselines evaluates in Python.
LAMMPS_STYLE = {"lj": "lj/smooth/linear", "zbl": "zbl"}


def _lammps_number(value: float) -> str:
    # repr is the shortest string that reads back as the same double: LAMMPS then uses bit-identical parameters.
    return repr(float(value))


# The LAMMPS pair styles of the fitted models: ACE (.yace) and GRACE-FS (FS YAML).
ACE_STYLES = ("pace", "grace/fs")


def lammps_pair_commands(
    spec: Mapping, elements: Sequence[str], ace_file: str | None = "potential.yace", ace_style: str = "pace"
) -> list[str]:
    """LAMMPS input lines that add the baseline ``spec`` to an ACE potential (``ace_style`` ``pace``) or a GRACE-FS
    one (``grace/fs``; ``ace_file`` then the FS YAML, optionally followed by its ``.asi``).

    ``elements`` gives the element of each LAMMPS atom type, in order (type 1 is ``elements[0]``); it must match
    the element order of the ``pair_coeff * * pace`` line. The result, for LJ::

        pair_style hybrid/overlay pace lj/smooth/linear 7.0
        pair_coeff * * pace potential.yace Ar Kr
        pair_coeff 1 1 lj/smooth/linear 0.0104 3.4
        ...

    (with per-pair cutoffs, each ``pair_coeff`` line ends with its pair's cutoff and the ``pair_style`` cutoff is
    the largest), and for ZBL ``pair_style hybrid/overlay pace zbl INNER OUTER`` with ``pair_coeff i j zbl Zi Zj``.
    Per-pair ZBL windows give one ``zbl INNER OUTER`` sub-style per distinct window (``hybrid/overlay`` may hold a
    sub-style several times) and ``pair_coeff i j zbl K Zi Zj``, K the number of the pair's sub-style. Every type
    pair gets an explicit coefficient line (mixing is done here, so LAMMPS's own mixing rule never applies). With
    ``ace_file=None`` the lines describe the baseline alone (``pair_style lj/smooth/linear 7.0``,
    ``pair_coeff 1 1 0.0104 3.4``, ...; several ZBL windows as ``hybrid/overlay zbl ... zbl ...``): that form runs in
    any LAMMPS, also one built without ML-PACE.
    """
    if ace_style not in ACE_STYLES:
        raise BaselineError(f"ace_style must be one of {list(ACE_STYLES)}, got {ace_style!r}")
    spec = evaluable_baseline(spec)
    if isinstance(elements, str) or not elements:
        raise BaselineError(f"elements must be a non-empty list of element symbols, got {elements!r}")
    elements = [element_symbol("lammps_pair_commands elements", symbol) for symbol in elements]
    if len(set(elements)) != len(elements):
        raise BaselineError(f"elements {elements} contain a duplicate: give each element one atom type")
    kind = spec["type"]
    style = LAMMPS_STYLE[kind]
    pairs = [
        (i, j, pair_parameters(spec, a, b))
        for i, a in enumerate(elements, start=1)
        for j, b in enumerate(elements[i - 1 :], start=i)
    ]

    # Sub-styles: (style, its pair_style arguments); coefficients: (i, j, sub-style number, pair_coeff arguments).
    substyles: list[str] = []
    coefficients = []
    if kind == "lj":
        cutoffs = {params["cutoff"] for _, _, params in pairs}
        substyles.append(_lammps_number(max(cutoffs)))
        for i, j, params in pairs:
            args = f"{_lammps_number(params['epsilon'])} {_lammps_number(params['sigma'])}"
            if len(cutoffs) > 1:
                args += f" {_lammps_number(params['cutoff'])}"
            coefficients.append((i, j, 1, args))
    else:
        for i, j, params in pairs:
            window = f"{_lammps_number(params['inner_cutoff'])} {_lammps_number(params['cutoff'])}"
            if window not in substyles:
                substyles.append(window)
            z = f"{atomic_numbers[elements[i - 1]]} {atomic_numbers[elements[j - 1]]}"
            coefficients.append((i, j, substyles.index(window) + 1, z))

    numbered = len(substyles) > 1  # a sub-style used several times is addressed by its number in pair_coeff

    def coefficient_line(i: int, j: int, k: int, args: str) -> str:
        return f"pair_coeff {i} {j} {style} {f'{k} ' if numbered else ''}{args}"

    overlay = " ".join(f"{style} {args}" for args in substyles)
    if ace_file is None:
        if not numbered:
            return [f"pair_style {overlay}"] + [f"pair_coeff {i} {j} {args}" for i, j, _, args in coefficients]
        return [f"pair_style hybrid/overlay {overlay}"] + [coefficient_line(*c) for c in coefficients]
    return [
        f"pair_style hybrid/overlay {ace_style} {overlay}",
        f"pair_coeff * * {ace_style} {ace_file} {' '.join(elements)}",
    ] + [coefficient_line(*c) for c in coefficients]
