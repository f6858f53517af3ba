"""Training sets from the calculations a profile already holds: finished DFT single points (aiida-quantumespresso's
``PwCalculation`` and ``PwBaseWorkChain``, aiida-cp2k's ``Cp2kCalculation``, this plugin's ASE oracle, any process
whose adapter says it reads it) become a ``TrainingSetData`` linked to them.

A process is read by the oracle adapter that names its entry point (the ``processes`` attribute of an adapter of
``mlip_trainer.oracle_adapters``: entry point -> the input port of the labelled structure); the same adapter that
labels a structure inside :class:`~aiida_mlip_trainer.workflows.labeling.LabelingWorkChain`. What cannot be a label
is skipped and listed: a process that did not finish well, one no adapter reads, one whose outputs the adapter refuses
(no forces, another number of atoms). Labels of one potential must come from one DFT setting: the adapter's
``settings_record`` reads it (code, functional, pseudopotentials or basis, cutoffs, smearing, spin, and the k-point
spacing, compared with a tolerance; :mod:`aiida_mlip_trainer.physics.dft_settings`), and a selection of several
settings is refused with the groups found, or split into one set per setting on request.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

from aiida import orm
from aiida.common.links import LinkType

from ..oracles import ADAPTER_GROUP, adapter_arguments, load_adapter
from ..physics.dft_settings import KPOINT_TOLERANCE, describe_settings_groups, group_by_settings
from .functions.training_set import training_set_from_processes

__all__ = ("MixedSettingsError", "import_processes", "importable_processes")


class MixedSettingsError(ValueError):
    """The selected calculations were run with more than one DFT setting; the message lists the groups."""


def importable_processes() -> dict[str, str]:
    """Process entry point -> the name of the adapter that reads it, over every registered adapter."""
    from importlib.metadata import entry_points

    known: dict[str, str] = {}
    for entry in sorted(entry_points(group=ADAPTER_GROUP), key=lambda entry: entry.name):
        for process in getattr(load_adapter(entry.name), "processes", {}):
            known.setdefault(process, entry.name)
    return known


def import_processes(
    source: orm.Group | Iterable[orm.ProcessNode],
    *,
    split_by_settings: bool = False,
    kpoint_tolerance: float = KPOINT_TOLERANCE,
) -> list[dict]:
    """Training sets from finished calculations: pass a ``Group`` (its process nodes are read, other nodes ignored)
    or a list of process nodes. You get a list of ``{"training_set": TrainingSetData, "report": Dict}`` (the outputs
    of the calcfunction :func:`~aiida_mlip_trainer.workflows.functions.training_set.training_set_from_processes`):
    one, or with ``split_by_settings=True`` one per setting. The report lists the imported structures (named by the
    UUID of their calculation), the skipped processes with the reason, and the setting.

    Raises :class:`MixedSettingsError` when the usable calculations have more than one setting (and no split was
    asked), ValueError when none is usable (the message lists why each was skipped)."""
    # a group's nodes in the order they were made (a group has no order of its own)
    processes = sorted(source.nodes, key=lambda node: node.pk) if isinstance(source, orm.Group) else list(source)
    known = importable_processes()
    usable, skipped = [], []
    for node in processes:
        if not isinstance(node, orm.ProcessNode):
            continue
        reason, entry = _read(node, known)
        if reason is not None:
            skipped.append({"uuid": node.uuid, "label": _label(node), "reason": reason})
        else:
            usable.append(entry)
    if not usable:
        reasons = "; ".join(f"{item['label']} <{item['uuid'][:8]}>: {item['reason']}" for item in skipped)
        raise ValueError(f"no calculation gives a label ({len(processes)} node(s)): {reasons or 'nothing to read'}")
    records = [entry["record"] for entry in usable]
    groups = group_by_settings(records, kpoint_tolerance)
    if len(groups) > 1 and not split_by_settings:
        names = [f"{entry['source']['label']} <{entry['source']['uuid'][:8]}>" for entry in usable]
        raise MixedSettingsError(
            f"the {len(usable)} calculations were run with {len(groups)} different DFT settings; labels of one "
            f"potential must share one (import a group of one setting, or pass split_by_settings=True / "
            f"--split-by-settings for one training set each):\n" + describe_settings_groups(records, groups, names)
        )
    results = []
    for members in groups:
        chosen = [usable[member] for member in members]
        first = records[members[0]]
        nodes = {}
        for index, entry in enumerate(chosen):
            nodes.update({f"c{index}__{label}": node for label, node in entry["nodes"].items()})
        sources = {
            "calculations": [entry["source"] for entry in chosen],
            "settings": {**first["settings"], "kpoint_spacing": first.get("kpoint_spacing")},
            "skipped": skipped,
        }
        results.append(training_set_from_processes(sources=orm.Dict(sources), **nodes))
    return results


def _label(node: orm.ProcessNode) -> str:
    return node.process_label or node.process_type or type(node).__name__


def _read(node: orm.ProcessNode, known: dict[str, str]) -> tuple[str | None, dict | None]:
    """``(reason it is skipped, None)`` or ``(None, {"source", "record", "nodes"})`` for one process node."""
    if not node.is_finished_ok:
        state = "not finished" if not node.is_terminated else f"failed (exit status {node.exit_status}"
        message = f": {node.exit_message}" if node.exit_message else ""
        return (state if not node.is_terminated else f"{state}{message})"), None
    adapter_name = known.get(node.process_type)
    if adapter_name is None:
        return f"no adapter reads {node.process_type} (registered: {', '.join(sorted(known))})", None
    adapter = load_adapter(adapter_name)
    port = adapter.processes[node.process_type].replace(".", "__")
    inputs = node.base.links.get_incoming(link_label_filter=port).all()
    structure = inputs[0].node if len(inputs) == 1 else None
    if not isinstance(structure, orm.StructureData):
        return "no input structure", None
    links = node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN)).all()
    outputs = {link.link_label: link.node for link in links}
    arguments = adapter_arguments(adapter, structure, outputs)
    try:
        inspect.unwrap(adapter)(**arguments)  # checked before anything is recorded; recorded again by the import
        settings_record = getattr(adapter, "settings_record", None)
        record = settings_record(node) if settings_record else {"settings": {"process": node.process_type}}
    except Exception as exc:  # the adapter's message says why the output is not a label
        return f"not a label: {exc}", None
    source = {"adapter": adapter_name, "uuid": node.uuid, "label": _label(node)}
    return None, {"source": source, "record": record, "nodes": arguments}
