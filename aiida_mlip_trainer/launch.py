"""Friendly doors over the process classes: one call, plain Python values in, data nodes out.

:func:`train` runs a whole training from a protocol, :func:`select_structures` and :func:`select_within_atoms` a
D-optimal selection, and :func:`get_or_create_code` sets up the code of a tool on this machine in one call.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from aiida import orm
from aiida.common.exceptions import NotExistent
from aiida.engine import run_get_node

from .data.pace_potential import PacePotentialData
from .data.training_set import TrainingSetData

__all__ = (
    "NotLearnedWarning",
    "SelectionError",
    "TrainingError",
    "create_localhost",
    "get_or_create_code",
    "get_or_create_codes",
    "select_structures",
    "select_within_atoms",
    "train",
)

LOGGER = logging.getLogger("aiida.mlip_trainer.launch")

# The plugin's tools, by their names in the builders' ``codes``: (executable, default calculation plugin).
TOOL_CODES = {
    "pacemaker": ("pacemaker", "mlip_trainer.pace_train"),
    "gracemaker": ("gracemaker", "mlip_trainer.grace_train"),
    "pace_activeset": ("pace_activeset", "mlip_trainer.pace_activeset"),
    "pace_select": ("pace_select", "mlip_trainer.pace_select"),
    "pace_yaml2yace": ("pace_yaml2yace", "core.shell"),
    "explore": ("mlip-trainer-explore", "mlip_trainer.explore"),
    "ase_oracle": ("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle"),
    "properties": ("mlip-trainer-properties", "mlip_trainer.properties"),
}
TRAINING_TOOLS = ("pacemaker", "pace_activeset", "pace_select", "pace_yaml2yace")
# What TrainingWorkChain needs with trainer="gracemaker": the GRACE-FS fit and its active set.
GRACE_TRAINING_TOOLS = ("gracemaker", "pace_activeset")
# Seconds between two polls of the job list of the `localhost` computer get_or_create_code creates.
LOCALHOST_POLL_INTERVAL = 1.0


class SelectionError(RuntimeError):
    """A selection job failed; the message carries its exit status and message."""


class TrainingError(RuntimeError):
    """A training failed; the message carries its exit status and message, ``node`` is the work chain's node (its
    outputs, e.g. the potential of a fit that failed the short-range check, are still there to inspect), or None when
    the work chain refused its inputs (e.g. a bad ``physics_baseline``) and nothing ran."""

    def __init__(self, message: str, node: orm.ProcessNode | None):
        super().__init__(message)
        self.node = node


class NotLearnedWarning(UserWarning):
    """:func:`train` finished, but the potential has not learned: its held-out errors are at least half the spread of
    the data (``metrics["learned"]`` is False). ``warnings.simplefilter("error", NotLearnedWarning)`` makes it an
    exception; ``require_learned=True`` makes the work chain fail instead (:class:`TrainingError`)."""


def create_localhost(label: str = "localhost") -> orm.Computer:
    """Store and configure a computer for this machine (``core.local`` transport, ``core.direct`` scheduler, a new
    temporary working directory), as ``verdi presto`` makes it: its job list polled at most every
    :data:`LOCALHOST_POLL_INTERVAL` seconds. With no interval the engine would list the processes back to back while
    a job runs, a core's worth of CPU taken from the fit it waits for."""
    computer = orm.Computer(
        label=label,
        hostname="localhost",
        description="this machine (created by aiida-mlip-trainer)",
        transport_type="core.local",
        scheduler_type="core.direct",
        workdir=tempfile.mkdtemp(prefix="aiida-mlip-trainer-"),
    ).store()
    computer.set_minimum_job_poll_interval(LOCALHOST_POLL_INTERVAL)
    computer.configure(safe_interval=0)
    return computer


def get_or_create_code(executable: str, plugin: str, computer: orm.Computer | None = None) -> orm.InstalledCode:
    """The ``InstalledCode`` for ``executable`` (found on PATH or next to this Python) with ``plugin`` as its
    default, on ``computer`` (default: the computer labelled ``localhost``, created with ``core.local`` if there
    is none)."""
    if computer is None:
        try:
            computer = orm.load_computer("localhost")
        except NotExistent:
            computer = create_localhost()
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


def get_or_create_codes(
    names: Iterable[str] = TRAINING_TOOLS, computer: orm.Computer | None = None
) -> dict[str, orm.InstalledCode]:
    """The codes of the plugin's tools ``names`` (keys of :data:`TOOL_CODES`; default: those ``TrainingWorkChain``
    needs, add ``"explore"`` for ``ActiveLearningWorkChain``), each by :func:`get_or_create_code`, as the ``codes``
    dictionary the builders take."""
    return {name: get_or_create_code(*TOOL_CODES[name], computer=computer) for name in names}


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


def train(
    structures: TrainingSetData | orm.SinglefileData | Sequence,
    codes: Mapping[str, orm.AbstractCode | str] | None = None,
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    trainer: str = "pacemaker",
    **inputs: Any,
) -> dict[str, orm.Data]:
    """Train a validated, deployable ACE potential here, in one call: run ``TrainingWorkChain`` from its protocol
    builder and return its outputs (``potential``, ``metrics``, ``training_set``, ``test_set``, ...).

    ``structures`` are labelled structures: a :class:`TrainingSetData`, a file node, or a list of ASE ``Atoms`` with
    calculators. ``codes`` maps ``pacemaker``, ``pace_activeset``, ``pace_yaml2yace`` and ``pace_select`` to codes
    or labels (default: each tool set up on this machine by :func:`get_or_create_code`). ``protocol`` (``fast``,
    ``moderate``, ``precise``), ``overrides`` and ``options`` are those of
    ``TrainingWorkChain.get_builder_from_protocol``; other keyword arguments (``test_set``, ``physics_baseline``,
    ``previous_potential``, ``short_range_check``, ``require_learned``) are inputs of the work chain, plain values
    accepted. ``trainer="gracemaker"`` fits a GRACE-FS potential (stress in the loss) instead of ACE; its default
    ``codes`` are ``gracemaker`` and ``pace_activeset``. Raises :class:`TrainingError` with the exit status and
    message when the training fails, and with the reason when the work chain refuses its inputs.

    A potential that has not learned (held-out energy or force errors at least half the spread of the data; see
    ``metrics["learned"]`` and ``metrics["not_learned_reasons"]``) is returned with a :class:`NotLearnedWarning`;
    with ``require_learned=True`` it raises :class:`TrainingError` (ERROR_NOT_LEARNED), the outputs still on its node.
    The ``fast`` protocol is for trying a pipeline only: its potentials are not meant to be used.
    """
    from .workflows.training import TrainingWorkChain

    if not isinstance(structures, (TrainingSetData, orm.SinglefileData)):
        structures = list(structures)
        if not structures:
            raise ValueError("no structures: give labelled structures to train on")
        structures = TrainingSetData(structures)
    if not structures.is_stored:
        structures.store()
    if codes is None:
        codes = get_or_create_codes(GRACE_TRAINING_TOOLS if trainer == "gracemaker" else TRAINING_TOOLS)
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes, structures, protocol, overrides, options=options, trainer=trainer, **_as_nodes(inputs)
    )
    # Refused inputs (a bad baseline, ...) are a TrainingError too, in one line and before any node exists.
    refused = TrainingWorkChain.spec().inputs.validate(builder._inputs(prune=True))
    if refused is not None:
        raise TrainingError(f"TrainingWorkChain refused its inputs: {' '.join(refused.message.split())}", None)
    results, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise TrainingError(f"TrainingWorkChain<{node.pk}> failed [{node.exit_status}]: {node.exit_message}", node)
    metrics = results["metrics"].get_dict()
    if metrics.get("learned") is False:
        hint = " (the 'fast' protocol is for trying a pipeline only)" if protocol == "fast" else ""
        warnings.warn(
            f"TrainingWorkChain<{node.pk}>: the potential has NOT LEARNED its data: "
            f"{'; '.join(metrics.get('not_learned_reasons', []))}{hint}; require_learned=True makes this an error",
            NotLearnedWarning,
            stacklevel=2,
        )
    return results


def _as_nodes(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values of the work chain's top-level inputs as nodes (the builder is filled before validation)."""
    converted = {}
    for key, value in inputs.items():
        if isinstance(value, orm.Data) or value is None:
            converted[key] = value
        elif isinstance(value, dict):
            converted[key] = orm.Dict(value)
        else:
            converted[key] = orm.to_aiida_type(value)
    return {key: value for key, value in converted.items() if value is not None}
