"""Plain operations on training sets (no provenance of their own: calcfunctions wrap them where it matters):
subsets, concatenation, and the count of atomic environments MaxVol needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .training_set import TrainingSetData

__all__ = ("atoms_per_element", "check_environments", "concatenate", "subset_arrays", "subset_structures")

_PER_STRUCTURE = ("natoms", "cell", "pbc", "names", "energy", "stress")
_PER_ATOM = ("numbers", "positions", "forces")


def atoms_per_element(structures: TrainingSetData) -> dict[str, int]:
    """How many atoms of each element the set holds."""
    from ase.data import chemical_symbols

    numbers_, counts = np.unique(structures.get_arrays()["numbers"], return_counts=True)
    return {chemical_symbols[int(n)]: int(c) for n, c in zip(numbers_, counts, strict=True)}


def check_environments(
    structures: TrainingSetData, layout: Mapping[str, Mapping[str, int]], *, role: str, with_active_set: bool = False
) -> str | None:
    """A message when ``structures`` hold fewer atoms of an element than the basis has functions for it (MaxVol is
    then under-determined), else None. An active set passed along supplies the missing rows."""
    if with_active_set:
        return None
    counts = atoms_per_element(structures)
    for element, spec in layout.items():
        have, need = counts.get(element, 0), spec["num_functions"]
        if have < need:
            return (
                f"the {role} has {have} {element} atoms but the potential has {need} basis functions for {element}: "
                f"MaxVol needs at least one atomic environment per function and element; add structures with "
                f"{element}, use a smaller basis"
                + (", or pass an active set (use_active_set)" if role == "pool" else "")
            )
    return None


def subset_arrays(arrays: Mapping[str, np.ndarray], indices: Sequence[int]) -> dict[str, np.ndarray]:
    """The arrays of the structures at ``indices`` (in that order) of a :class:`TrainingSetData`."""
    indices = np.asarray(indices, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(arrays["natoms"])])
    atom_rows = (
        np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices])
        if len(indices)
        else np.zeros(0, dtype=np.int64)
    )
    result = {}
    for key, value in arrays.items():
        if key in _PER_STRUCTURE:
            result[key] = value[indices]
        elif key in _PER_ATOM:
            result[key] = value[atom_rows]
        else:  # pragma: no cover - a key added to TrainingSetData later must be classified here
            raise KeyError(f"do not know whether array {key!r} is per structure or per atom")
    return result


def subset_structures(pool: TrainingSetData, indices: Sequence[int]) -> TrainingSetData:
    """The structures of ``pool`` at ``indices`` (in that order) as a new, unstored set, with labels and baseline."""
    num = pool.num_structures
    bad = [i for i in indices if not 0 <= int(i) < num]
    if bad:
        raise ValueError(f"indices {bad[:5]} are outside the pool of {num} structures")
    if len(set(indices)) != len(indices):
        raise ValueError("indices repeat a structure")
    subset = TrainingSetData(arrays=subset_arrays(pool.get_arrays(), indices))
    baseline = pool.base.attributes.get("baseline", None)
    if baseline is not None:
        subset.base.attributes.set("baseline", baseline)
    return subset


def concatenate(parts: Sequence[TrainingSetData]) -> TrainingSetData:
    """All structures of ``parts`` in that order, as a new, unstored set. Labels are kept only when every part is
    labelled and all are on the same baseline; otherwise the result is an unlabelled pool."""
    arrays_list = [part.get_arrays() for part in parts]
    baselines = {repr(part.base.attributes.get("baseline", None)) for part in parts}
    keep_labels = all(part.labelled for part in parts) and len(baselines) == 1
    keep_stress = keep_labels and all(part.has_stress for part in parts)
    keys = ["natoms", "numbers", "positions", "cell", "pbc", "names"]
    if keep_labels:
        keys += ["energy", "forces"] + (["stress"] if keep_stress else [])
    merged = {key: np.concatenate([arrays[key] for arrays in arrays_list]) for key in keys}
    result = TrainingSetData(arrays=merged)
    if keep_labels and parts[0].base.attributes.get("baseline", None) is not None:
        result.base.attributes.set("baseline", parts[0].base.attributes.get("baseline"))
    return result
