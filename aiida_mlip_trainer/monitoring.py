"""Watch a training: its pacemaker calculations and their learning curves, also while they run."""

from __future__ import annotations

import tempfile

from aiida import orm

from .pacemaker_output import learning_curve as curve_from_tables
from .pacemaker_output import read_metrics_table

__all__ = ("calculation_versions", "learning_curve", "training_calculations")

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
    :func:`aiida_mlip_trainer.pacemaker_output.learning_curve`)."""
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
