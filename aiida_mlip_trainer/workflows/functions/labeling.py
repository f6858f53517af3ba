"""Calcfunctions of the labelling: a pool cut into structures for the oracle jobs, and their labels merged back."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from ...data.labels import read_labels
from ...data.training_set import TrainingSetData

__all__ = ("merge_labels", "split_pool")


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
