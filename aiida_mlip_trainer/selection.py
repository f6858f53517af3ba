"""D-optimal structure selection: the unfitted selector basis, pool subsets, and the checks both pace tools share.

How ``pace_select`` works, read in python-ace 0.4.0rc1 (``pyace/aceselect.py``, ``pyace/activelearning.py``):
every atom of every candidate is turned into its vector of **linear B-projections**, the values of the ACE basis
functions on that atom's environment. For each element, MaxVol picks as many rows (atomic environments) as the
basis has functions for that element, maximising the volume spanned (the D-optimal design, to ``gamma_tolerance``).
Structures are then ranked by how many of their atoms entered this active set, and the top ``-m`` are returned
(so large structures are preferred). With ``-a potential.asi`` the rows of an existing active set are appended as
already chosen (their structure index is -1), so only candidates that extend it come back. Consequences:

- At most about as many structures come back as the basis has functions (one active-set row per function and
  element); asking for more is silently not met by the tool, so this plugin reports requested vs returned.
- The linear projections do **not** depend on the fitted coefficients of the basis functions (checked: zeroing
  them changes nothing), only on the basis specification and the radial coefficients ``crad``. An unfitted basis,
  as pacemaker builds it before fitting (coefficients zero, ``crad`` = delta_nk, i.e. the bare radial functions),
  is therefore a valid selector: it picks a D-optimal set in the space of the basis the fit will use, before any
  label exists. :func:`unfitted_potential` builds it in Python with the function pacemaker itself calls
  (``construct_bbasisconfiguration``); its YAML is byte-identical to the ``target_potential.yaml`` of
  ``pacemaker -dr`` (checked), without needing a dataset file.
- Every element of the selector basis needs at least as many atomic environments in the pool as it has functions,
  otherwise MaxVol is under-determined (``Insufficient atomic environments``); an active set passed with ``-a``
  supplies them.
- The memory limit only decides whether the tools switch to batches; it is soft and the tools were seen to use
  about twice of it, so the plugin passes half of the limit the user gives. The tools ``eval()`` the limit string:
  the plugin accepts only a number of bytes or ``<number> MB|GB`` and passes a plain integer.
"""

from __future__ import annotations

import math
import numbers
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from .data.pace_potential import PacePotentialData
from .data.training_set import TrainingSetData

__all__ = (
    "basis_layout",
    "concatenate_structures",
    "assemble_selection",
    "merge_picks",
    "parse_memory_limit",
    "subset_structures",
    "take_structures",
    "unfitted_potential",
    "validate_tool_parameters",
)

# The tools' memory units are binary (pyace.aceselect.compute_mem_limit: GB = 2**30, MB = 2**20).
_MEMORY_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
MIN_MEMORY_LIMIT = 2**20

# Keys of the `parameters` Dict of PaceSelectCalculation / PaceActivesetCalculation.
COMMON_PARAMETERS = ("gamma_tolerance", "batch_size", "maxvol_iters", "maxvol_refinement", "memory_limit")
ACTIVESET_PARAMETERS = (*COMMON_PARAMETERS, "full", "all_atoms", "force_error_threshold")

_PER_STRUCTURE = ("natoms", "cell", "pbc", "names", "energy", "stress")
_PER_ATOM = ("numbers", "positions", "forces")


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


def basis_layout(potential: PacePotentialData) -> dict[str, dict[str, int]]:
    """Per element of the potential: ``num_functions`` (the size of its active set) and ``ndensity``."""
    return potential.basis_layout


def unfitted_basis(parameters: Mapping[str, Any], elements: Sequence[str] | None = None):
    """The unfitted pyace ``BBasisConfiguration`` a fit with these training ``parameters`` starts from (see
    :func:`unfitted_potential`), built in memory. Raises ValueError with what to change for invalid parameters."""
    from pyace.basisextension import construct_bbasisconfiguration

    from .pacemaker_input import build_input_yaml, validate_parameters

    element_list = sorted(elements) if elements is not None else None
    message = validate_parameters(parameters, elements=element_list)
    if message:
        raise ValueError(message)
    if element_list is None and "elements" not in parameters["potential"]:
        raise ValueError("give `elements` (e.g. the pool's) or potential.elements in the parameters")
    config = build_input_yaml(parameters, elements=element_list or [], train_filename="unused.pckl.gzip")
    return construct_bbasisconfiguration(config["potential"])


def unfitted_basis_layout(parameters: Mapping[str, Any], elements: Sequence[str] | None = None) -> dict:
    """:func:`basis_layout` of the unfitted basis of ``parameters``, without storing anything (for validators)."""
    from pyace import ACEBBasisSet

    from .data.pace_potential import basis_layout_of

    return basis_layout_of(ACEBBasisSet(unfitted_basis(parameters, elements)))


def atoms_per_element(structures: TrainingSetData) -> dict[str, int]:
    """How many atoms of each element the set holds."""
    from ase.data import chemical_symbols

    numbers_, counts = np.unique(structures.get_arrays()["numbers"], return_counts=True)
    return {chemical_symbols[int(n)]: int(c) for n, c in zip(numbers_, counts, strict=True)}


def check_environments(
    structures: TrainingSetData, layout: Mapping[str, Mapping[str, int]], *, role: str, with_active_set: bool = False
) -> str | None:
    """A message when ``structures`` hold fewer atoms of an element than the basis has functions for it (MaxVol is
    then under-determined), else None. An active set passed along supplies the missing rows."""
    if with_active_set:
        return None
    counts = atoms_per_element(structures)
    for element, spec in layout.items():
        have, need = counts.get(element, 0), spec["num_functions"]
        if have < need:
            return (
                f"the {role} has {have} {element} atoms but the potential has {need} basis functions for {element}: "
                f"MaxVol needs at least one atomic environment per function and element; add structures with "
                f"{element}, use a smaller basis"
                + (", or pass an active set (use_active_set)" if role == "pool" else "")
            )
    return None


def subset_arrays(arrays: Mapping[str, np.ndarray], indices: Sequence[int]) -> dict[str, np.ndarray]:
    """The arrays of the structures at ``indices`` (in that order) of a :class:`TrainingSetData`."""
    indices = np.asarray(indices, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(arrays["natoms"])])
    atom_rows = (
        np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
        if len(indices)
        else np.zeros(0, dtype=np.int64)
    )
    result = {}
    for key, value in arrays.items():
        if key in _PER_STRUCTURE:
            result[key] = value[indices]
        elif key in _PER_ATOM:
            result[key] = value[atom_rows]
        else:  # pragma: no cover - a key added to TrainingSetData later must be classified here
            raise KeyError(f"do not know whether array {key!r} is per structure or per atom")
    return result


def subset_structures(pool: TrainingSetData, indices: Sequence[int]) -> TrainingSetData:
    """The structures of ``pool`` at ``indices`` (in that order) as a new, unstored set, with labels and baseline."""
    num = pool.num_structures
    bad = [i for i in indices if not 0 <= int(i) < num]
    if bad:
        raise ValueError(f"indices {bad[:5]} are outside the pool of {num} structures")
    if len(set(indices)) != len(indices):
        raise ValueError("indices repeat a structure")
    subset = TrainingSetData(arrays=subset_arrays(pool.get_arrays(), indices))
    baseline = pool.base.attributes.get("baseline", None)
    if baseline is not None:
        subset.base.attributes.set("baseline", baseline)
    return subset


# -------------------------------------------------------------------------------------------------- calcfunctions
@calcfunction
def unfitted_potential(parameters: orm.Dict, elements: orm.List | None = None) -> PacePotentialData:
    """The unfitted ACE basis that a fit with these training ``parameters`` would start from, as a selector for
    ``pace_select`` before any potential exists.

    ``parameters`` are the same as :class:`~aiida_mlip_trainer.calculations.PaceTrainCalculation`'s (its
    ``potential`` section is what counts); ``elements`` are the elements of the data (usually the pool's), used when
    ``potential.elements`` is not given. The result has zero coefficients and ``crad`` = delta_nk, identical to the
    ``target_potential.yaml`` of ``pacemaker -dr``.
    """
    basis = unfitted_basis(parameters.get_dict(), elements.get_list() if elements is not None else None)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/target_potential.yaml"
        basis.save(path)
        return PacePotentialData(path)


@calcfunction
def take_structures(pool: TrainingSetData, indices: orm.List) -> TrainingSetData:
    """The structures of ``pool`` at ``indices``, in that order, with their labels (if any) and baseline."""
    return subset_structures(pool, [int(i) for i in indices.get_list()])


def _concatenate(parts: Sequence[TrainingSetData]) -> TrainingSetData:
    arrays_list = [part.get_arrays() for part in parts]
    baselines = {repr(part.base.attributes.get("baseline", None)) for part in parts}
    keep_labels = all(part.labelled for part in parts) and len(baselines) == 1
    keep_stress = keep_labels and all(part.has_stress for part in parts)
    keys = ["natoms", "numbers", "positions", "cell", "pbc", "names"]
    if keep_labels:
        keys += ["energy", "forces"] + (["stress"] if keep_stress else [])
    merged = {key: np.concatenate([arrays[key] for arrays in arrays_list]) for key in keys}
    result = TrainingSetData(arrays=merged)
    if keep_labels and parts[0].base.attributes.get("baseline", None) is not None:
        result.base.attributes.set("baseline", parts[0].base.attributes.get("baseline"))
    return result


@calcfunction
def concatenate_structures(**sets: TrainingSetData) -> TrainingSetData:
    """All structures of the given sets, in the order of their keyword names (sorted). Labels are kept only when
    every set is labelled and all are on the same baseline; otherwise the result is an unlabelled pool (geometry
    is all that an active set over all atoms needs)."""
    if not sets:
        raise ValueError("give at least one set")
    return _concatenate([sets[key] for key in sorted(sets)])


@calcfunction
def merge_picks(**parts: orm.List) -> orm.List:
    """Positions in a pool of what its chunks contributed, sorted: for chunk ``k``, ``map_k`` (the chunk's positions
    in the pool) with ``indices_k`` (its pace_select picks, positions in the chunk), or ``whole_k`` (a chunk passed on
    whole, too small for MaxVol on its own)."""
    picked: set[int] = set()
    for key, value in parts.items():
        kind, k = key.rsplit("_", 1)
        if kind == "whole":
            picked.update(int(i) for i in value.get_list())
        elif kind == "indices":
            mapping = parts[f"map_{k}"].get_list()
            picked.update(int(mapping[int(i)]) for i in value.get_list())
        elif kind != "map":
            raise ValueError(f"unexpected input {key!r}: give map_k with indices_k, or whole_k")
    return orm.List(sorted(picked))


def _fill(order, natoms, max_atoms: float, max_structures: float) -> list[int]:
    """The structures of ``order`` (best first) kept while they fit both budgets: one that would overflow the atom
    budget is skipped, and smaller ones after it may still fit."""
    picked, used = [], 0
    for index in order:
        if len(picked) >= max_structures:
            break
        if used + natoms[int(index)] <= max_atoms:
            picked.append(int(index))
            used += int(natoms[int(index)])
    return picked


@calcfunction
def assemble_selection(
    pool: TrainingSetData,
    budget: orm.Dict,
    stop_reason: orm.Str | None = None,
    chunking: orm.Dict | None = None,
    **rounds: orm.Data,
) -> dict:
    """Cut the D-optimal picks of a selection's rounds to the budget, fill a random share, and take the structures.

    ``budget``: ``max_structures`` and/or ``max_atoms`` (None when not set), ``strategy`` (``dopt`` or
    ``dopt+random``), ``random_fraction``, ``seed`` and ``whole_pool`` (the pool fits the budget: take it all).
    For round ``k`` pass ``map_k`` (for each structure of that round's pool, its position in ``pool``), ``indices_k``
    (the round's pace_select picks) and ``summary_k`` (its summary). The D-optimal order (round by round, within a
    round most atoms in the active set first) is kept while it fits ``1 - random_fraction`` of the budget; the
    random share then takes a permutation of the rest of the pool, seeded with ``seed``, while it fits what is left.
    Returns ``selected`` (TrainingSetData), ``indices`` (List of positions in ``pool``) and ``summary`` (Dict:
    requested and returned structures and atoms, the two shares, the rounds, and ``shortfall``: why fewer than
    requested came back, else None)."""
    spec = budget.get_dict()
    natoms = pool.get_arrays()["natoms"]
    max_structures = spec.get("max_structures")
    max_atoms = spec.get("max_atoms")
    limit_s = math.inf if max_structures is None else max_structures
    limit_a = math.inf if max_atoms is None else max_atoms
    fraction = float(spec.get("random_fraction", 0.0)) if spec.get("strategy") == "dopt+random" else 0.0

    order = sorted({int(key.rsplit("_", 1)[1]) for key in rounds if key.startswith("indices_")})
    ranked: list[int] = []
    summaries = []
    for k in order:
        mapping = rounds[f"map_{k}"].get_list()
        ranked += [int(mapping[int(i)]) for i in rounds[f"indices_{k}"].get_list()]
        summaries.append(rounds[f"summary_{k}"].get_dict())

    if spec.get("whole_pool"):
        dopt, rest = list(range(pool.num_structures)), []
    else:
        dopt_structures = math.inf if max_structures is None else round((1.0 - fraction) * max_structures)
        dopt = _fill(ranked, natoms, (1.0 - fraction) * limit_a, dopt_structures)
        rest = []
        if fraction > 0:
            chosen = set(dopt)
            permutation = np.random.default_rng(int(spec.get("seed", 0))).permutation(len(natoms))
            candidates = [int(i) for i in permutation if int(i) not in chosen]
            rest = _fill(candidates, natoms, limit_a - int(natoms[dopt].sum()), limit_s - len(dopt))
    picked = dopt + rest
    returned_atoms = int(natoms[picked].sum()) if picked else 0

    short_structures = max_structures is not None and len(picked) < max_structures
    # an atom budget is met when the smallest structure left out would not fit any more
    left_out = np.setdiff1d(np.arange(len(natoms)), picked)
    short_atoms = (
        max_atoms is not None and left_out.size > 0 and returned_atoms + int(natoms[left_out].min()) <= max_atoms
    )
    shortfall = None
    if (short_structures or short_atoms) and not spec.get("whole_pool"):
        reasons = [summaries[-1].get("shortfall")] if summaries else []
        reasons.append(stop_reason.value if stop_reason is not None else None)
        if len(ranked) > len(dopt):
            reasons.append("D-optimal picks larger than what was left of the atom budget were skipped")
        shortfall = "; ".join(reason for reason in reasons if reason) or "no reason recorded"
    stopped = stop_reason.value if stop_reason is not None and stop_reason.value else None
    summary = {
        "requested": max_structures,
        "requested_atoms": max_atoms,
        "returned": len(picked),
        "returned_atoms": returned_atoms,
        "pool_size": pool.num_structures,
        "pool_atoms": pool.num_atoms,
        "strategy": spec.get("strategy", "dopt"),
        "dopt_share": {"structures": len(dopt), "atoms": int(natoms[dopt].sum()) if dopt else 0},
        "random_share": {
            "structures": len(rest),
            "atoms": int(natoms[rest].sum()) if rest else 0,
            "seed": spec.get("seed"),
        },
        "rounds": [
            {"requested": s["requested"], "returned": s["returned"], "used_active_set": s["used_active_set"]}
            for s in summaries
        ],
        "stop_reason": "the whole pool fits the budget" if spec.get("whole_pool") else stopped,
        "shortfall": shortfall,
        "order": "D-optimal share round by round (within a round most atoms in the active set first), then the "
        "random share",
    }
    if chunking is not None:
        summary["chunking"] = chunking.get_dict()
    return {"selected": subset_structures(pool, picked), "indices": orm.List(picked), "summary": orm.Dict(summary)}
