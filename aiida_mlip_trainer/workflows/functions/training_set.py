"""Calcfunctions that make training sets: read from a file, split into training and test structures, draw and
generate the starting structures of exploration."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from ...data.training_set import TrainingSetData
from ...physics.training_arrays import LABEL_KEYS, STRESS_KEY

__all__ = (
    "exploration_starts",
    "generate_structures",
    "import_training_set",
    "pick_starting_structures",
    "split_training_set",
    "training_set_from_file",
    "training_set_from_processes",
)


@calcfunction
def import_training_set(file: orm.SinglefileData) -> TrainingSetData | ExitCode:
    """Read a labelled structure file (extxyz, ASE database, ... as ASE reads it) into a `TrainingSetData`.

    A file that cannot be read or holds unusable structures finishes this step with exit status 220 and the reason,
    instead of an exception: the graph records what was wrong with the data."""
    try:
        return training_set_from_file(file)
    except Exception as error:  # noqa: BLE001 - ASE raises many types for a malformed file; all are bad input
        return ExitCode(220, f"{file.filename!r} cannot be read as labelled structures: {error}")


def training_set_from_file(file: orm.SinglefileData) -> TrainingSetData:
    """The structures of a file node as an unstored `TrainingSetData` (what :func:`import_training_set` records).

    The stored file name is never used as a path (a node from an archive may call itself ``../x``): the content is
    written to a fixed name, with the original suffix only when it is a plain one, so that ASE still recognises the
    format by it."""
    import pathlib
    import tempfile

    from ...names import plain_suffix

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"structures{plain_suffix(file.filename)}"
        path.write_bytes(file.get_content(mode="rb"))
        return TrainingSetData.from_file(path)


@calcfunction
def split_training_set(training_set: TrainingSetData, test_fraction: orm.Float, seed: orm.Int) -> dict:
    """Hold out a random ``test_fraction`` of the structures (at least one on each side), reproducibly for a seed.

    Returns ``train`` and ``test`` sets and ``test_indices`` (an ``orm.List`` of indices into ``training_set``)."""
    from ...data.operations import subset_structures

    count = training_set.num_structures
    if count < 2:
        raise ValueError("a training set of one structure cannot be split into training and test structures")
    n_test = min(count - 1, max(1, round(test_fraction.value * count)))
    order = np.random.default_rng(seed.value).permutation(count)
    test, train = np.sort(order[:n_test]).tolist(), np.sort(order[n_test:]).tolist()
    return {
        "train": subset_structures(training_set, train),
        "test": subset_structures(training_set, test),
        "test_indices": orm.List(test),
    }


@calcfunction
def pick_starting_structures(structures: TrainingSetData, count: orm.Int, seed: orm.Int) -> TrainingSetData:
    """``count`` structures of ``structures``, drawn at random with ``seed``, as the starting points of exploration
    (labels dropped: exploration needs only the geometry)."""
    from ...data.operations import subset_arrays

    order = np.random.default_rng(seed.value).permutation(structures.num_structures)[: count.value]
    arrays = subset_arrays(structures.get_arrays(), sorted(int(i) for i in order))
    return TrainingSetData(arrays={key: value for key, value in arrays.items() if key not in (*LABEL_KEYS, STRESS_KEY)})


@calcfunction
def generate_structures(structures: TrainingSetData, generator: orm.Dict) -> TrainingSetData:
    """The structures a generator of an exploration protocol makes from ``structures`` (strained, sheared, vacancy,
    interstitial, slab, rattled, substituted cells: :mod:`aiida_mlip_trainer.physics.generators`; the generator's
    seed is in ``generator``), unlabelled, each named ``<start>@<type><k>``."""
    from ...physics.generators import generate

    return TrainingSetData(generate(structures.to_atoms(), generator.get_dict()), labelled=False)


@calcfunction
def exploration_starts(**groups: TrainingSetData) -> dict:
    """The starting structures of one round's exploration: the ``groups`` (given or drawn structures, each
    generator's, the resume frames of halted trajectories) concatenated, labels dropped: ``given`` first, ``resume``
    last, the others in the order of their names. Returns ``structures`` and ``origins`` (an ``orm.List``: the group
    of each structure, in order)."""
    names = sorted(groups, key=lambda name: (name != "given", name == "resume", name))
    parts = [groups[name].get_arrays() for name in names]
    keys = ("natoms", "numbers", "positions", "cell", "pbc", "names")
    arrays = {key: np.concatenate([part[key] for part in parts]) for key in keys}
    origins = [name for name in names for _ in range(groups[name].num_structures)]
    return {"structures": TrainingSetData(arrays=arrays), "origins": orm.List(origins)}


@calcfunction
def training_set_from_processes(sources: orm.Dict, **nodes: orm.Data) -> dict:
    """A labelled ``TrainingSetData`` from finished calculations, each structure linked to the calculation that
    labelled it: the inputs are the calculations' own nodes, ``c<i>__structure`` (the labelled structure) and
    ``c<i>__<output>`` (the outputs its adapter reads), so the graph runs from every calculation through its outputs
    to this step and the set. ``sources`` (made by
    :func:`~aiida_mlip_trainer.workflows.database_import.import_processes`) holds per calculation ``i`` the
    ``adapter`` (an entry point name of ``mlip_trainer.oracle_adapters``), the process ``uuid`` and ``label``, and
    ``settings`` (the one setting of the set) and ``skipped`` (processes left
    out, with the reason). Returns ``training_set`` and ``report``: ``{"imported": [{"name", "uuid", "label"}],
    "skipped": [{"uuid", "label", "reason"}], "settings"}``. Stress is kept only when every structure has it."""
    import inspect

    from ase.calculators.singlepoint import SinglePointCalculator

    from ...data.labels import read_labels
    from ...oracles import adapter_arguments, load_adapter

    record = sources.get_dict()
    entries = []
    for index, source in enumerate(record["calculations"]):
        prefix = f"c{index}__"
        structure = nodes[f"{prefix}structure"]
        outputs = {key.removeprefix(prefix): node for key, node in nodes.items() if key.startswith(prefix)}
        adapter = inspect.unwrap(load_adapter(source["adapter"]))  # the plain function: no process inside this one
        energy, forces, stress = read_labels(adapter(**adapter_arguments(adapter, structure, outputs)))
        entries.append((source, structure.get_ase(), energy, forces, stress))
    with_stress = all(entry[4] is not None for entry in entries)
    structures = []
    for source, atoms, energy, forces, stress in entries:
        results = {"energy": energy, "forces": forces, **({"stress": stress} if with_stress else {})}
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = source["uuid"]
        structures.append(atoms)
    report = {
        "imported": [{"name": s["uuid"], "uuid": s["uuid"], "label": s["label"]} for s in record["calculations"]],
        "skipped": record.get("skipped", []),
        "settings": record.get("settings", {}),
    }
    return {"training_set": TrainingSetData(structures), "report": orm.Dict(report)}
