"""Data transformations recorded in the provenance graph."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from .data.pace_potential import PacePotentialData
from .data.training_set import TrainingSetData

__all__ = (
    "assemble_potential",
    "check_short_range",
    "derive_baseline",
    "generate_training_parameters",
    "import_training_set",
    "potential_file",
    "split_training_set",
    "subtract_baseline",
    "validate_potential",
)


@calcfunction
def subtract_baseline(training_set: TrainingSetData, baseline: orm.Dict) -> TrainingSetData | ExitCode:
    """The residual training set: energies, forces and stresses minus those of the physical ``baseline``.

    This is what a delta-learned potential is fitted on; the graph then shows it. The residual set records the
    baseline in its ``baseline`` attribute, and a potential fitted on it carries the same baseline, which its
    ASE calculator and its LAMMPS lines add back.
    """
    from .baselines import BaselineError, evaluate_baseline, validate_baseline

    spec = validate_baseline(baseline.get_dict())
    if not training_set.labelled:
        raise ValueError("subtract_baseline needs a labelled training set (energies and forces)")
    if training_set.base.attributes.get("baseline", None) is not None:
        raise ValueError("this training set is already a residual on a baseline: subtract from the original labels")
    arrays = training_set.get_arrays()
    try:
        values = evaluate_baseline(spec, training_set.to_atoms())
    except BaselineError as error:  # e.g. overlapping atoms: a property of the data, recorded as a failed step
        return ExitCode(300, f"the baseline cannot be evaluated on the training set: {error}")
    residual = dict(arrays)
    residual["energy"] = arrays["energy"] - values["energy"]
    residual["forces"] = arrays["forces"] - values["forces"]
    if "stress" in arrays:
        periodic = np.isfinite(values["stress"]).all(axis=1)
        residual["stress"] = np.where(periodic[:, None], arrays["stress"] - np.nan_to_num(values["stress"]), np.nan)
        if not periodic.all():
            # a stress label on a structure that is not periodic in 3D has no baseline stress to subtract
            index = int(np.flatnonzero(~periodic)[0])
            return ExitCode(301, f"structure {index} has a stress label but is not periodic in 3D")
    result = TrainingSetData(arrays=residual)
    result.base.attributes.set("baseline", spec)
    return result


@calcfunction
def derive_baseline(training_set: TrainingSetData, baseline: orm.Dict) -> orm.Dict:
    """The baseline with every window it leaves out derived from ``training_set`` (the original structures the
    potential will be fitted on): ``{"type": "zbl"}`` gets a window for every element pair of the set, a per-pair
    dict without ``ALL`` one for each pair it does not name, each from that pair's shortest distance in the data
    (:func:`aiida_mlip_trainer.baselines.derive_baseline` gives the rule). A baseline with nothing missing comes back
    as it is (normalised). The result is the explicit spec that ``subtract_baseline`` and the potential then carry,
    so the graph shows which numbers a potential was fitted with and from which data they came."""
    from .baselines import derive_baseline as derive
    from .baselines import missing_pairs, validate_baseline

    spec = validate_baseline(baseline.get_dict())
    elements = training_set.elements
    if not missing_pairs(spec, elements):
        return orm.Dict(spec)
    return orm.Dict(derive(spec, training_set.pair_min_distances(), elements))


@calcfunction
def check_short_range(potential: PacePotentialData, training_set: TrainingSetData) -> dict:
    """Is the potential, as it is used (ACE plus its baseline), repulsive below each element pair's shortest distance
    in ``training_set`` (the structures it was fitted on)? Dimer scans for every pair of the potential's elements and
    compressed fcc for each element (:func:`aiida_mlip_trainer.short_range.scan_short_range` says what is measured).

    A pair absent from the data is scanned around the sum of its covalent radii (``source`` says which). Returns
    ``report`` (Dict: ``all_repulsive``, ``not_repulsive``, per pair the verdicts, the ranges that do not rise, the
    well depth and the energy at half the shortest distance, and the baseline's window for the pair), ``curves``
    (ArrayData, one ``(n, 2)`` array per curve) and ``plot`` (a PNG, SinglefileData)."""
    import io

    from .baselines import default_pair_distance, pair_key, pair_parameters, validate_baseline
    from .short_range import plot_short_range, scan_short_range

    found = training_set.pair_min_distances()
    elements = sorted(potential.elements)
    distances, sources = {}, {}
    for index, a in enumerate(elements):
        for b in elements[index:]:
            key = pair_key(a, b)
            distances[key] = found.get(key, default_pair_distance(a, b))
            sources[key] = "data" if key in found else "covalent radii (absent from the data)"
    result = scan_short_range(potential.get_calculator(), distances)
    report = result["report"]
    baseline = None if potential.baseline is None else validate_baseline(potential.baseline)
    for key, entry in report["pairs"].items():
        entry["source"] = sources[key]
        if baseline is not None and baseline["type"] == "zbl":
            window = pair_parameters(baseline, *key.split("-"))
            entry["window"] = [window["inner_cutoff"], window["cutoff"]]
    report["baseline"] = potential.baseline
    curves = orm.ArrayData()
    for name, array in result["curves"].items():
        curves.set_array(name, array)
    verdict = (
        "all pairs repulsive" if report["all_repulsive"] else f"NOT repulsive: {', '.join(report['not_repulsive'])}"
    )
    png = plot_short_range(result, title=f"below the shortest training distance: {verdict}")
    return {
        "report": orm.Dict(report),
        "curves": curves,
        "plot": orm.SinglefileData(io.BytesIO(png), filename="short_range.png"),
    }


@calcfunction
def import_training_set(file: orm.SinglefileData) -> TrainingSetData | ExitCode:
    """Read a labelled structure file (extxyz, ASE database, ... as ASE reads it) into a `TrainingSetData`.

    A file that cannot be read or holds unusable structures finishes this step with exit status 300 and the reason,
    instead of an exception: the graph records what was wrong with the data."""
    try:
        return training_set_from_file(file)
    except Exception as error:  # noqa: BLE001 - ASE raises many types for a malformed file; all are bad input
        return ExitCode(300, f"{file.filename!r} cannot be read as labelled structures: {error}")


def training_set_from_file(file: orm.SinglefileData) -> TrainingSetData:
    """The structures of a file node as an unstored `TrainingSetData` (what :func:`import_training_set` records).

    The stored file name is never used as a path (a node from an archive may call itself ``../x``): the content is
    written to a fixed name, with the original suffix only when it is a plain one, so that ASE still recognises the
    format by it."""
    import pathlib
    import tempfile

    from .names import plain_suffix

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"structures{plain_suffix(file.filename)}"
        path.write_bytes(file.get_content(mode="rb"))
        return TrainingSetData.from_file(path)


@calcfunction
def split_training_set(training_set: TrainingSetData, test_fraction: orm.Float, seed: orm.Int) -> dict:
    """Hold out a random ``test_fraction`` of the structures (at least one on each side), reproducibly for a seed.

    Returns ``train`` and ``test`` sets and ``test_indices`` (an ``orm.List`` of indices into ``training_set``)."""
    from .selection import subset_structures

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
def generate_training_parameters(preset: orm.Str, overrides: orm.Dict) -> orm.Dict:
    """The pacemaker settings of a named preset (``fast``, ``moderate``, ``precise``) with the user's overrides
    merged in section by section: the exact configuration of a fit as a node of the graph."""
    from .workflows.protocols import get_preset_parameters, merge

    return orm.Dict(merge(get_preset_parameters(preset.value), overrides.get_dict()))


@calcfunction
def assemble_potential(
    potential: PacePotentialData, yace: orm.SinglefileData, active_set: PacePotentialData | None = None
) -> PacePotentialData:
    """One deployable potential: the fitted ``.yaml``, its LAMMPS ``.yace``, the ``.asi`` active set (taken from
    ``active_set``, the same potential with its active set attached) and the baseline."""
    from .data.pace_potential import ASI_FILENAME

    asi = None
    if active_set is not None:
        asi = active_set.read_file(ASI_FILENAME)
    return PacePotentialData(
        potential.get_yaml().encode(),
        yace=yace.get_content(mode="rb"),
        active_set=asi,
        baseline=potential.baseline,
        fitted_with=potential.fitted_with,
    )


# Below this many held-out structures an error estimate is too rough to read like the others (an energy RMSE over a
# handful of numbers): the metrics then carry a `warning`, which the calcfunction also reports.
MIN_TEST_STRUCTURES = 10


@calcfunction
def validate_potential(potential: PacePotentialData, test_set: TrainingSetData) -> dict:
    """Errors of the potential as it will be used (ACE plus its baseline) on a held-out test set with the original
    labels: energy (meV/atom), forces (meV/Å per component) and, when the set has stresses, stress (GPa), each next
    to the spread of the reference data. Returns ``metrics`` (Dict) and ``parity_plot`` (a PNG, SinglefileData)."""
    import io

    from ase.units import GPa

    calculator = potential.get_calculator()
    structures = test_set.to_atoms()
    natoms = np.array([len(atoms) for atoms in structures])
    e_ref = np.array([atoms.get_potential_energy() for atoms in structures]) / natoms
    f_ref = np.concatenate([atoms.get_forces() for atoms in structures])
    e_pred, f_pred, s_ref, s_pred = [], [], [], []
    for atoms in structures:
        if test_set.has_stress:
            s_ref.append(atoms.get_stress())
        atoms.calc = calculator
        e_pred.append(atoms.get_potential_energy() / len(atoms))
        f_pred.append(atoms.get_forces())
        if test_set.has_stress:
            s_pred.append(atoms.get_stress())
    e_pred, f_pred = np.array(e_pred), np.concatenate(f_pred)

    def rmse(a, b):
        return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))

    def mae(a, b):
        return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))

    metrics = {
        "units": {"energy": "meV/atom", "force": "meV/Å per component", "stress": "GPa"},
        "num_structures": len(structures),
        "num_atoms": int(natoms.sum()),
        "energy_rmse": 1000 * rmse(e_pred, e_ref),
        "energy_mae": 1000 * mae(e_pred, e_ref),
        "force_rmse": 1000 * rmse(f_pred, f_ref),
        "force_mae": 1000 * mae(f_pred, f_ref),
        "reference": {
            "energy_per_atom_std": 1000 * float(e_ref.std()),
            "force_component_rms": 1000 * float(np.sqrt(np.mean(f_ref**2))),
        },
        "baseline": potential.baseline,
    }
    if len(structures) < MIN_TEST_STRUCTURES:
        metrics["warning"] = (
            f"only {len(structures)} test structures (fewer than {MIN_TEST_STRUCTURES}): these errors are rough "
            "estimates; hold out more structures (test_fraction) or give a larger test_set"
        )
        from aiida.engine import Process

        Process.current().report(metrics["warning"])
    if s_ref:
        s_ref, s_pred = np.array(s_ref) / GPa, np.array(s_pred) / GPa
        metrics.update(stress_rmse=rmse(s_pred, s_ref), stress_mae=mae(s_pred, s_ref))
        metrics["reference"]["stress_component_rms"] = float(np.sqrt(np.mean(s_ref**2)))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("energy (eV/atom)", e_ref, e_pred), ("force component (eV/Å)", f_ref.ravel(), f_pred.ravel())]
    if len(s_ref):
        panels.append(("stress component (GPa)", s_ref.ravel(), s_pred.ravel()))
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    for axis, (label, reference, predicted) in zip(np.atleast_1d(axes), panels, strict=True):
        low, high = float(min(reference.min(), predicted.min())), float(max(reference.max(), predicted.max()))
        axis.plot([low, high], [low, high], color="0.6", linewidth=1)
        axis.scatter(reference, predicted, s=6)
        axis.set_xlabel(f"reference {label}")
        axis.set_ylabel(f"predicted {label}")
    figure.suptitle(f"test set: E RMSE {metrics['energy_rmse']:.2f} meV/atom, F RMSE {metrics['force_rmse']:.1f} meV/Å")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    buffer.seek(0)
    return {"metrics": orm.Dict(metrics), "parity_plot": orm.SinglefileData(buffer, filename="parity.png")}


@calcfunction
def potential_file(potential: PacePotentialData) -> orm.SinglefileData:
    """The potential's pacemaker ``.yaml`` as a file node, the input of command-line steps (``pace_yaml2yace``)."""
    import io

    return orm.SinglefileData(io.BytesIO(potential.get_yaml().encode()), filename="potential.yaml")
