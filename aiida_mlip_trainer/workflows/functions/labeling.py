"""Calcfunctions of the labelling: a pool cut into structures for the oracle jobs, their labels merged back, and the
record of which structures got no label, and why."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ...data.labels import read_labels
from ...data.training_set import TrainingSetData

__all__ = ("collect_labelling_failures", "merge_labels", "split_pool")


@calcfunction
def split_pool(pool: TrainingSetData) -> dict:
    """The structures of a pool as ``StructureData`` nodes, ``structure_<i>`` for pool position ``i`` (labels of the
    pool, if any, are left behind: the oracle labels afresh)."""
    outputs = {}
    for index, atoms in enumerate(pool.to_atoms()):
        atoms.calc = None
        structure = orm.StructureData(ase=atoms)
        structure.label = atoms.info["name"]
        outputs[f"structure_{index}"] = structure
    return outputs


@calcfunction
def merge_labels(pool: TrainingSetData, **labelled) -> dict:
    """A labelled ``TrainingSetData`` from ``structure_<i>`` and ``labels_<i>`` pairs (``i``: the pool position; the
    name comes from the pool), and ``indices``, the pool positions in order. Stress is kept only when every label
    has it (a training set has stress for all structures or for none)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    indices = sorted(int(key.removeprefix("labels_")) for key in labelled if key.startswith("labels_"))
    names = pool.get_arrays()["names"]
    entries = []
    for index in indices:
        atoms = labelled[f"structure_{index}"].get_ase()
        energy, forces, stress = read_labels(labelled[f"labels_{index}"])
        entries.append((index, atoms, energy, forces, stress))
    with_stress = all(entry[4] is not None for entry in entries)
    structures = []
    for index, atoms, energy, forces, stress in entries:
        results = {"energy": energy, "forces": forces}
        if with_stress:
            results["stress"] = stress
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = str(names[index])
        structures.append(atoms)
    return {"labelled": TrainingSetData(structures), "indices": orm.List(indices)}


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
