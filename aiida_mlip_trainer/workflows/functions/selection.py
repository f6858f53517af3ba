"""Calcfunctions of the selection: the unfitted selector, picks taken from a pool, rounds merged and cut to budget.

Used by :class:`~aiida_mlip_trainer.workflows.selection.SelectionWorkChain`; how pace_select works is told in
``docs/explanation`` and in :mod:`aiida_mlip_trainer.calculations.pace_select`.
"""

from __future__ import annotations

import math
import tempfile

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ...data.operations import concatenate, subset_structures
from ...data.pace_potential import PacePotentialData
from ...data.training_set import TrainingSetData
from ...formats.basis import unfitted_basis

__all__ = (
    "assemble_selection",
    "concatenate_structures",
    "merge_picks",
    "pick_spread",
    "pool_origins",
    "take_structures",
    "unfitted_potential",
)


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


@calcfunction
def concatenate_structures(**sets: TrainingSetData) -> TrainingSetData:
    """All structures of the given sets, in the order of their keyword names (sorted). Labels are kept only when
    every set is labelled and all are on the same baseline; otherwise the result is an unlabelled pool (geometry
    is all that an active set over all atoms needs)."""
    if not sets:
        raise ValueError("give at least one set")
    return concatenate([sets[key] for key in sorted(sets)])


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
    Returns ``selected`` (TrainingSetData), ``indices`` (List of positions in ``pool``), ``whole_pool`` (Bool: the
    budget's flag, True when the pool fitted the budget and was taken whole, nothing selected) and ``summary`` (Dict:
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
    return {
        "selected": subset_structures(pool, picked),
        "indices": orm.List(picked),
        "whole_pool": orm.Bool(bool(spec.get("whole_pool"))),
        "summary": orm.Dict(summary),
    }


def pool_origins(trajectories: list[dict], origins: list[str]) -> list[dict]:
    """Where each candidate of an exploration came from, in the order of its ``candidates`` pool: per kept frame its
    trajectory's ``condition``, ``temperature``, ``pressure`` and ``origin`` (the group of its starting structure:
    ``given``, ``generated_<i>_<type>``, ``resume``; ``origins`` lists them per starting structure)."""
    frames = []
    for record in trajectories:
        for _ in record["kept"]:
            frames.append(
                {
                    "condition": record["condition"] or "default",
                    "temperature": record["temperature"],
                    "pressure": record["pressure"],
                    "origin": origins[record["structure"]],
                }
            )
    return frames


@calcfunction
def pick_spread(indices: orm.List, exploration: orm.Dict, origins: orm.List) -> orm.Dict:
    """How one round's picks (``indices`` into the exploration's candidate pool) spread over the conditions of the
    exploration (its ``summary``) and the origins of their starting structures: counts ``by_condition``,
    ``by_origin``, ``by_temperature`` (K, as text) and ``by_pressure`` (GPa, ``NVT`` without), of the picks and of
    the pool (``pool_by_...``)."""
    frames = pool_origins(exploration["trajectories"], origins.get_list())
    if len(frames) != exploration["num_candidates"]:
        raise ValueError(
            f"the trajectories kept {len(frames)} frames, the exploration says {exploration['num_candidates']}"
        )
    picked = [frames[int(i)] for i in indices.get_list()]

    def counts(rows: list[dict], key: str) -> dict[str, int]:
        result: dict[str, int] = {}
        for row in rows:
            value = row[key]
            label = "NVT" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
            result[label] = result.get(label, 0) + 1
        return dict(sorted(result.items()))

    spread = {"num_picked": len(picked), "num_pool": len(frames)}
    for key in ("condition", "origin", "temperature", "pressure"):
        spread[f"by_{key}"] = counts(picked, key)
        spread[f"pool_by_{key}"] = counts(frames, key)
    return orm.Dict(spread)
