"""Oracles: any AiiDA process that turns one structure into energy, forces and optionally stress.

The labelling step (:class:`~aiida_mlip_trainer.workflows.labeling.LabelingWorkChain`) runs an oracle on each
structure of a pool. An oracle is described by plain values and nodes, so that it can be stored, validated before any
job runs, and loaded again without importing anything a node names:

``process``
    The entry-point string of the process, ``aiida.calculations:<name>`` or ``aiida.workflows:<name>`` (for example
    ``aiida.calculations:cp2k`` or ``aiida.calculations:mlip_trainer.ase_oracle``). It is loaded with AiiDA's
    plugin factories only.
``structure_port``
    The input port that gets the structure (a ``StructureData``); default ``structure``. Dots reach into
    namespaces: ``cp2k.structure`` for a work chain that exposes a calculation's inputs.
``adapter``
    The name of an entry point of the group ``mlip_trainer.oracle_adapters``: a calcfunction that takes the
    labelled ``structure`` and the outputs of the finished process (as keyword arguments by output link label; it
    receives only those its signature names, or all with ``**kwargs``) and returns the labels as an ``ArrayData``
    (see :func:`labels_array`). It raises, with a message that says why, when the output is not a usable label:
    SCF not converged, forces missing, another number of atoms. Shipped: ``ase_oracle`` and ``cp2k``.
``inputs``
    The fixed inputs of every job (a nested dict of nodes: ``code``, ``parameters``, ...).
``options``
    ``metadata.options`` of every job (resources, walltime, environment variables), for calculation oracles; a work
    chain oracle takes its options inside ``inputs``.
``structure_inputs`` (optional)
    Inputs that depend on the structure: ``{"generator": <name>, "parameters": Dict}``, where ``<name>`` is an entry
    point of the group ``mlip_trainer.oracle_inputs``: a calcfunction ``(structure, parameters)`` whose outputs
    are added to the job's inputs under their link labels (``a__b`` for the port ``a.b``). Shipped:
    ``kpoints_mesh`` (a k-point mesh of the same density for every cell:
    :func:`~aiida_mlip_trainer.formats.cp2k.kpoint_mesh`).

Labels (the adapter's ``ArrayData``): ``energy`` shape (1,) in eV, ``forces`` (N, 3) in eV/Å and, optionally,
``stress`` (6,) in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE's sign (negative under compression).

Two oracles are shipped: :func:`ase_oracle` (:class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation`,
an ASE calculator chosen by name: EMT, Lennard-Jones) and :func:`cp2k_oracle` (DFT with CP2K through aiida-cp2k).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import CalcJob, WorkChain, calcfunction
from aiida.plugins import CalculationFactory, WorkflowFactory
from aiida.plugins.entry_point import load_entry_point

from .data.labels import LabelError, labels_array, read_labels
from .formats.cp2k import (
    CP2K_DEFAULTS,
    CP2K_SETTINGS,
    Cp2kOutputError,
    check_cp2k_parameters,
    cp2k_parameters,
    kpoint_mesh,
    read_cp2k_output,
)

__all__ = (
    "ADAPTER_GROUP",
    "INPUTS_GROUP",
    "INPUT_CHECKS",
    "LabelError",
    "ase_oracle",
    "ase_oracle_labels",
    "check_input_contents",
    "cp2k_labels",
    "cp2k_oracle",
    "kpoints_mesh",
    "labels_array",
    "load_adapter",
    "load_oracle_process",
    "read_labels",
    "validate_oracle",
)

ADAPTER_GROUP = "mlip_trainer.oracle_adapters"
INPUTS_GROUP = "mlip_trainer.oracle_inputs"
# Below 0.05 /Å (2π included) a 2 Å cell gets 63 k-points per axis: no single point of a labelling finishes.
MIN_KPOINT_DISTANCE = 0.05
_PROCESS_FACTORIES = {"aiida.calculations": CalculationFactory, "aiida.workflows": WorkflowFactory}
# Inputs that become another program's input file, checked by content before any job (the same rule for a Dict made
# in Python and one read from the database or an archive): process entry point -> {input port: check}. A check takes
# the plain dict and raises ValueError. Subclasses of these processes get the same checks.
INPUT_CHECKS: dict[str, dict[str, Callable[[dict], None]]] = {
    "aiida.calculations:cp2k": {"parameters": check_cp2k_parameters},
    "aiida.workflows:cp2k.base": {"cp2k.parameters": check_cp2k_parameters},
}


# ------------------------------------------------------------------------------------------------------- adapters
@calcfunction
def ase_oracle_labels(structure: orm.StructureData, labels: orm.ArrayData) -> orm.ArrayData:
    """Adapter of :class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation`: its ``labels``,
    checked against the structure."""
    energy, forces, stress = read_labels(labels)
    return labels_array(energy, forces, stress, natoms=len(structure.sites))


@calcfunction
def cp2k_labels(structure: orm.StructureData, retrieved: orm.FolderData) -> orm.ArrayData:
    """Adapter of aiida-cp2k's ``Cp2kCalculation`` (``RUN_TYPE ENERGY_FORCE`` with the forces printed, and the stress
    tensor for periodic cells): energy, forces and stress read from CP2K's main output by
    :func:`~aiida_mlip_trainer.formats.cp2k.read_cp2k_output`. aiida-cp2k's own parsers give the energy only, and
    CP2K 2023 finishes with exit status 0 after an SCF that did not converge (a warning): here that is a failed
    label."""
    # The output file's name is an option of the calculation that retrieved it (aiida-cp2k's default: aiida.out).
    creator = retrieved.creator
    filename = creator.get_option("output_filename") if creator is not None else None
    filename = filename or "aiida.out"
    try:
        text = retrieved.base.repository.get_object_content(filename, mode="r")
    except FileNotFoundError as exc:
        raise LabelError(f"the retrieved files have no {filename}") from exc
    try:
        result = read_cp2k_output(text, natoms=len(structure.sites))
    except Cp2kOutputError as exc:
        raise LabelError(f"CP2K: {exc}") from exc
    stress = result["stress"] if all(structure.pbc) else None
    return labels_array(result["energy"], result["forces"], stress, natoms=len(structure.sites))


# ------------------------------------------------------------------------------------------- structure inputs
@calcfunction
def kpoints_mesh(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """Per-structure input generator: a Monkhorst-Pack mesh with ``distance`` (1/Å, 2π included; default 0.3)
    between k-points for this cell, returned under ``port`` (default ``kpoints``). A 1×1×1 mesh returns nothing:
    the calculation then runs at Γ alone, which for CP2K is the cheaper Γ-point code."""
    settings = parameters.get_dict()
    distance = settings.get("distance", CP2K_DEFAULTS["kpoint_distance"])
    mesh = kpoint_mesh(structure.cell, structure.pbc, distance)
    if mesh == [1, 1, 1]:
        return {}
    kpoints = orm.KpointsData()
    kpoints.set_cell_from_structure(structure)
    kpoints.set_kpoints_mesh(mesh)
    return {settings.get("port", "kpoints"): kpoints}


# -------------------------------------------------------------------------------------------------- the contract
def load_oracle_process(process: str):
    """The process class of an entry-point string ``aiida.calculations:<name>`` or ``aiida.workflows:<name>``."""
    group, _, name = str(process).partition(":")
    if group not in _PROCESS_FACTORIES or not name:
        raise ValueError(
            f"oracle process {process!r}: give an entry point such as 'aiida.calculations:cp2k' or "
            "'aiida.workflows:<name>' (see `verdi plugin list aiida.calculations`)"
        )
    try:
        process_class = _PROCESS_FACTORIES[group](name)
    except Exception as exc:  # MissingEntryPointError, LoadingEntryPointError
        raise ValueError(f"oracle process {process!r} cannot be loaded: {exc}") from exc
    if not (isinstance(process_class, type) and issubclass(process_class, CalcJob | WorkChain)):
        raise ValueError(f"oracle process {process!r} is not a CalcJob or WorkChain")
    return process_class


def load_adapter(name: str):
    """The adapter calcfunction registered as ``name`` in the group ``mlip_trainer.oracle_adapters``."""
    return _load_process_function(ADAPTER_GROUP, name, "adapter")


def load_input_generator(name: str):
    """The per-structure input generator registered as ``name`` in the group ``mlip_trainer.oracle_inputs``."""
    return _load_process_function(INPUTS_GROUP, name, "structure_inputs generator")


def _load_process_function(group: str, name: str, role: str):
    try:
        function = load_entry_point(group, str(name))
    except Exception as exc:  # MissingEntryPointError, MultipleEntryPointError, LoadingEntryPointError
        from importlib.metadata import entry_points

        known = sorted(entry.name for entry in entry_points(group=group))
        raise ValueError(f"unknown oracle {role} {name!r}: registered in {group} are {known}") from exc
    if not getattr(function, "is_process_function", False):
        raise ValueError(f"the oracle {role} {name!r} is not a calcfunction")
    if "structure" not in function.spec().inputs:
        raise ValueError(f"the oracle {role} {name!r} takes no `structure` argument")
    return function


def port_at(process_class, path: str):
    """The input port of ``process_class`` at a dotted ``path``, or None."""
    port = process_class.spec().inputs
    for part in path.split("."):
        if not hasattr(port, "get") or part not in port:
            return None
        port = port[part]
    return port


def nest(path: str, value: Any) -> dict:
    """``{"a": {"b": value}}`` for ``"a.b"``."""
    result: Any = value
    for part in reversed(path.split(".")):
        result = {part: result}
    return result


def merge_inputs(base: Mapping, extra: Mapping) -> dict:
    """``base`` with ``extra`` merged in, namespaces merged recursively (a new dict; nodes are not copied)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_inputs(merged[key], value)
        else:
            merged[key] = value
    return merged


def job_inputs(
    process_class,
    inputs: Mapping,
    structure_port: str,
    structure,
    options: Mapping | None,
    extra: Mapping | None = None,
) -> dict:
    """The inputs of one oracle job: the fixed ``inputs``, the per-structure ``extra`` (link labels, ``__`` for
    namespaces), the structure at its port and, for a calculation, ``metadata.options``."""
    result = merge_inputs(inputs, {})
    for label, node in (extra or {}).items():
        result = merge_inputs(result, nest(label.replace("__", "."), node))
    result = merge_inputs(result, nest(structure_port, structure))
    if options and issubclass(process_class, CalcJob):
        result = merge_inputs(result, {"metadata": {"options": dict(options)}})
    return result


def validate_oracle(
    process: str,
    structure_port: str,
    adapter: str,
    inputs: Mapping,
    options: Mapping | None = None,
    generator: str | None = None,
) -> str | None:
    """Check an oracle description before any job runs: the process and adapter load, the port takes a
    ``StructureData``, and the fixed inputs and options fit the process's input ports. None, or a one-line message."""
    try:
        process_class = load_oracle_process(process)
        load_adapter(adapter)
        if generator is not None:
            load_input_generator(generator)
    except ValueError as exc:
        return str(exc)
    port = port_at(process_class, structure_port)
    if port is None or not hasattr(port, "valid_type"):
        return f"oracle process {process!r} has no input port {structure_port!r}: set structure_port"
    valid = port.valid_type
    if valid is not None and not issubclass(orm.StructureData, valid if isinstance(valid, tuple) else (valid,)):
        return f"the input port {structure_port!r} of {process!r} does not take a StructureData (takes {valid})"
    if options and not issubclass(process_class, CalcJob):
        return f"{process!r} is a work chain: give its options inside inputs, not as oracle options"
    error = check_input_contents(process_class, inputs)
    if error is not None:
        return error
    # A stand-in structure (never stored) so that the whole set of inputs is checked against the process's ports.
    placeholder = orm.StructureData(cell=np.eye(3).tolist())
    placeholder.append_atom(position=(0.0, 0.0, 0.0), symbols="H")
    candidate = _as_dicts(job_inputs(process_class, inputs, structure_port, placeholder, options))
    # Defaults filled in as a launch would (metadata.options.resources of a calculation, ...), then validated.
    spec_inputs = process_class.spec().inputs
    error = spec_inputs.validate(spec_inputs.pre_process(candidate))
    if error is not None:
        return f"the oracle inputs do not fit {process!r}: {error}"
    return None


def check_input_contents(process_class, inputs: Mapping) -> str | None:
    """The checks of :data:`INPUT_CHECKS` that apply to ``process_class`` (its entry point's or a parent's), run on
    the fixed ``inputs``: None, or a one-line message naming the input and the offending path. Never raises."""
    for entry_point, checks in INPUT_CHECKS.items():
        group, _, name = entry_point.partition(":")
        try:
            checked_class = _PROCESS_FACTORIES[group](name)
        except Exception:  # the plugin is not installed: no oracle of it can run
            continue
        if not (isinstance(process_class, type) and issubclass(process_class, checked_class)):
            continue
        for port, check in checks.items():
            value: Any = inputs
            for part in port.split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            if isinstance(value, orm.Dict):
                value = value.get_dict()
            elif isinstance(value, Mapping):
                value = _as_dicts(value)
            else:
                continue  # absent, or not a Dict: the check against the process's ports says so
            try:
                check(value)
            except Exception as exc:  # a validator returns a message, whatever the content
                return f"oracle input {port!r} of {entry_point!r}: {exc}"
    return None


def _as_dicts(mapping: Mapping) -> dict:
    """Nested mappings (frozen ones included) as plain dicts; the values that are not mappings are kept."""
    return {key: _as_dicts(value) if isinstance(value, Mapping) else value for key, value in mapping.items()}


def adapter_arguments(adapter, structure, outputs: Mapping[str, orm.Data]) -> dict:
    """The keyword arguments an adapter gets: ``structure`` and the outputs its signature names (all outputs when it
    takes ``**kwargs``)."""
    parameters = inspect.signature(adapter).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    chosen = {label: node for label, node in outputs.items() if takes_all or label in parameters}
    chosen.pop("structure", None)
    return {"structure": structure, **chosen}


# --------------------------------------------------------------------------------------------- shipped oracles
def ase_oracle(
    code: orm.AbstractCode, calculator: str, parameters: dict | None = None, options: dict | None = None
) -> dict:
    """An oracle description for :class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation`: the
    ASE calculator registered as ``calculator`` (``emt``, ``lj``, ...) with JSON keyword ``parameters``, run by
    ``code`` (the ``mlip-trainer-ase-oracle`` executable on some computer)."""
    inputs: dict = {"code": code, "calculator": orm.Str(calculator)}
    if parameters:
        inputs["parameters"] = orm.Dict(parameters)
    description = {
        "process": "aiida.calculations:mlip_trainer.ase_oracle",
        "structure_port": "structure",
        "adapter": "ase_oracle",
        "inputs": inputs,
    }
    if options:
        description["options"] = dict(options)
    return description


def cp2k_oracle(
    code: orm.AbstractCode,
    elements: Sequence[str],
    *,
    kpoint_distance: float | None = CP2K_DEFAULTS["kpoint_distance"],
    options: dict | None = None,
    **settings,
) -> dict:
    """A ready oracle description for DFT with CP2K (aiida-cp2k's ``Cp2kCalculation``, adapter ``cp2k``).

    Pass the ``code`` (``cp2k.psmp`` on some computer, plugin ``cp2k``) and the ``elements`` of the structures to
    label. The settings are those of :func:`aiida_mlip_trainer.formats.cp2k.cp2k_parameters` (PBE, GTH pseudopotentials,
    DZVP-MOLOPT-SR-GTH, 150/30 Ry, Fermi-Dirac smearing at 1000 K; measured on silicon), each overridable by keyword
    (``cutoff=300``, ...). Every structure gets its own k-point mesh with ``kpoint_distance`` (1/Å) between points
    (None: Γ only, for large cells or molecules). ``options`` update the job options: by default one MPI-less
    process with ``OMP_NUM_THREADS=1`` and one hour of walltime.

    An unknown setting, a string for ``elements``, a name that is not one plain token (a newline, ``@``, ``&``, ...)
    or a number out of range is refused with a one-line ValueError; ``kpoint_distance`` must be at least 0.05 /Å.
    """
    unknown = sorted(set(settings) - set(CP2K_SETTINGS))
    if unknown:
        known = ", ".join(("elements", "kpoint_distance", "options", *CP2K_SETTINGS))
        raise ValueError(f"unknown cp2k setting(s) {', '.join(map(str, unknown))}; known: {known}")
    if kpoint_distance is not None and (
        isinstance(kpoint_distance, bool)
        or not isinstance(kpoint_distance, int | float)
        or not math.isfinite(kpoint_distance)
        or kpoint_distance < MIN_KPOINT_DISTANCE
    ):
        raise ValueError(
            f"cp2k kpoint_distance must be a number of at least {MIN_KPOINT_DISTANCE} /Å (or None: Γ only), "
            f"got {kpoint_distance!r}"
        )
    parameters = cp2k_parameters(elements, **settings)
    job_options = {
        "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1},
        # Debian's cp2k.psmp runs without mpirun for one process (OpenMPI refuses to start as root without a flag).
        "withmpi": False,
        "max_wallclock_seconds": 3600,
        "environment_variables": {"OMP_NUM_THREADS": "1"},
    }
    job_options.update(options or {})
    description: dict = {
        "process": "aiida.calculations:cp2k",
        "structure_port": "structure",
        "adapter": "cp2k",
        "inputs": {"code": code, "parameters": orm.Dict(parameters)},
        "options": job_options,
    }
    if kpoint_distance is not None:
        description["structure_inputs"] = {
            "generator": "kpoints_mesh",
            "parameters": {"distance": float(kpoint_distance), "port": "kpoints"},
        }
    return description
