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
    (see :func:`aiida_mlip_trainer.data.labels.labels_array`). It raises, with a message that says why, when the
    output is not a usable label: SCF not converged, forces missing, another number of atoms. Shipped:
    ``ase_oracle`` and ``cp2k``.
``inputs``
    The fixed inputs of every job (a nested dict of nodes: ``code``, ``parameters``, ...).
``options``
    ``metadata.options`` of every job: of the calculation itself, or, for a work chain, of the calculation it
    exposes in the namespace of the structure port (``pw.metadata.options`` for ``structure_port`` ``pw.structure``
    of aiida-quantumespresso's ``PwBaseWorkChain``). A description is data (stored, perhaps from someone else's
    archive), so its options are scheduler
    requests only: ``resources``, ``max_wallclock_seconds``, ``max_memory_kb``, ``queue_name``, ``account``, ``qos``,
    ``priority``, ``withmpi``, ``rerunnable`` and ``environment_variables`` limited to thread counts
    (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ...) with positive integer values.
    Job-script text (``prepend_text``, ``append_text``, ``custom_scheduler_commands``, ``mpirun_extra_params``, other
    environment variables, file names) is given in Python only, to ``LabelingWorkChain``'s ``oracle_job_options``
    (a plain dict, never stored, merged into every oracle job's ``metadata.options``)::

        builder = LabelingWorkChain.get_builder()
        builder.oracle = cp2k_oracle(code, ["Si"])
        builder.oracle_job_options = {"prepend_text": "module load cp2k"}

``structure_inputs`` (optional)
    Inputs that depend on the structure: ``{"generator": <name>, "parameters": Dict}``, where ``<name>`` is an entry
    point of the group ``mlip_trainer.oracle_inputs``: a calcfunction ``(structure, parameters)`` that returns one
    node, of the type its ``output_type`` attribute declares, under the link label ``parameters["port"]`` (default:
    its ``default_port`` attribute; ``a__b`` for the port ``a.b``), added to the job's inputs; its optional
    ``check_parameters(parameters)`` returns a message for unusable parameters. The port must be a free input port
    of the process (not the structure's, not a fixed input) that takes that type: checked before any job. Shipped:
    ``kpoints_mesh`` (a k-point mesh of the same density for every cell:
    :func:`~aiida_mlip_trainer.formats.cp2k.kpoint_mesh`).

The fixed ``inputs`` are data too: an input named ``settings`` (aiida-cp2k's ``settings`` Dict, ...) may only name
extra files to retrieve (``additional_retrieve_list``, ``additional_retrieve_temporary_list``), each a relative
path inside the job folder; ``cmdline`` is refused, and so is a ``RemoteData`` (a folder of the computer linked into
every job). The process may be any calculation or work chain that labels a structure, but not a command runner
(aiida-core's own processes, aiida-shell's ``core.shell``) nor a step of this plugin other than the ASE oracle.

Labels (the adapter's ``ArrayData``): ``energy`` shape (1,) in eV, ``forces`` (N, 3) in eV/Å and, optionally,
``stress`` (6,) in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE's sign (negative under compression).

Three oracles are shipped: :func:`ase_oracle`
(:class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation`, an ASE calculator chosen by name: EMT,
Lennard-Jones), :func:`cp2k_oracle` (DFT with CP2K through aiida-cp2k) and :func:`qe_oracle` (DFT with Quantum
ESPRESSO through aiida-quantumespresso's ``PwBaseWorkChain``).

A file among the fixed inputs (a ``SinglefileData``, such as the ``UpfData`` pseudopotentials of ``pw.x``, which
aiida-quantumespresso copies and names in the input file by their ``filename``) must have a plain file name.
"""

from __future__ import annotations

import inspect
import pathlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import CalcJob, WorkChain
from aiida.plugins import CalculationFactory, WorkflowFactory
from aiida.plugins.entry_point import load_entry_point

from .calculations.job_options import check_data_options, check_environment_variable_names
from .calculations.untrusted import walk_inputs
from .formats.cp2k import (
    CP2K_DEFAULTS,
    CP2K_SETTINGS,
    MIN_KPOINT_DISTANCE,
    check_cp2k_elements,
    check_cp2k_parameters,
    cp2k_parameters,
    usable_kpoint_distance,
)
from .formats.quantumespresso import PSEUDO_FOLDER, PSEUDOPOTENTIALS, check_pw_parameters
from .names import UnsafeNameError, check_file_stem

__all__ = (
    "ADAPTER_GROUP",
    "INPUTS_GROUP",
    "INPUT_CHECKS",
    "ase_oracle",
    "check_input_contents",
    "check_oracle_inputs",
    "check_oracle_options",
    "check_oracle_process",
    "check_oracle_settings",
    "check_structure_inputs",
    "cp2k_oracle",
    "load_adapter",
    "qe_oracle",
    "qe_pseudo_family",
    "load_oracle_process",
    "validate_oracle",
)

ADAPTER_GROUP = "mlip_trainer.oracle_adapters"
INPUTS_GROUP = "mlip_trainer.oracle_inputs"
_PROCESS_FACTORIES = {"aiida.calculations": CalculationFactory, "aiida.workflows": WorkflowFactory}
# Inputs that become another program's input file, checked by content before any job (the same rule for a Dict made
# in Python and one read from the database or an archive): process entry point -> {input port: check}. A check takes
# the plain dict and raises ValueError. Subclasses of these processes get the same checks.
INPUT_CHECKS: dict[str, dict[str, Callable[[dict], None]]] = {
    "aiida.calculations:cp2k": {"parameters": check_cp2k_parameters},
    "aiida.workflows:cp2k.base": {"cp2k.parameters": check_cp2k_parameters},
    "aiida.calculations:quantumespresso.pw": {"parameters": check_pw_parameters},
    "aiida.workflows:quantumespresso.pw.base": {"pw.parameters": check_pw_parameters},
}
# Where to set what a stored oracle description may not carry: typed in Python, never stored as an input node.
ORACLE_JOB_OPTIONS_HINT = (
    "in Python with LabelingWorkChain's oracle_job_options (builder.oracle_job_options, or "
    "builder.labeling.oracle_job_options of ActiveLearningWorkChain)"
)
# Keys of an oracle's `settings` Dict taken from a description: extra files to retrieve, inside the job folder.
SETTINGS_KEYS = ("additional_retrieve_list", "additional_retrieve_temporary_list")
# Processes that run a command line, a template or file copies named by their inputs (aiida-core's own
# calculations and work flows, aiida-shell's ShellJob): an oracle description would drive them with data.
_UNSAFE_PROCESS_MODULES = ("aiida.calculations", "aiida.workflows", "aiida_shell")
# This plugin's processes: only the ASE oracle labels a structure.
_PLUGIN_ORACLES = ("aiida_mlip_trainer.calculations.ase_oracle",)
_LINK_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


def options_port(process_class, structure_port: str) -> str | None:
    """Where an oracle job's ``metadata.options`` go: ``metadata.options`` of a calculation, or of the calculation a
    work chain exposes in the namespace of the structure port (``pw.metadata.options`` for ``pw.structure``); None
    when the work chain has none there."""
    if issubclass(process_class, CalcJob):
        return "metadata.options"
    namespace = structure_port.rpartition(".")[0]
    path = f"{namespace}.metadata.options" if namespace else "metadata.options"
    port = port_at(process_class, path)
    return path if namespace and port is not None and "resources" in port else None


def job_inputs(
    process_class,
    inputs: Mapping,
    structure_port: str,
    structure,
    options: Mapping | None,
    extra: Mapping | None = None,
) -> dict:
    """The inputs of one oracle job: the fixed ``inputs``, the per-structure ``extra`` (link labels, ``__`` for
    namespaces), the structure at its port and the ``options`` at :func:`options_port`."""
    result = merge_inputs(inputs, {})
    for label, node in (extra or {}).items():
        result = merge_inputs(result, nest(label.replace("__", "."), node))
    result = merge_inputs(result, nest(structure_port, structure))
    path = options_port(process_class, structure_port)
    if options and path is not None:
        result = merge_inputs(result, nest(path, dict(options)))
    return result


def validate_oracle(
    process: str,
    structure_port: str,
    adapter: str,
    inputs: Mapping,
    options: Mapping | None = None,
    generator: str | None = None,
    generator_parameters: Mapping | None = None,
    job_options: Mapping | None = None,
    structure: orm.StructureData | None = None,
) -> str | None:
    """Check an oracle description before any job runs: the process is one an oracle may be (not a command runner
    such as ``core.shell``) and it and the adapter load, the port takes a ``StructureData``, the ``options`` (from
    the description: data) hold only scheduler requests, the ``settings`` among the ``inputs`` retrieve only files
    inside the job folder, the per-structure ``generator`` (with its ``generator_parameters``) fills a free port of
    the right type, and the fixed inputs, the options and the Python-only ``job_options`` fit the process's input
    ports, with ``structure`` (one of those to label; default: a one-atom stand-in) at the structure port. None, or
    a one-line message; it never raises."""
    try:
        return _validate_oracle(
            process, structure_port, adapter, inputs, options, generator, generator_parameters, job_options, structure
        )
    except Exception as exc:  # a validator answers with a message, whatever the description holds
        return f"the oracle description cannot be used: {type(exc).__name__}: {exc}"


def _validate_oracle(  # noqa: PLR0911 - one clear message per mistake
    process, structure_port, adapter, inputs, options, generator, generator_parameters, job_options, structure
) -> str | None:
    try:
        process_class = load_oracle_process(process)
        load_adapter(adapter)
        generator_function = load_input_generator(generator) if generator is not None else None
    except ValueError as exc:
        return str(exc)
    message = check_oracle_process(process_class, process)
    if message is not None:
        return message
    if not isinstance(structure_port, str) or not structure_port:
        return f"structure_port must be the name of an input port, got {structure_port!r}"
    port = port_at(process_class, structure_port)
    if port is None or not hasattr(port, "valid_type"):
        return f"oracle process {process!r} has no input port {structure_port!r}: set structure_port"
    valid = port.valid_type
    if valid is not None and not issubclass(orm.StructureData, valid if isinstance(valid, tuple) else (valid,)):
        return f"the input port {structure_port!r} of {process!r} does not take a StructureData (takes {valid})"
    for check in (
        lambda: check_oracle_options(process_class, process, options, job_options, structure_port),
        lambda: check_oracle_settings(inputs),
        lambda: check_oracle_inputs(inputs),
        lambda: check_input_contents(process_class, inputs),
        lambda: check_structure_inputs(
            process_class, process, inputs, structure_port, generator_function, generator_parameters
        ),
    ):
        message = check()
        if message is not None:
            return message
    # A structure to label, or a stand-in (never stored), so that the whole set of inputs is checked against the
    # process's ports (aiida-quantumespresso compares the pseudopotentials with the structure's kinds).
    placeholder = structure
    if placeholder is None:
        placeholder = orm.StructureData(cell=np.eye(3).tolist())
        placeholder.append_atom(position=(0.0, 0.0, 0.0), symbols="H")
    candidate = _as_dicts(
        job_inputs(process_class, inputs, structure_port, placeholder, merge_inputs(options or {}, job_options or {}))
    )
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


def check_oracle_process(process_class: type, process: str) -> str | None:
    """None when ``process_class`` may be driven as an oracle from a description, else why not: aiida-core's own
    processes (arithmetic, template replacer, file transfer) and aiida-shell's ``core.shell`` run a command line, a
    template or file copies named by their inputs, and this plugin's processes other than the ASE oracle are steps
    of the training, not oracles."""
    for cls in process_class.__mro__:
        module = getattr(cls, "__module__", "") or ""
        if module.startswith(_UNSAFE_PROCESS_MODULES):
            return (
                f"oracle process {process!r} ({cls.__name__}) runs a command, a template or a file copy given by its "
                "inputs: it is not driven as an oracle; wrap the calculation in a CalcJob plugin of its own"
            )
    module = process_class.__module__ or ""
    if module.startswith("aiida_mlip_trainer.") and module not in _PLUGIN_ORACLES:
        return f"oracle process {process!r} is a step of aiida-mlip-trainer, not an oracle (it labels no structure)"
    return None


def check_oracle_options(
    process_class: type,
    process: str,
    options: Mapping | None,
    job_options: Mapping | None,
    structure_port: str = "structure",
) -> str | None:
    """None when the job options of an oracle are allowed, else a one-line message.

    ``options`` come from the description (``oracle.options``, a stored ``Dict``: data): only the scheduler requests
    of :data:`~aiida_mlip_trainer.calculations.job_options.DATA_OPTIONS`, the environment limited to thread counts.
    ``job_options`` were typed in Python (``oracle_job_options``, never stored): any ``metadata.options`` of the
    process, job-script text included, with environment variable names that are identifiers."""
    if (options or job_options) and options_port(process_class, structure_port) is None:
        return (
            f"{process!r} is a work chain without a calculation's metadata.options next to its structure port "
            f"{structure_port!r}: it takes no oracle options"
        )
    message = check_data_options(options, "oracle.options", ORACLE_JOB_OPTIONS_HINT)
    if message is not None:
        return message
    if job_options is not None:
        if not isinstance(job_options, Mapping):
            return f"oracle_job_options must be a mapping of metadata.options, got {type(job_options).__name__}"
        if "environment_variables" in job_options:
            message = check_environment_variable_names(job_options["environment_variables"])
            if message is not None:
                return f"oracle_job_options: {message}"
    return None


def _inside_job_folder(entry: Any) -> bool:
    """A relative path that stays inside the job folder: no absolute path, no ``~``, no ``..``, no control
    characters."""
    if not isinstance(entry, str) or not entry.strip() or any(ord(char) < 32 for char in entry):
        return False
    if entry.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:", entry):
        return False
    return ".." not in pathlib.PurePosixPath(entry.replace("\\", "/")).parts


def check_oracle_settings(inputs: Mapping) -> str | None:
    """None when every input named ``settings`` among the oracle's fixed ``inputs`` is a ``Dict`` with only the keys
    of :data:`SETTINGS_KEYS` (extra files to retrieve), each entry a path inside the job folder (a name or a
    ``[remote, local, depth]`` triple of aiida's retrieve lists); else a one-line message. ``cmdline`` (words
    added to the code's command line) is refused: an oracle description is data."""
    for path, value in walk_inputs(inputs):
        if path.rsplit(".", 1)[-1] != "settings":
            continue
        if not isinstance(value, orm.Dict):
            return f"oracle input {path} must be a Dict, got {type(value).__name__}"
        for key, entries in value.get_dict().items():
            if key == "cmdline":
                return (
                    f"oracle input {path}: `cmdline` is command-line text and is not taken from an oracle "
                    "description; give the code its arguments where the code is set up"
                )
            if key not in SETTINGS_KEYS:
                return f"oracle input {path}: key {key!r} is not taken from an oracle description; allowed: " + (
                    ", ".join(SETTINGS_KEYS)
                )
            if not isinstance(entries, list | tuple):
                return f"oracle input {path}: {key} must be a list of file names"
            for entry in entries:
                triple = isinstance(entry, list | tuple) and len(entry) == 3
                paths = entry[:2] if triple else [entry]
                depth_ok = not triple or (
                    isinstance(entry[2], int) and not isinstance(entry[2], bool) and entry[2] >= 0
                )
                if not depth_ok or not all(_inside_job_folder(item) for item in paths):
                    return (
                        f"oracle input {path}: {key} entry {entry!r} is not a relative path inside the job folder "
                        "(no absolute path, no ..)"
                    )
    return None


def check_oracle_inputs(inputs: Mapping) -> str | None:
    """None when the fixed inputs of an oracle carry no job-script text in disguise, else a one-line message: a
    ``RemoteData`` would link a folder of the computer into every job, and a ``Dict`` named ``options`` (the job
    options of a work chain that takes them as a node) gets the rule of ``oracle.options``."""
    for path, value in walk_inputs(inputs):
        if isinstance(value, orm.SinglefileData):
            try:  # pw.x reads it by this name from its input file; copied under it into the job folder
                check_file_stem(value.filename, f"oracle input {path}: the file name")
            except UnsafeNameError as exc:
                return str(exc)
        if isinstance(value, orm.RemoteData):
            return (
                f"oracle input {path} is a RemoteData: a folder of the computer is not linked into every oracle job "
                "from a description"
            )
        if path.rsplit(".", 1)[-1] == "options" and isinstance(value, orm.Dict):
            message = check_data_options(value.get_dict(), f"oracle input {path}", ORACLE_JOB_OPTIONS_HINT)
            if message is not None:
                return message
    return None


def check_structure_inputs(
    process_class: type,
    process: str,
    inputs: Mapping,
    structure_port: str,
    generator: Any,
    parameters: Mapping | None,
) -> str | None:
    """None when the per-structure input ``generator`` (a calcfunction of ``mlip_trainer.oracle_inputs``; None: no
    generator) can fill its port, else a one-line message: its ``parameters`` pass its own check, and the port it
    fills (``parameters["port"]``, or its ``default_port``; ``a__b`` for ``a.b``) is an input port of the process,
    not the structure's, not one of the fixed inputs nor ``metadata``, that takes the generator's
    ``output_type``."""
    if generator is None:
        return None
    parameters = dict(parameters or {})
    name = getattr(generator, "__name__", "the generator")
    output_type = getattr(generator, "output_type", None)
    if not (isinstance(output_type, type) and issubclass(output_type, orm.Data)):
        return f"the structure_inputs generator {name!r} declares no output_type: it cannot be checked before a job"
    check = getattr(generator, "check_parameters", None)
    if check is not None:
        message = check(parameters)
        if message is not None:
            return f"oracle.structure_inputs.parameters: {message}"
    label = parameters.get("port", getattr(generator, "default_port", None))
    if not isinstance(label, str) or not all(_LINK_LABEL.match(part) for part in label.split("__")):
        return f"oracle.structure_inputs: port {label!r} must be a port name (a__b for the port a.b)"
    path = label.replace("__", ".")
    fixed = [key for key, _ in walk_inputs(inputs)]
    clashes = [
        used
        for used in (structure_port, *fixed)
        if used == path or used.startswith(f"{path}.") or path.startswith(f"{used}.")
    ]
    if path.split(".")[0] == "metadata" or clashes:
        return (
            f"oracle.structure_inputs: the generator's port {path!r} is taken "
            f"({clashes[0] if clashes else 'metadata'}): give it a port of its own"
        )
    port = port_at(process_class, path)
    if port is None or not hasattr(port, "valid_type") or hasattr(port, "get"):
        return f"oracle.structure_inputs: {process!r} has no input port {path!r} for the generator's output"
    valid = port.valid_type
    if valid is not None and not issubclass(output_type, valid if isinstance(valid, tuple) else (valid,)):
        return (
            f"oracle.structure_inputs: the port {path!r} of {process!r} takes {valid}, not the generator's "
            f"{output_type.__name__}"
        )
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
    ``code`` (the ``mlip-trainer-ase-oracle`` executable on some computer). ``options``: scheduler requests only
    (see the module's ``options``; job-script text goes into ``LabelingWorkChain``'s ``oracle_job_options``)."""
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
    process with ``OMP_NUM_THREADS=1`` and one hour of walltime. They are scheduler requests only (the description
    is stored as data; see the module's ``options``): job-script text such as ``prepend_text`` goes into
    ``LabelingWorkChain``'s ``oracle_job_options`` in Python.

    An unknown setting, a string for ``elements``, a name that is not one plain token (a newline, ``@``, ``&``, ...)
    or a number out of range is refused with a one-line ValueError; ``kpoint_distance`` must be at least 0.05 /Å.
    """
    unknown = sorted(set(settings) - set(CP2K_SETTINGS))
    if unknown:
        known = ", ".join(("elements", "kpoint_distance", "options", *CP2K_SETTINGS))
        raise ValueError(f"unknown cp2k setting(s) {', '.join(map(str, unknown))}; known: {known}")
    if kpoint_distance is not None and not usable_kpoint_distance(kpoint_distance):
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


# The aiida-pseudo family of the QE oracle: the UPF files of formats.quantumespresso.PSEUDOPOTENTIALS, from the
# folder Debian's quantum-espresso-data installs.
QE_PSEUDO_FAMILY = "mlip-trainer/quantum-espresso-data/PBE"
# Settings of the QE oracle on top of aiida-quantumespresso's protocol: a tight SCF (labels are differences of
# energies and forces: 1e-10 Ry per atom) and one pw.x process (Debian's pw.x runs without mpirun for one process;
# OpenMPI refuses to start as root without a flag).
QE_OVERRIDES = {"meta_parameters": {"conv_thr_per_atom": 1.0e-10}}
QE_OPTIONS = {
    "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1},
    "withmpi": False,
    "max_wallclock_seconds": 3600,
    "environment_variables": {"OMP_NUM_THREADS": "1"},
}


def qe_pseudo_family(label: str = QE_PSEUDO_FAMILY, folder: str = PSEUDO_FOLDER):
    """The aiida-pseudo ``CutoffsPseudoPotentialFamily`` ``label``, installed on first use from the files of
    :data:`~aiida_mlip_trainer.formats.quantumespresso.PSEUDOPOTENTIALS` in ``folder`` (Debian's
    ``quantum-espresso-data``: ``/usr/share/espresso/pseudo``), with their recommended cutoffs (Ry) as the ``normal``
    stringency. Raises FileNotFoundError when a file is missing (``scripts/qe.sh`` installs them)."""
    import shutil
    import tempfile

    from aiida.common.exceptions import NotExistent
    from aiida.plugins import DataFactory
    from aiida_pseudo.groups.family import CutoffsPseudoPotentialFamily

    try:
        return CutoffsPseudoPotentialFamily.collection.get(label=label)
    except NotExistent:
        pass
    source = pathlib.Path(folder)
    missing = [name for name, _, _ in PSEUDOPOTENTIALS.values() if not (source / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"no {', '.join(missing)} in {source}: scripts/qe.sh installs Debian's quantum-espresso-data as root"
        )
    with tempfile.TemporaryDirectory() as chosen:
        for name, _, _ in PSEUDOPOTENTIALS.values():
            shutil.copy(source / name, pathlib.Path(chosen) / name)
        family = CutoffsPseudoPotentialFamily.create_from_folder(
            pathlib.Path(chosen), label, description=f"PBE UPF files of {source}", pseudo_type=DataFactory("pseudo.upf")
        )
    cutoffs = {element: {"cutoff_wfc": wfc, "cutoff_rho": rho} for element, (_, wfc, rho) in PSEUDOPOTENTIALS.items()}
    family.set_cutoffs(cutoffs, "normal", unit="Ry")
    return family


def qe_oracle(
    code: orm.AbstractCode,
    elements: Sequence[str],
    *,
    protocol: str = "fast",
    overrides: Mapping | None = None,
    options: dict | None = None,
) -> dict:
    """A ready oracle description for DFT with Quantum ESPRESSO: aiida-quantumespresso's ``PwBaseWorkChain``
    (restarts included), adapter ``quantumespresso``.

    Pass the ``code`` (``pw.x`` on some computer, plugin ``quantumespresso.pw``) and the ``elements`` of the
    structures (every structure of the pool must hold all of them: pw.x takes one pseudopotential per kind present).
    The inputs are those of ``PwBaseWorkChain.get_builder_from_protocol`` with the ``protocol`` (``fast``,
    ``balanced``, ``stringent``), the pseudopotential family of :func:`qe_pseudo_family` (PBE, from
    ``quantum-espresso-data``) with its cutoffs, :data:`QE_OVERRIDES`, then your ``overrides`` (that method's format:
    ``{"kpoints_distance": 0.5, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 30, "ecutrho": 120}}}}``). Forces and
    stress are on (``tprnfor``, ``tstress``), and every structure gets a k-point mesh of the protocol's
    ``kpoints_distance``. The SCF threshold is the protocol's per atom times the number of ``elements``.
    ``options`` update :data:`QE_OPTIONS` (one pw.x process without MPI, one thread, an hour): scheduler requests
    only (the description is stored as data); job-script text goes into ``LabelingWorkChain``'s
    ``oracle_job_options``.

    The parameters are checked by :func:`~aiida_mlip_trainer.formats.quantumespresso.check_pw_parameters` (no file
    or folder names, single point only); a string for ``elements`` or an element without a pseudopotential in the
    family is refused with a ValueError.
    """
    from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain

    try:
        elements = check_cp2k_elements(elements)
    except ValueError as exc:
        raise ValueError(str(exc).replace("cp2k", "qe")) from None
    unknown = sorted(set(elements) - set(PSEUDOPOTENTIALS))
    if unknown:
        known = sorted(PSEUDOPOTENTIALS)
        raise ValueError(f"qe elements {unknown} have no pseudopotential in the family; known: {known}")
    family = qe_pseudo_family()
    # A stand-in structure (never stored) with one atom of each element: the protocol reads its kinds for the
    # pseudopotentials and the cutoffs.
    placeholder = orm.StructureData(cell=(np.eye(3) * 10.0).tolist())
    for position, element in enumerate(elements):
        placeholder.append_atom(position=(2.0 * position, 0.0, 0.0), symbols=element)
    merged = merge_inputs(merge_inputs({"pseudo_family": family.label}, QE_OVERRIDES), overrides or {})
    builder = PwBaseWorkChain.get_builder_from_protocol(code, placeholder, protocol=protocol, overrides=merged)
    parameters = builder.pw.parameters.get_dict()
    check_pw_parameters(parameters, "qe parameters")
    inputs = {
        "pw": {"code": code, "parameters": orm.Dict(parameters), "pseudos": dict(builder.pw.pseudos)},
        "kpoints_distance": builder.kpoints_distance,
        "kpoints_force_parity": builder.kpoints_force_parity,
        "max_iterations": builder.max_iterations,
        "clean_workdir": builder.clean_workdir,
    }
    return {
        "process": "aiida.workflows:quantumespresso.pw.base",
        "structure_port": "pw.structure",
        "adapter": "quantumespresso",
        "inputs": inputs,
        "options": {**QE_OPTIONS, **(options or {})},
    }
