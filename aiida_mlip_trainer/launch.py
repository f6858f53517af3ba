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

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.engine import run_get_node

from .data.pace_potential import PacePotentialData
from .data.training_set import TrainingSetData

__all__ = (
    "SelectionError",
    "get_or_create_code",
    "select_structures",
    "select_within_atoms",
    "training_builder_from_yaml",
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


def _run_selection(pool, **inputs) -> TrainingSetData:
    """Run :class:`SelectionWorkChain` here and return its ``selected`` output; raise SelectionError on failure.
    Inputs given as None are left out."""
    from .workflows.selection import SelectionWorkChain

    inputs = {key: value for key, value in inputs.items() if value is not None}
    results, node = run_get_node(SelectionWorkChain, pool=_as_pool(pool), **inputs)
    if not node.is_finished_ok:
        raise SelectionError(f"SelectionWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}")
    summary = results["summary"].get_dict()
    if summary["shortfall"]:
        LOGGER.warning(
            "selection returned %d structures (%d atoms) of a budget of %s structures / %s atoms: %s",
            summary["returned"],
            summary["returned_atoms"],
            summary["requested"],
            summary["requested_atoms"],
            summary["shortfall"],
        )
    return results["selected"]


def _selection_inputs(
    *,
    potential: PacePotentialData | None,
    parameters: Mapping[str, Any] | orm.Dict | None,
    use_active_set: bool,
    selection_parameters: Mapping[str, Any] | None,
    code: orm.AbstractCode | None,
    activeset_code: orm.AbstractCode | None,
    options: Mapping[str, Any] | None,
) -> dict:
    """The selector and the exposed job inputs of SelectionWorkChain, from the keyword arguments of the wrappers."""
    inputs: dict[str, Any] = {}
    if use_active_set and (potential is None or not potential.has_active_set):
        raise ValueError("use_active_set needs a potential with an active set (.asi): see PaceActivesetCalculation")
    if potential is not None:
        inputs["potential"] = potential if potential.is_stored else potential.store()
    if parameters is not None:
        inputs["parameters"] = parameters if isinstance(parameters, orm.Dict) else orm.Dict(dict(parameters))
    metadata = {"options": dict(options)} if options else {}
    inputs["pace_select"] = {
        "code": code or get_or_create_code("pace_select", "mlip_trainer.pace_select"),
        "metadata": metadata,
    }
    if selection_parameters:
        inputs["pace_select"]["parameters"] = orm.Dict(dict(selection_parameters))
    inputs["pace_activeset"] = {
        "code": activeset_code or get_or_create_code("pace_activeset", "mlip_trainer.pace_activeset"),
        "metadata": metadata,
    }
    return inputs


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
    memory_limit: int | str | None = None,
    selection_parameters: Mapping[str, Any] | None = None,
    code: orm.AbstractCode | None = None,
    activeset_code: orm.AbstractCode | None = None,
    options: Mapping[str, Any] | None = None,
) -> TrainingSetData:
    """Select up to ``max_structures`` of ``pool`` by D-optimality: one call that runs
    :class:`~aiida_mlip_trainer.workflows.selection.SelectionWorkChain` here and returns its ``selected`` output.

    Pass the ``pool`` (a :class:`TrainingSetData` or a list of ``ase.Atoms``) and either a fitted ``potential``
    (``use_active_set=True`` counts its active set as covered) or, before the first fit, the training
    ``parameters`` (their unfitted basis selects). ``covered``: structures to treat as known. ``strategy`` is the
    way rounds go on (``"extend"``: each round counts the earlier picks as covered; ``"layers"``: the same selector
    each round): it is the work chain's ``rounds`` input. ``chunk_size`` or ``memory_limit`` bound memory for large
    pools. ``selection_parameters`` are pace_select options; ``code``/``activeset_code`` default to ``pace_select``/
    ``pace_activeset`` on this machine's PATH; ``options`` go to each job's ``metadata.options``. The positions in
    the pool are ``selected.creator.outputs.indices`` and the summary ``selected.creator.outputs.summary``. Bad input
    raises ValueError before any job; a failed selection raises :class:`SelectionError`.
    """
    if isinstance(max_structures, bool) or not isinstance(max_structures, int) or max_structures <= 0:
        raise ValueError(f"max_structures must be a positive integer, got {max_structures!r}")
    inputs = _selection_inputs(
        potential=potential,
        parameters=parameters,
        use_active_set=use_active_set,
        selection_parameters=selection_parameters,
        code=code,
        activeset_code=activeset_code,
        options=options,
    )
    inputs.update(max_structures=max_structures, use_active_set=use_active_set, rounds=strategy, max_rounds=max_rounds)
    return _run_selection(pool, covered=covered, chunk_size=chunk_size, memory_limit=memory_limit, **inputs)


def select_within_atoms(
    pool: TrainingSetData | Sequence,
    max_atoms: int,
    *,
    random_fraction: float = 0.5,
    seed: int = 0,
    potential: PacePotentialData | None = None,
    parameters: Mapping[str, Any] | orm.Dict | None = None,
    use_active_set: bool = False,
    covered: TrainingSetData | None = None,
    strategy: Literal["extend", "layers"] = "layers",
    max_rounds: int = 50,
    chunk_size: int | None = None,
    memory_limit: int | str | None = None,
    selection_parameters: Mapping[str, Any] | None = None,
    code: orm.AbstractCode | None = None,
    activeset_code: orm.AbstractCode | None = None,
    options: Mapping[str, Any] | None = None,
) -> TrainingSetData:
    """Select structures of ``pool`` whose atoms add up to at most ``max_atoms`` (the labelling cost): the first
    ``1 - random_fraction`` of the budget in D-optimal order, the rest at random (seeded with ``seed``) from the
    remaining pool. One call that runs :class:`~aiida_mlip_trainer.workflows.selection.SelectionWorkChain` with
    ``strategy="dopt+random"``; the other arguments are those of :func:`select_structures`.

    On EMT copper the random share helped at equal atoms; on held-out DFT copper it did not (docs/benchmarks.md):
    ``random_fraction=0`` takes D-optimal picks only.
    """
    if isinstance(max_atoms, bool) or not isinstance(max_atoms, int) or max_atoms <= 0:
        raise ValueError(f"max_atoms must be a positive integer, got {max_atoms!r}")
    inputs = _selection_inputs(
        potential=potential,
        parameters=parameters,
        use_active_set=use_active_set,
        selection_parameters=selection_parameters,
        code=code,
        activeset_code=activeset_code,
        options=options,
    )
    inputs.update(
        max_atoms=max_atoms,
        strategy="dopt+random",
        random_fraction=float(random_fraction),
        seed=seed,
        use_active_set=use_active_set,
        rounds=strategy,
        max_rounds=max_rounds,
    )
    return _run_selection(pool, covered=covered, chunk_size=chunk_size, memory_limit=memory_limit, **inputs)


TRAINING_INPUT_KEYS = (
    "training_set",
    "structures_file",
    "test_set",
    "physics_baseline",
    "short_range_check",
    "previous_potential",
    "codes",
    "protocol",
    "overrides",
    "options",
)
# Keys of the first releases, still read: each is put where it belongs in `overrides`.
LEGACY_KEYS = {
    "preset": ("protocol",),
    "parameter_overrides": ("overrides", "training", "pace", "parameters"),
    "max_structures": ("overrides", "selection", "max_structures"),
    "max_iterations": ("overrides", "training", "max_iterations"),
    "test_fraction": ("overrides", "test_fraction"),
    "seed": ("overrides", "seed"),
}


def training_builder_from_yaml(path: str | pathlib.Path):
    """A ``TrainingWorkChain`` builder from a YAML file, through ``get_builder_from_protocol``.

    Keys: ``codes`` (tool name → code label), ``structures_file`` (a path relative to the YAML file) or
    ``training_set`` (pk or UUID), optional ``protocol`` (fast, moderate, precise), ``overrides`` (merged into the
    protocol), ``options`` (every job's scheduler options), ``test_set`` and ``previous_potential`` (pk or UUID),
    ``physics_baseline``. The keys of the first releases (``preset``, ``parameter_overrides``, ``max_structures``,
    ``max_iterations``, ``test_fraction``, ``seed``) are still read. Unknown keys are refused."""
    import yaml

    from .workflows.protocols import merge
    from .workflows.training import TrainingWorkChain

    path = pathlib.Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of TrainingWorkChain inputs")
    unknown = sorted(set(spec) - set(TRAINING_INPUT_KEYS) - set(LEGACY_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(TRAINING_INPUT_KEYS)}")
    for key, target in LEGACY_KEYS.items():
        if key in spec:
            value = spec.pop(key)
            for name in reversed(target[1:]):
                value = {name: value}
            spec[target[0]] = merge(spec.get(target[0]) or {}, value) if isinstance(value, dict) else value
    codes = spec.pop("codes", None) or {}
    if not isinstance(codes, dict) or "pacemaker" not in codes:
        raise ValueError(
            f"{path}: `codes` must map at least `pacemaker` (and pace_activeset, pace_yaml2yace, pace_select) to labels"
        )
    if "structures_file" in spec:
        file_path = (path.parent / spec.pop("structures_file")).resolve()
        if not file_path.is_file():
            raise ValueError(f"{path}: structures_file {file_path} does not exist")
        structures = orm.SinglefileData(file_path)
    elif "training_set" in spec:
        structures = orm.load_node(spec.pop("training_set"))
    else:
        raise ValueError(f"{path}: give `structures_file` (a path) or `training_set` (a pk or UUID)")
    extra = {key: orm.load_node(spec.pop(key)) for key in ("test_set", "previous_potential") if key in spec}
    if "physics_baseline" in spec:
        extra["physics_baseline"] = orm.Dict(spec.pop("physics_baseline"))
    if "short_range_check" in spec:
        extra["short_range_check"] = orm.Str(spec.pop("short_range_check"))
    return TrainingWorkChain.get_builder_from_protocol(
        codes,
        structures,
        protocol=spec.pop("protocol", None),
        overrides=spec.pop("overrides", None),
        options=spec.pop("options", None),
        **extra,
    )
