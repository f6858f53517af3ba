"""Calcfunctions of delta learning: the residual set on a physical baseline, the baseline derived from the data,
and the short-range check of a fitted potential.

Used by :class:`~aiida_mlip_trainer.workflows.training.TrainingWorkChain`; the physics (no AiiDA) is in
:mod:`aiida_mlip_trainer.physics.baselines` and :mod:`aiida_mlip_trainer.physics.short_range`."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, calcfunction

from ...data.pace_potential import PacePotentialData
from ...data.training_set import TrainingSetData

__all__ = ("check_short_range", "derive_baseline", "subtract_baseline")


@calcfunction
def subtract_baseline(training_set: TrainingSetData, baseline: orm.Dict) -> TrainingSetData | ExitCode:
    """The residual training set: energies, forces and stresses minus those of the physical ``baseline``.

    This is what a delta-learned potential is fitted on; the graph then shows it. The residual set records the
    baseline in its ``baseline`` attribute, and a potential fitted on it carries the same baseline, which its
    ASE calculator and its LAMMPS lines add back.
    """
    from ...physics.baselines import BaselineError, evaluate_baseline, validate_baseline

    spec = validate_baseline(baseline.get_dict())
    if not training_set.labelled:
        raise ValueError("subtract_baseline needs a labelled training set (energies and forces)")
    if training_set.base.attributes.get("baseline", None) is not None:
        raise ValueError("this training set is already a residual on a baseline: subtract from the original labels")
    arrays = training_set.get_arrays()
    try:
        values = evaluate_baseline(spec, training_set.to_atoms())
    except BaselineError as error:  # e.g. overlapping atoms: a property of the data, recorded as a failed step
        return ExitCode(230, f"the baseline cannot be evaluated on the training set: {error}")
    residual = dict(arrays)
    residual["energy"] = arrays["energy"] - values["energy"]
    residual["forces"] = arrays["forces"] - values["forces"]
    if "stress" in arrays:
        periodic = np.isfinite(values["stress"]).all(axis=1)
        residual["stress"] = np.where(periodic[:, None], arrays["stress"] - np.nan_to_num(values["stress"]), np.nan)
        if not periodic.all():
            # a stress label on a structure that is not periodic in 3D has no baseline stress to subtract
            index = int(np.flatnonzero(~periodic)[0])
            return ExitCode(231, f"structure {index} has a stress label but is not periodic in 3D")
    result = TrainingSetData(arrays=residual)
    result.base.attributes.set("baseline", spec)
    return result


@calcfunction
def derive_baseline(training_set: TrainingSetData, baseline: orm.Dict) -> orm.Dict:
    """The baseline with every window it leaves out derived from ``training_set`` (the original structures the
    potential will be fitted on): ``{"type": "zbl"}`` gets a window for every element pair of the set, a per-pair
    dict without ``ALL`` one for each pair it does not name, each from that pair's shortest distance in the data
    (:func:`aiida_mlip_trainer.physics.baselines.derive_baseline` gives the rule). A baseline with nothing missing
    comes back as it is (normalised). The result is the explicit spec that ``subtract_baseline`` and the potential
    then carry, so the graph shows which numbers a potential was fitted with and from which data they came."""
    from ...physics.baselines import derive_baseline as derive
    from ...physics.baselines import missing_pairs, validate_baseline

    spec = validate_baseline(baseline.get_dict())
    elements = training_set.elements
    if not missing_pairs(spec, elements):
        return orm.Dict(spec)
    return orm.Dict(derive(spec, training_set.pair_min_distances(), elements))


@calcfunction
def check_short_range(potential: PacePotentialData, training_set: TrainingSetData) -> dict:
    """Is the potential, as it is used (ACE plus its baseline), repulsive below each element pair's shortest distance
    in ``training_set`` (the structures it was fitted on)? Dimer scans for every pair of the potential's elements and
    compressed fcc for each element (:func:`aiida_mlip_trainer.physics.short_range.scan_short_range` says what is
    measured).

    A pair absent from the data is scanned around the sum of its covalent radii (``source`` says which). Returns
    ``report`` (Dict: ``all_repulsive``, ``not_repulsive``, per pair the verdicts, the ranges that do not rise, the
    well depth and the energy at half the shortest distance, and the baseline's window for the pair), ``curves``
    (ArrayData, one ``(n, 2)`` array per curve) and ``plot`` (a PNG, SinglefileData)."""
    import io

    from ...physics.baselines import default_pair_distance, pair_key, pair_parameters, validate_baseline
    from ...physics.short_range import plot_short_range, scan_short_range

    found = training_set.pair_min_distances()
    elements = sorted(potential.elements)
    distances, sources = {}, {}
    for index, a in enumerate(elements):
        for b in elements[index:]:
            key = pair_key(a, b)
            distances[key] = found.get(key, default_pair_distance(a, b))
            sources[key] = "data" if key in found else "covalent radii (absent from the data)"
    # python-ace's GRACE-FS evaluator crashes on a dimer or a lone atom: compressed fcc only, the isolated atoms
    # being the E0 the potential adds (a pair baseline is zero for a lone atom).
    grace = potential.base.attributes.get("model_kind", None) == "grace-fs"
    isolated = {element: potential.reference_energy.get(element, 0.0) for element in elements} if grace else None
    result = scan_short_range(potential.get_calculator(), distances, isolated_energies=isolated)
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
        "dimers not scanned (GRACE-FS)"
        if report["all_repulsive"] is None
        else "all pairs repulsive"
        if report["all_repulsive"]
        else f"NOT repulsive: {', '.join(report['not_repulsive'])}"
    )
    png = plot_short_range(result, title=f"below the shortest training distance: {verdict}")
    return {
        "report": orm.Dict(report),
        "curves": curves,
        "plot": orm.SinglefileData(io.BytesIO(png), filename="short_range.png"),
    }
