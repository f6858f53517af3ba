"""Watch a training (its pacemaker calculations and their learning curves) or an active-learning loop (its rounds),
also while they run."""

from __future__ import annotations

import tempfile

from aiida import orm

from .formats.pacemaker_output import learning_curve as curve_from_tables
from .formats.pacemaker_output import read_metrics_table

__all__ = ("calculation_versions", "learning_curve", "loop_progress", "training_calculations")

_TRAIN = "aiida.calculations:mlip_trainer.pace_train"


def training_calculations(node: orm.ProcessNode) -> list[orm.CalcJobNode]:
    """The PaceTrainCalculations of a training (the node itself, or those a work chain called), oldest first."""
    if node.process_type == _TRAIN:
        return [node]
    found = [n for n in node.called_descendants if n.process_type == _TRAIN]
    return sorted(found, key=lambda n: n.ctime)


def _job_file(calc: orm.CalcJobNode, filename: str) -> str:
    """``filename`` from the retrieved files when finished, else from the running job's working directory."""
    if "retrieved" in calc.outputs:
        try:
            return calc.outputs.retrieved.base.repository.get_object_content(filename)
        except FileNotFoundError:
            return ""
    # A sealed calculation (finished, or imported from an archive) is never read from a remote folder: its
    # remote path is only a recorded string, and may name anything on the machine it points to.
    if "remote_folder" not in calc.outputs or calc.is_sealed:
        return ""
    with tempfile.NamedTemporaryFile() as handle:
        try:
            calc.outputs.remote_folder.getfile(filename, handle.name)
        except OSError:
            return ""
        return open(handle.name, encoding="utf8").read()


def learning_curve(calc: orm.CalcJobNode) -> dict[str, list[dict]]:
    """The learning curve of a PaceTrainCalculation so far, train and test (see
    :func:`aiida_mlip_trainer.formats.pacemaker_output.learning_curve`)."""
    return curve_from_tables(
        read_metrics_table(_job_file(calc, "metrics.txt")),
        read_metrics_table(_job_file(calc, "test_metrics.txt")),
    )


def calculation_versions(calc: orm.CalcJobNode) -> dict[str, str | None]:
    """The versions of python-ace, tensorpotential, TensorFlow, ... a pacemaker-tool calculation ran with: its
    ``versions`` output, or while it runs the ``versions.json`` its job wrote; ``{}`` when unknown."""
    from .calculations.versions import VERSIONS_FILENAME, read_versions

    if "versions" in calc.outputs:
        return calc.outputs.versions.get_dict()
    return read_versions(_job_file(calc, VERSIONS_FILENAME)) or {}


def loop_progress(node: orm.WorkflowNode) -> dict:
    """Where an ``ActiveLearningWorkChain`` stands, from the processes it called (their link labels ``training_<k>``,
    ``exploration_<k>``, ``labeling_<k>``, ``initial_labeling``), so also while it runs: ``rounds`` (the rows of
    :func:`~aiida_mlip_trainer.workflows.functions.learning_curve.curve_rows` for every finished fit), ``reference``
    (the held-out set's force RMS in meV/Å and energy spread in meV/atom, from the first fit), ``running`` (the called
    processes not yet finished, as ``(link label, node)``) and ``stop_reason`` (once it finished)."""
    from aiida.common.links import LinkType

    from .workflows.functions.learning_curve import curve_rows

    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_WORK, LinkType.CALL_CALC)).all()
    called = {link.link_label: link.node for link in links}
    metrics, structures, explorations, labelings = [], [], {}, {}
    k = 0
    while f"training_{k}" in called and "metrics" in called[f"training_{k}"].outputs:
        training = called[f"training_{k}"]
        metrics.append(training.outputs.metrics.get_dict())
        structures.append(training.inputs.training_set.num_structures)
        exploration, labeling = called.get(f"exploration_{k}"), called.get(f"labeling_{k}")
        if exploration is not None and "summary" in exploration.outputs:
            explorations[k] = exploration.outputs.summary.get_dict()
        if labeling is not None and "failures" in labeling.outputs:
            labelings[k] = labeling.outputs.failures.get_dict()
        k += 1
    initial = called.get("initial_labeling")
    initial_calls = None
    if initial is not None and "failures" in initial.outputs:
        initial_calls = initial.outputs.failures.get_dict()
    reference = metrics[0].get("reference", {}) if metrics else {}
    return {
        "rounds": curve_rows(metrics, structures, explorations, labelings, initial_calls),
        "reference": {
            "force_component_rms": reference.get("force_component_rms"),
            "energy_per_atom_std": reference.get("energy_per_atom_std"),
        },
        "running": sorted((label, n) for label, n in called.items() if not n.is_terminated),
        "stop_reason": node.outputs.summary["stop_reason"] if "summary" in node.outputs else None,
    }
