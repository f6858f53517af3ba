"""Friendly doors over the process classes: one call, plain Python values in, data nodes out."""

from __future__ import annotations

import logging
import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.engine import run_get_node

from .calculations.pace_activeset import PaceActivesetCalculation
from .calculations.pace_select import PaceSelectCalculation
from .data.pace_potential import PacePotentialData
from .data.training_set import TrainingSetData
from .pacemaker_input import validate_parameters
from .selection import (
    basis_layout,
    check_environments,
    concatenate_structures,
    fill_atom_budget,
    gather_selection,
    merge_picks,
    take_structures,
    unfitted_potential,
)

__all__ = (
    "SelectionError",
    "get_or_create_code",
    "select_structures",
    "select_within_atoms",
    "training_inputs_from_yaml",
)

LOGGER = logging.getLogger("aiida.mlip_trainer.launch")


class SelectionError(RuntimeError):
    """A selection job failed; the message carries its exit status and message."""


def get_or_create_code(executable: str, plugin: str, computer: orm.Computer | None = None) -> orm.InstalledCode:
    """The ``InstalledCode`` for ``executable`` (found on PATH or next to this Python) with ``plugin`` as its
    default, on ``computer`` (default: the computer labelled ``localhost``, created with ``core.local`` if there
    is none)."""
    if computer is None:
        try:
            computer = orm.load_computer("localhost")
        except NotExistent:
            computer = orm.Computer(
                label="localhost",
                hostname="localhost",
                description="this machine (created by aiida-mlip-trainer)",
                transport_type="core.local",
                scheduler_type="core.direct",
                workdir=tempfile.mkdtemp(prefix="aiida-mlip-trainer-"),
            ).store()
            computer.set_minimum_job_poll_interval(0.0)
            computer.configure()
    query = orm.QueryBuilder().append(orm.Computer, filters={"id": computer.pk}, tag="computer")
    query.append(
        orm.InstalledCode,
        with_computer="computer",
        filters={"label": executable, "attributes.input_plugin": plugin},
        project="*",
    )
    existing = query.first(flat=True)
    if existing is not None:
        return existing
    # python-ace installs its tools next to the interpreter: found there even when the venv is not activated.
    path = shutil.which(executable) or shutil.which(executable, path=os.path.dirname(sys.executable))
    if path is None:
        raise NotExistent(f"`{executable}` is not on PATH: install python-ace or pass the code explicitly")
    return orm.InstalledCode(
        label=executable, computer=computer, filepath_executable=path, default_calc_job_plugin=plugin
    ).store()


def _as_pool(pool: TrainingSetData | Sequence) -> TrainingSetData:
    if isinstance(pool, TrainingSetData):
        return pool if pool.is_stored else pool.store()
    structures = list(pool)
    if not structures:
        raise ValueError("the pool is empty: give at least one candidate structure")
    labelled = all(getattr(atoms, "calc", None) is not None for atoms in structures)
    return TrainingSetData(structures, labelled=labelled).store()


def select_structures(
    pool: TrainingSetData | Sequence,
    max_structures: int,
    *,
    potential: PacePotentialData | None = None,
    parameters: Mapping[str, Any] | orm.Dict | None = None,
    use_active_set: bool = False,
    covered: TrainingSetData | None = None,
    strategy: Literal["extend", "layers"] = "extend",
    max_rounds: int = 10,
    chunk_size: int | None = None,
    selection_parameters: Mapping[str, Any] | None = None,
    code: orm.AbstractCode | None = None,
    activeset_code: orm.AbstractCode | None = None,
    options: Mapping[str, Any] | None = None,
) -> TrainingSetData:
    """Select up to ``max_structures`` of ``pool`` to label next, by D-optimality (pace_select), and return them.

    Pass the ``pool`` (a :class:`TrainingSetData`, labelled or not, or a list of ``ase.Atoms``) and either a
    ``potential`` (a fitted one; ``use_active_set=True`` counts its active set as covered) or, before the first
    fit, the training ``parameters`` (those of :class:`PaceTrainCalculation`), from which the unfitted basis of the
    coming fit is built (:func:`~aiida_mlip_trainer.selection.unfitted_potential`) and used as selector.
    ``covered`` (e.g. the potential's training set) are structures to treat as known. You get a
    :class:`TrainingSetData` of the picked pool structures, best first, with the pool's labels if it had them; its
    creator's outputs hold ``indices`` (positions in the pool) and ``summary`` (requested, returned, the rounds and
    why fewer came back): ``selected.creator.outputs.summary``.

    One pace_select call returns at most about as many structures as the basis has functions. When that is fewer
    than ``max_structures`` the selection goes on in rounds, on the rest of the pool, up to ``max_rounds``:

    - ``strategy="extend"`` (default): each later round treats ``covered`` plus everything selected so far as known
      (their active set over all atoms, from pace_activeset) and picks only what extends it. It stops when nothing
      does: then the rest of the pool is interpolation for this basis (gamma within the tolerance), and fewer than
      ``max_structures`` are returned, said in a warning and in the summary.
    - ``strategy="layers"``: each round is the D-optimal subset of what is left of the pool on its own (with the
      potential's active set when ``use_active_set``); it fills up to ``max_structures`` while the pool lasts, but
      later layers are less informative and may repeat what earlier ones cover.

    ``chunk_size`` bounds memory for large pools: a pool of more structures is first cut into chunks of that many,
    each chunk's D-optimal picks (up to ``max_structures``) become the candidates, and the selection above runs on
    them. pace_select holds the atomic environments of its whole pool in memory on top of its own (soft) limit,
    about 1 KiB per atom at rcut 5 Å (measured in docs/benchmarks.md), so chunks keep the peak to that of the larger
    of one chunk and the candidates (at most ``max_structures`` per chunk). Chunks are selected with the selector
    alone; ``covered`` counts in the rounds over the candidates.

    ``selection_parameters`` are pace_select options (``gamma_tolerance``, ``memory_limit``, ...); ``code`` /
    ``activeset_code`` default to ``pace_select`` / ``pace_activeset`` on this machine's PATH; ``options`` go to
    each job's ``metadata.options``. Bad input (``max_structures`` <= 0, an empty pool, elements the selector does
    not describe) raises ValueError before any job runs; a failed job raises :class:`SelectionError`.
    """
    if isinstance(max_structures, bool) or not isinstance(max_structures, int) or max_structures <= 0:
        raise ValueError(f"max_structures must be a positive integer, got {max_structures!r}")
    if max_rounds < 1:
        raise ValueError(f"max_rounds must be at least 1, got {max_rounds!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if strategy not in ("extend", "layers"):
        raise ValueError(f"strategy must be 'extend' or 'layers', got {strategy!r}")
    if (potential is None) == (parameters is None):
        raise ValueError(
            "give either a `potential` (a fitted one) or the training `parameters` (to select with the unfitted "
            "basis of the coming fit), not both and not neither"
        )
    pool = _as_pool(pool)
    if use_active_set and (potential is None or not potential.has_active_set):
        raise ValueError("use_active_set needs a potential with an active set (.asi): see PaceActivesetCalculation")

    if potential is None:
        params = parameters.get_dict() if isinstance(parameters, orm.Dict) else dict(parameters)
        message = validate_parameters(params, elements=pool.elements)
        if message:
            raise ValueError(message)
        selector = unfitted_potential(orm.Dict(params), orm.List(pool.elements))
    else:
        selector = potential if potential.is_stored else potential.store()
    absent = sorted(set(pool.elements) - set(selector.elements))
    if absent:
        raise ValueError(f"the pool contains {absent}, which the selector potential ({selector.elements}) lacks")
    if covered is not None:
        absent = sorted(set(covered.elements) - set(selector.elements))
        if absent:
            raise ValueError(f"`covered` contains {absent}, which the selector potential ({selector.elements}) lacks")
    layout = basis_layout(selector)

    code = code or get_or_create_code("pace_select", "mlip_trainer.pace_select")
    metadata = {"options": dict(options)} if options else {}
    select_parameters = dict(selection_parameters or {})

    def active_set_over(structures: TrainingSetData) -> PacePotentialData | None:
        nonlocal activeset_code
        if check_environments(structures, layout, role="selection") is not None:
            return None
        activeset_code = activeset_code or get_or_create_code("pace_activeset", "mlip_trainer.pace_activeset")
        activeset_parameters = {"all_atoms": True}
        if "memory_limit" in select_parameters:
            activeset_parameters["memory_limit"] = select_parameters["memory_limit"]
        results, node = run_get_node(
            PaceActivesetCalculation,
            code=activeset_code,
            potential=selector,
            training_set=structures,
            parameters=activeset_parameters,
            metadata=metadata,
        )
        if not node.is_finished_ok:
            raise SelectionError(f"pace_activeset failed [{node.exit_status}]: {node.exit_message}")
        return results["potential"]

    def run_select(round_pool: TrainingSetData, requested: int, round_selector, round_use_active_set: bool):
        inputs = {
            "code": code,
            "pool": round_pool,
            "potential": round_selector,
            "max_structures": requested,
            "use_active_set": round_use_active_set,
            "metadata": metadata,
        }
        if select_parameters:
            inputs["parameters"] = select_parameters
        return run_get_node(PaceSelectCalculation, **inputs)

    candidates = list(range(pool.num_structures))
    chunking = None
    if chunk_size is not None and pool.num_structures > chunk_size:
        parts: dict[str, orm.List] = {}
        starts = range(0, pool.num_structures, chunk_size)
        for k, start in enumerate(starts):
            members = orm.List(list(range(start, min(start + chunk_size, pool.num_structures))))
            chunk = take_structures(pool, members)
            if not use_active_set and check_environments(chunk, layout, role="pool"):
                parts[f"whole_{k}"] = members  # too few environments for MaxVol on its own: all of it goes on
                continue
            results, node = run_select(chunk, max_structures, selector, use_active_set)
            if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
                continue
            if not node.is_finished_ok:
                raise SelectionError(f"pace_select failed on a chunk [{node.exit_status}]: {node.exit_message}")
            parts.update({f"map_{k}": members, f"indices_{k}": results["indices"]})
        if not parts:
            raise SelectionError("nothing was selected: no chunk of the pool extends the active set")
        candidates = merge_picks(**parts).get_list()
        chunking = {"chunk_size": chunk_size, "chunks": len(starts), "candidates": len(candidates)}

    rounds: dict[str, orm.Data] = {}
    picked: list[int] = []
    stop_reason = None
    for round_index in range(max_rounds):
        remaining = [i for i in candidates if i not in set(picked)]
        if not remaining:
            stop_reason = (
                f"the whole pool ({pool.num_structures} structures) was selected"
                if chunking is None
                else f"all {len(candidates)} candidates from the chunks were selected"
            )
            break
        mapping = orm.List(remaining)
        round_pool = pool if len(remaining) == pool.num_structures else take_structures(pool, mapping)

        round_selector, round_use_active_set = selector, use_active_set
        if strategy == "extend" and (round_index > 0 or (covered is not None and not use_active_set)):
            known = [covered] if covered is not None else []
            if picked:
                known.append(take_structures(pool, orm.List(list(picked))))
            union = (
                known[0] if len(known) == 1 else concatenate_structures(**{f"set_{i}": s for i, s in enumerate(known)})
            )
            round_selector = active_set_over(union)
            if round_selector is None:
                stop_reason = (
                    f"the structures known so far hold fewer atomic environments than the basis has functions "
                    f"({ {e: s['num_functions'] for e, s in layout.items()} }), so no active set can mark them covered"
                )
                break
            round_use_active_set = True
        if round_pool is not pool and not round_use_active_set and check_environments(round_pool, layout, role="pool"):
            stop_reason = (
                f"round {round_index + 1}: the rest of the pool{' (the candidates of its chunks)' if chunking else ''}"
                " holds fewer atomic environments than the basis has functions, too few for MaxVol on its own"
            )
            break

        results, node = run_select(round_pool, max_structures - len(picked), round_selector, round_use_active_set)
        if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
            stop_reason = (
                f"round {round_index + 1}: no structure left in the pool extends the active set of what is known "
                "(the rest is interpolation for this basis, gamma within the tolerance)"
            )
            break
        if not node.is_finished_ok:
            raise SelectionError(f"pace_select failed [{node.exit_status}]: {node.exit_message}")
        round_indices = results["indices"].get_list()
        rounds.update({f"map_{round_index}": mapping, f"indices_{round_index}": results["indices"]})
        rounds[f"summary_{round_index}"] = results["summary"]
        picked += [remaining[i] for i in round_indices]
        if len(picked) >= max_structures:
            break
    else:
        stop_reason = f"max_rounds ({max_rounds}) reached"

    if not picked:
        raise SelectionError(f"nothing was selected: {stop_reason}")
    if chunking is not None:
        rounds["chunking"] = orm.Dict(chunking)
    outputs = gather_selection(pool, stop_reason=orm.Str(stop_reason or ""), **rounds)
    summary = outputs["summary"].get_dict()
    if summary["returned"] < max_structures:
        LOGGER.warning(
            "select_structures returned %d of the %d structures requested: %s",
            summary["returned"],
            max_structures,
            summary["shortfall"],
        )
    return outputs["selected"]


def select_within_atoms(
    pool: TrainingSetData | Sequence,
    max_atoms: int,
    *,
    random_fraction: float = 0.5,
    seed: int = 0,
    **selection: Any,
) -> TrainingSetData:
    """Select structures of ``pool`` to label whose atoms add up to at most ``max_atoms`` (the labelling cost): the
    first ``1 - random_fraction`` of the budget in D-optimal order, the rest at random from the remaining pool.

    Plain D-optimal selection at an atom budget wins on force errors but skips near-equilibrium structures, whose
    environments are interpolation for the selector; the random share keeps the pool's own distribution in the set
    (measured in docs/benchmarks.md, "Structure selection: data efficiency"). The D-optimal share comes from
    :func:`select_structures` with ``strategy="layers"`` (give ``parameters`` before the first fit or a
    ``potential``, and any of its other options in ``selection``); when it finds nothing (a ``potential`` whose
    active set already covers the pool), the whole budget goes to the random share. ``seed`` fixes the random
    share; ``random_fraction=0`` takes D-optimal picks only. Structures are taken best first while they fit the
    budget (a larger one that would overflow it is skipped). The cut is the calcfunction
    :func:`~aiida_mlip_trainer.selection.fill_atom_budget`, so the graph holds the budget, the seed and the
    D-optimal order. You get the picked structures (D-optimal share first) as a :class:`TrainingSetData`; their
    positions in the pool are ``selected.creator.inputs.indices``.
    """
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms <= 0:
        raise ValueError(f"max_atoms must be a positive integer, got {max_atoms!r}")
    if not 0.0 <= random_fraction <= 1.0:
        raise ValueError(f"random_fraction must be between 0 and 1, got {random_fraction!r}")
    for key in ("strategy", "max_structures"):
        if key in selection:
            raise ValueError(f"`{key}` is set by select_within_atoms itself")

    pool = _as_pool(pool)
    natoms = pool.get_arrays()["natoms"]
    if natoms.min() > max_atoms:
        raise ValueError(f"no structure of the pool fits max_atoms={max_atoms} (the smallest has {natoms.min()})")
    dopt_budget = (1.0 - random_fraction) * max_atoms
    ranked = None
    if dopt_budget >= natoms.min():
        # D-optimal picks are larger than average: ask for 1.5 times what the average size would fill.
        count = min(pool.num_structures, int(np.ceil(1.5 * dopt_budget / natoms.mean())))
        selection.setdefault("max_rounds", 50)
        try:
            selected = select_structures(pool, count, strategy="layers", **selection)
        except SelectionError as error:
            if random_fraction == 0:
                raise
            LOGGER.warning("select_within_atoms: no D-optimal share (%s); the whole budget is random", error)
            random_fraction = 1.0
        else:
            ranked = selected.creator.outputs.indices
    inputs = {"max_atoms": orm.Int(max_atoms), "random_fraction": orm.Float(random_fraction), "seed": orm.Int(seed)}
    if ranked is not None:
        inputs["ranked"] = ranked
    picked = fill_atom_budget(pool, **inputs)
    if not picked.get_list():
        raise SelectionError(f"no D-optimal pick fits max_atoms={max_atoms}, and random_fraction is 0")
    return take_structures(pool, picked)


TRAINING_INPUT_KEYS = (
    "training_set",
    "structures_file",
    "test_set",
    "test_fraction",
    "seed",
    "physics_baseline",
    "short_range_check",
    "max_structures",
    "preset",
    "parameter_overrides",
    "previous_potential",
    "codes",
    "options",
    "max_iterations",
)


def training_inputs_from_yaml(path: str | pathlib.Path) -> dict:
    """TrainingWorkChain inputs from a YAML file: nodes by pk or UUID, codes by label, ``structures_file`` as a path
    (relative to the YAML file), everything else as plain values. Unknown keys are refused."""
    import yaml

    path = pathlib.Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of TrainingWorkChain inputs")
    unknown = sorted(set(spec) - set(TRAINING_INPUT_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(TRAINING_INPUT_KEYS)}")
    inputs = dict(spec)
    for key in ("training_set", "test_set", "previous_potential"):
        if key in inputs:
            inputs[key] = orm.load_node(inputs[key])
    if "structures_file" in inputs:
        file_path = (path.parent / inputs["structures_file"]).resolve()
        if not file_path.is_file():
            raise ValueError(f"{path}: structures_file {file_path} does not exist")
        inputs["structures_file"] = orm.SinglefileData(file_path)
    codes = inputs.get("codes") or {}
    if not isinstance(codes, dict) or "pacemaker" not in codes:
        raise ValueError(
            f"{path}: `codes` must map at least `pacemaker` (and pace_activeset, pace_yaml2yace) to labels"
        )
    inputs["codes"] = {name: orm.load_code(label) for name, label in codes.items()}
    return inputs
