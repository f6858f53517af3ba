"""Calcfunctions of the fitted potential: one deployable node, its errors on held-out data, its file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import Process, calcfunction

from ...data.pace_potential import PacePotentialData
from ...data.training_set import TrainingSetData

__all__ = (
    "NOT_LEARNED_ENERGY_FRACTION",
    "NOT_LEARNED_FORCE_FRACTION",
    "assemble_potential",
    "fit_core_repulsion",
    "judge_learning",
    "not_learned_message",
    "png_file",
    "potential_file",
    "validate_potential",
    "validation_gamma",
)


@calcfunction
def assemble_potential(
    potential: PacePotentialData, yace: orm.SinglefileData, active_set: PacePotentialData | None = None
) -> PacePotentialData:
    """One deployable potential: the fitted ``.yaml``, its LAMMPS ``.yace``, the ``.asi`` active set (taken from
    ``active_set``, the same potential with its active set attached) and the baseline."""
    from ...data.pace_potential import ASI_FILENAME

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


@calcfunction
def fit_core_repulsion(potential: PacePotentialData) -> dict:
    """The fitted ``potential`` with the core repulsion of each pair that the plugin gave one (a pair whose ZBL
    baseline climbs less than the wall across its window, :func:`~aiida_mlip_trainer.physics.baselines.core_repulsion`)
    sized to what the fit made of the ACE part, by the rule ``core_over_ace``
    (:func:`~aiida_mlip_trainer.physics.baselines.core_over_ace`): the core's dimer energy at the pair's shortest
    training distance ``d`` is at least the basis's largest rank times what the ACE part gives back across
    ``[r_in - delta_in, r_in]``, and never below the prefactor from ZBL's climb; and the switch ``delta_in`` narrowed
    until the core takes over before ACE's own slope at ``d`` leaves a dip deeper than ``ONSET_DIP`` (1 meV)
    (:func:`~aiida_mlip_trainer.formats.basis.size_core_repulsion`). Nothing changes where the data are (``r_in``
    stays ``d``: the core is switched off from ``d`` on), so the fit's errors are the same.

    Returns ``potential`` (a new node: the ``.yaml`` with the new prefactors and switches, the same baseline) and
    ``report`` (a Dict: per pair ``old``/``new`` prefactor, ``distance`` d (Å), ``give_back`` (eV), ``rank``,
    ``old_delta_in``/``new_delta_in`` (Å) and ``onset_dip``/``new_onset_dip`` (eV); ``rule``). A core the user set
    in the parameters (its block keeps the baseline's whole window) is left alone."""
    import pathlib
    import tempfile

    from pyace import BBasisConfiguration

    from ...formats.basis import size_core_repulsion
    from ...physics.baselines import core_repulsion, core_switch_width, pair_key, pair_parameters

    baseline = potential.baseline
    with tempfile.TemporaryDirectory() as tmp:
        config = BBasisConfiguration(str(potential.write_files(tmp)["yaml"]))
    floors = {}
    if baseline is not None and baseline["type"] == "zbl":
        for block in config.funcspecs_blocks:
            elements = list(block.elements_vec)
            if len(elements) != 2:
                continue
            window = pair_parameters(baseline, *elements)
            ours = core_repulsion(*elements, window["inner_cutoff"], window["cutoff"])
            if (
                ours is not None
                and math.isclose(block.r_in, window["cutoff"])
                and math.isclose(block.delta_in, core_switch_width(window["cutoff"]))
            ):
                floors[pair_key(*elements)] = ours[0]
    sized, pairs = size_core_repulsion(config, floors)
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "potential.yaml"
        sized.save(str(path))
        yaml_bytes = path.read_bytes()
    for pair, entry in pairs.items():
        Process.current().report(
            f"core repulsion {pair}: prefactor {entry['old']:.4g} -> {entry['new']:.4g}, switch delta_in "
            f"{entry['old_delta_in']:.4g} -> {entry['new_delta_in']:.4g} Å (the ACE part gives back "
            f"{entry['give_back']:.3g} eV below d = {entry['distance']:.3f} Å, rank {entry['rank']}; onset dip "
            f"{entry['onset_dip'] * 1000:.1f} -> {entry['new_onset_dip'] * 1000:.1f} meV)"
        )
    return {
        "potential": PacePotentialData(yaml_bytes, baseline=baseline, fitted_with=potential.fitted_with),
        "report": orm.Dict({"rule": "core_over_ace", "pairs": pairs}),
    }


def png_file(figure, filename: str) -> orm.SinglefileData:
    """A matplotlib ``figure`` as a PNG file node named ``filename`` (laid out tightly, 100 dpi); the figure is
    closed."""
    import io

    import matplotlib.pyplot as plt

    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    buffer.seek(0)
    return orm.SinglefileData(buffer, filename=filename)


# Below this many held-out structures an error estimate is too rough to read like the others (an energy RMSE over a
# handful of numbers): the metrics then carry a `warning`, which the calcfunction also reports.
MIN_TEST_STRUCTURES = 10

# When a fit has not learned its data. Predicting the test set's mean energy per atom for every structure gives an
# energy RMSE equal to the spread (standard deviation) of those energies; predicting zero forces gives a force RMSE
# equal to their RMS. An error of half of either explains at most 3/4 of the variance (1 - 0.5²), where a usable
# potential is at a few per cent of it: such a fit has learned next to nothing the test set can see, whatever its
# training errors say. Deliberately lenient (it flags useless fits; it is not a quality target). At or above it
# counts as not learned.
NOT_LEARNED_ENERGY_FRACTION = 0.5
NOT_LEARNED_FORCE_FRACTION = 0.5


def _finite_or_none(value: Any) -> float | None:
    """A real number as a float (NaN and infinities kept), anything else (a bool, a string, a missing key) None: the
    metrics may come from a node of someone else's archive."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def judge_learning(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Whether a fit has learned, from its validation ``metrics`` (as :func:`validate_potential` makes them: energy
    RMSE in meV/atom and force RMSE in meV/Å next to the test set's ``reference`` energy spread and force RMS).

    Returns ``{"learned": ..., "not_learned_reasons": [...], "not_judged": [...]}``: ``learned`` is False when the
    energy RMSE is at least :data:`NOT_LEARNED_ENERGY_FRACTION` of the energy spread or the force RMSE at least
    :data:`NOT_LEARNED_FORCE_FRACTION` of the force RMS (or an error is not finite), with one sentence per reason;
    True when every criterion that can be judged passes; None when none can (``not_judged`` says why: a test set of
    one structure has no energy spread, one without forces no force RMS). Never raises, whatever the metrics hold.
    """
    if not isinstance(metrics, Mapping):
        metrics = {}
    reference = metrics.get("reference")
    if not isinstance(reference, Mapping):
        reference = {}
    criteria = (
        ("energy", "energy_rmse", "energy_per_atom_std", NOT_LEARNED_ENERGY_FRACTION, "meV/atom", "spread of the test "
         "energies per atom", "their mean"),
        ("force", "force_rmse", "force_component_rms", NOT_LEARNED_FORCE_FRACTION, "meV/Å", "RMS of the test forces",
         "zero forces"),
    )  # fmt: skip
    reasons, not_judged, judged = [], [], 0
    for name, error_key, reference_key, fraction, unit, against, naive in criteria:
        error, scale = _finite_or_none(metrics.get(error_key)), _finite_or_none(reference.get(reference_key))
        if error is None or scale is None:
            not_judged.append(f"{name}: the metrics have no {error_key} or reference {reference_key}")
            continue
        if not math.isfinite(error):
            judged += 1
            reasons.append(f"the test {name} RMSE is {error}")
            continue
        if not math.isfinite(scale) or scale <= 0:
            # one test structure (or identical ones) has no energy spread: nothing to compare the error with
            not_judged.append(
                f"{name}: the {against} is {scale:g} {unit}, so the {name} error cannot be judged against it"
            )
            continue
        judged += 1
        if error >= fraction * scale:
            reasons.append(
                f"test {name} RMSE {error:.4g} {unit} is at least {fraction:g} x the {against} ({scale:.4g} {unit}; "
                f"predicting {naive} would give {scale:.4g})"
            )
    learned = False if reasons else (True if judged else None)
    return {"learned": learned, "not_learned_reasons": reasons, "not_judged": not_judged}


def not_learned_message(judgement: Mapping[str, Any]) -> str:
    """One line that says why a fit has not learned (from :func:`judge_learning`) and what to do."""
    return (
        f"the potential has NOT LEARNED its data: {'; '.join(judgement['not_learned_reasons'])}. It is not fit for "
        "use: give more (or more varied) data, a larger basis or a longer fit (the 'fast' protocol is for trying a "
        "pipeline only)"
    )


@calcfunction
def validate_potential(potential: PacePotentialData, test_set: TrainingSetData) -> dict:
    """Errors of the potential as it will be used (ACE plus its baseline) on a held-out test set with the original
    labels: energy (meV/atom), forces (meV/Å per component) and, when the set has stresses, stress (GPa), each next
    to the spread of the reference data. Returns ``metrics`` (Dict) and ``parity_plot`` (a PNG, SinglefileData).

    ``metrics`` also say whether the fit has learned (:func:`judge_learning`): ``learned`` (False: an error at least
    half the spread of the data; None: cannot be judged), ``not_learned_reasons`` and ``not_judged``; a fit that has
    not learned is reported."""
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
        Process.current().report(metrics["warning"])
    judgement = judge_learning(metrics)
    metrics.update(judgement)
    if judgement["learned"] is False:
        Process.current().report(not_learned_message(judgement))
    for line in judgement["not_judged"]:
        Process.current().report(f"not judged: {line}")
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
    figure.suptitle(
        f"test set: E RMSE {metrics['energy_rmse']:.2f} meV/atom, F RMSE {metrics['force_rmse']:.1f} meV/Å"
        + (": NOT LEARNED" if judgement["learned"] is False else "")
    )
    return {"metrics": orm.Dict(metrics), "parity_plot": png_file(figure, "parity.png")}


@calcfunction
def potential_file(potential: PacePotentialData) -> orm.SinglefileData:
    """The potential's pacemaker ``.yaml`` as a file node, the input of command-line steps (``pace_yaml2yace``)."""
    import io

    return orm.SinglefileData(io.BytesIO(potential.get_yaml().encode()), filename="potential.yaml")


@calcfunction
def validation_gamma(potential: PacePotentialData, structures: TrainingSetData, gamma_collect: orm.Float) -> orm.Dict:
    """The extrapolation grade of the user's validation structures with ``potential`` and its active set (pyace's
    ``PyACECalculator``, as exploration evaluates it): ``gamma`` (the largest per-atom γ of each structure, in order),
    ``names``, ``max_gamma``, ``median_gamma``, ``gamma_collect`` and ``extrapolating`` (the names of those at or
    above ``gamma_collect``: a loop is not converged while any is)."""
    if not potential.has_active_set:
        raise ValueError("the potential has no active set (.asi): no extrapolation grade")
    calculator = potential.get_ace_calculator()
    grades = []
    for atoms in structures.to_atoms():
        atoms.calc = calculator
        atoms.get_potential_energy()
        grades.append(float(np.max(calculator.results["gamma"])))
    names = [str(name) for name in structures.get_arrays()["names"]]
    threshold = gamma_collect.value
    return orm.Dict(
        {
            "gamma": grades,
            "names": names,
            "max_gamma": max(grades),
            "median_gamma": float(np.median(grades)),
            "gamma_collect": threshold,
            "extrapolating": [name for name, grade in zip(names, grades, strict=True) if grade >= threshold],
        }
    )
