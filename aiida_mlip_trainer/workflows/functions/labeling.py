"""Calcfunctions of the labelling: the record of which structures got no label, and why.

Used by :class:`~aiida_mlip_trainer.workflows.labeling.LabelingWorkChain`; the oracle contract is in
:mod:`aiida_mlip_trainer.oracles`.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ...data.training_set import TrainingSetData

__all__ = ("collect_labelling_failures",)


@calcfunction
def collect_labelling_failures(pool: TrainingSetData, **records: orm.Data) -> orm.Dict:
    """The record of a labelling of ``pool``: pass ``labels_<i>`` (the adapter's labels) for every pool position ``i``
    that got a label, and ``failure_<i>`` (a Dict: ``process_pk`` of the oracle job, ``reason``) for every one that
    did not. Returns ``{"failures": [{"index", "name", "process_pk", "reason"}], "num_labelled", "num_failed"}``,
    the failures in pool order, each named as in the pool; so the graph shows which labels were counted."""
    names = pool.get_arrays()["names"]
    failed = sorted(int(key.removeprefix("failure_")) for key in records if key.startswith("failure_"))
    failures = []
    for index in failed:
        record = records[f"failure_{index}"].get_dict()
        failures.append(
            {
                "index": index,
                "name": str(names[index]),
                "process_pk": int(record["process_pk"]),
                "reason": str(record["reason"]),
            }
        )
    labelled = sum(1 for key in records if key.startswith("labels_"))
    return orm.Dict({"failures": failures, "num_labelled": labelled, "num_failed": len(failures)})
