"""Protocols: named, complete sets of inputs for the work chains (aiida-quantumespresso's conventions).

Every work chain has its own protocol file here (``pace_train_base.yaml``, ``selection.yaml``, ``labeling.yaml``,
``training.yaml``, ``active_learning.yaml``) with ``default_protocol``, ``default_inputs`` (what every protocol
shares) and ``protocols`` (``fast``, ``moderate``, ``precise``; each with a ``description`` and only its differences).
:meth:`ProtocolMixin.get_protocol_inputs` merges the defaults, the protocol and the user's overrides, key by key;
``get_builder_from_protocol`` of a work chain turns the result into a builder the user can read and edit before
submitting. An outer work chain's file holds, under the namespace of each inner work chain, only what differs from
the inner chain's own protocol: its builder calls the inner builder with the same protocol, that section as
``overrides`` and the same ``options``.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml
from aiida import orm
from aiida.engine.processes.ports import InputPort, PortNamespace

__all__ = (
    "EXPLORATION_PROTOCOLS_DIRECTORY",
    "ProtocolMixin",
    "builder_inputs",
    "default_resources",
    "fill_builder",
    "job_options",
    "load_codes",
    "load_exploration_protocol",
    "merge",
    "set_job",
)

PROTOCOLS_DIRECTORY = pathlib.Path(__file__).parent
# One exploration protocol per system (`<name>.yaml`): the starting structures' generators and the conditions.
EXPLORATION_PROTOCOLS_DIRECTORY = PROTOCOLS_DIRECTORY / "exploration"
EXPLORATION_PROTOCOL_KEYS = ("description", "generators", "exploration")


def load_exploration_protocol(protocol: str | pathlib.Path) -> dict[str, Any]:
    """An exploration protocol: the name of a shipped one (``copper``, ``cuni``, ``silicon``;
    ``workflows/protocols/exploration/``) or the path of a YAML file with ``generators`` (a list of
    :mod:`aiida_mlip_trainer.physics.generators` specifications), ``exploration`` (ExplorationCalculation's
    parameters, usually with ``conditions``) and a ``description``.
    Returns ``{"generators": [...], "exploration": {...}}``, checked; ValueError naming the file and the mistake."""
    from ...physics.generators import check_generator
    from ...tools.explore import check_settings

    path = pathlib.Path(protocol)
    if not path.suffix:
        shipped = sorted(item.stem for item in EXPLORATION_PROTOCOLS_DIRECTORY.glob("*.yaml"))
        if str(protocol) not in shipped:
            raise ValueError(f"no exploration protocol {protocol!r}: shipped are {shipped}, or give a YAML file")
        path = EXPLORATION_PROTOCOLS_DIRECTORY / f"{protocol}.yaml"
    if not path.is_file():
        raise ValueError(f"exploration protocol {path}: no such file")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"exploration protocol {path}: expected a mapping of {list(EXPLORATION_PROTOCOL_KEYS)}")
    unknown = sorted(set(values) - set(EXPLORATION_PROTOCOL_KEYS), key=str)
    if unknown:
        raise ValueError(
            f"exploration protocol {path}: unknown key(s) {unknown}; known are {list(EXPLORATION_PROTOCOL_KEYS)}"
        )
    generators, exploration = values.get("generators") or [], values.get("exploration") or {}
    if not isinstance(generators, list):
        raise ValueError(f"exploration protocol {path}: generators must be a list of {{type: ..., ...}}")
    try:
        for spec in generators:
            check_generator(spec)
        if "temperatures" in exploration or "conditions" in exploration:
            check_settings(exploration)
    except ValueError as exc:
        raise ValueError(f"exploration protocol {path}: {exc}") from None
    return {"generators": generators, "exploration": exploration}


def _copy(value: Any) -> Any:
    """A copy of nested dictionaries and lists; other values (numbers, strings, AiiDA nodes) as they are: a deep
    copy of a stored node would clone it."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in recursively: dictionaries are merged key by key, anything else (a None
    included) replaces. Nodes in either are kept as they are, not copied."""
    result = _copy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = _copy(value)
    return result


@functools.cache
def _load(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text())


class ProtocolMixin:
    """Class methods to read a work chain's protocol file; the class sets ``_protocol_file``."""

    _protocol_file: pathlib.Path

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return cls._protocol_file

    @classmethod
    def get_default_protocol(cls) -> str:
        return _load(cls._protocol_file)["default_protocol"]

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict[str, str]]:
        """``{name: {"description": ...}}`` for every protocol of the file."""
        protocols = _load(cls._protocol_file)["protocols"]
        return {name: {"description": protocol["description"]} for name, protocol in protocols.items()}

    @classmethod
    def get_protocol_inputs(
        cls, protocol: str | None = None, overrides: Mapping[str, Any] | pathlib.Path | None = None
    ) -> dict[str, Any]:
        """The inputs of ``protocol`` (the default one when None): ``default_inputs`` merged with the protocol's
        differences and then with ``overrides`` (a dictionary, or a YAML file of one). A fresh copy."""
        data = _load(cls._protocol_file)
        name = protocol or data["default_protocol"]
        if name not in data["protocols"]:
            raise ValueError(f"unknown protocol {name!r}; available: {', '.join(data['protocols'])}")
        differences = {key: value for key, value in data["protocols"][name].items() if key != "description"}
        inputs = merge(data["default_inputs"], differences)
        if isinstance(overrides, pathlib.Path):
            overrides = yaml.safe_load(overrides.read_text()) or {}
        return merge(inputs, overrides or {})

    @classmethod
    def builder_with(cls, *values: Mapping[str, Any]):
        """The process's builder with each mapping of ``values`` set on it in turn by :func:`fill_builder`."""
        builder = cls.get_builder()
        for each in values:
            fill_builder(builder, each)
        return builder


def default_resources(code: orm.AbstractCode) -> dict[str, int]:
    """One process on one machine, in the form the scheduler of ``code``'s computer takes: ``num_machines`` and
    ``num_mpiprocs_per_machine`` for the schedulers that count nodes (``core.direct``, ``core.slurm``,
    ``core.pbspro``, ``core.torque``), ``tot_num_mpiprocs`` for ``core.lsf``. Any other scheduler (``core.sge``
    needs its site's parallel environment) raises a ValueError that names it: give ``resources`` in ``options``."""
    from aiida.common.exceptions import EntryPointError
    from aiida.plugins import SchedulerFactory
    from aiida.schedulers.datastructures import NodeNumberJobResource
    from aiida.schedulers.plugins.lsf import LsfJobResource

    computer = code.computer
    if computer is None:
        raise ValueError(f"the code {code.label!r} has no computer: give options={{'resources': {{...}}}}")
    scheduler = computer.scheduler_type
    try:
        resource_class = SchedulerFactory(scheduler).job_resource_class
    except EntryPointError:
        resource_class = None
    if resource_class is not None and issubclass(resource_class, NodeNumberJobResource):
        return {"num_machines": 1, "num_mpiprocs_per_machine": 1}
    if resource_class is not None and issubclass(resource_class, LsfJobResource):
        return {"tot_num_mpiprocs": 1}
    raise ValueError(
        f"no default resources for the scheduler {scheduler!r} of the computer {computer.label!r} (code "
        f"{code.label!r}): give them, e.g. options={{'resources': {{...}}}} in the form {scheduler!r} takes"
    )


def job_options(
    code: orm.AbstractCode, protocol_options: Mapping[str, Any] | None, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The ``metadata.options`` of one job: the protocol's (overrides merged in), then the user's ``options``; with
    :func:`default_resources` for ``code`` when neither gives ``resources``."""
    result = merge(protocol_options or {}, options or {})
    if "resources" not in result:
        result["resources"] = default_resources(code)
    return result


def load_codes(codes: Mapping[str, orm.AbstractCode | str]) -> dict[str, orm.AbstractCode]:
    """``codes`` with each label loaded as a code."""
    return {name: orm.load_code(code) if isinstance(code, str) else code for name, code in codes.items()}


def set_job(values: dict[str, Any], code: orm.AbstractCode, options: Mapping[str, Any] | None) -> None:
    """Put ``code`` and its :func:`job_options` into the protocol inputs ``values`` of one job's namespace."""
    values["code"] = code
    metadata = values.setdefault("metadata", {})
    metadata["options"] = job_options(code, metadata.get("options"), options)


def fill_builder(namespace, values: Mapping[str, Any], where: str = "") -> None:
    """Set protocol inputs on a builder (or one of its namespaces): nested mappings into nested namespaces, plain
    values into nodes (by the port's serializer, else ``to_aiida_type``) where the port takes nodes (not inside
    ``metadata``); None leaves a port unset. A key that is not an input raises a ValueError naming it (a misspelt
    override is not ignored), except in a namespace that takes any key (``oracle.inputs``): one a work chain
    exposes is dynamic too, but takes only the ports of the process it exposes."""
    ports = namespace._port_namespace  # noqa: SLF001 - the builder's own spec, to tell namespaces from ports
    for key, value in values.items():
        if value is None:
            continue
        if key not in ports:
            if not ports.dynamic or ports.valid_type is not None:
                raise ValueError(f"{where}{key}: not an input (known here: {', '.join(sorted(ports))})")
            namespace[key] = value
            continue
        port = ports[key]
        if isinstance(port, PortNamespace) and isinstance(value, Mapping):
            fill_builder(namespace[key], value, f"{where}{key}.")
            continue
        if isinstance(port, InputPort) and _takes_nodes(port) and not isinstance(value, orm.Data):
            value = port.serialize(value) if port.serializer is not None else orm.to_aiida_type(value)
        namespace[key] = value


def _takes_nodes(port: InputPort) -> bool:
    valid = port.valid_type if isinstance(port.valid_type, tuple) else (port.valid_type,)
    return not port.non_db and any(isinstance(kind, type) and issubclass(kind, orm.Data) for kind in valid)


def builder_inputs(builder, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """What was set on ``builder`` as nested dictionaries of nodes and values (to place an inner work chain's builder
    into the namespace an outer work chain exposes it in), without the top-level keys in ``exclude``."""
    inputs = builder._inputs(prune=True)  # noqa: SLF001 - the builder's values without its empty namespaces
    return {key: value for key, value in inputs.items() if key not in exclude}
