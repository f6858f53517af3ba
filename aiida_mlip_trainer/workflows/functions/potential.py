"""Calcfunctions of the fitted potential: one deployable node, its errors on held-out data, its file."""

from __future__ import annotations

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ...data.pace_potential import PacePotentialData
from ...data.training_set import TrainingSetData

__all__ = ("assemble_potential", "png_file", "potential_file", "validate_potential")


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


@calcfunction
def validate_potential(potential: PacePotentialData, test_set: TrainingSetData) -> dict:
    """Errors of the potential as it will be used (ACE plus its baseline) on a held-out test set with the original
    labels: energy (meV/atom), forces (meV/Å per component) and, when the set has stresses, stress (GPa), each next
    to the spread of the reference data. Returns ``metrics`` (Dict) and ``parity_plot`` (a PNG, SinglefileData)."""
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
    return {"metrics": orm.Dict(metrics), "parity_plot": png_file(figure, "parity.png")}


@calcfunction
def potential_file(potential: PacePotentialData) -> orm.SinglefileData:
    """The potential's pacemaker ``.yaml`` as a file node, the input of command-line steps (``pace_yaml2yace``)."""
    import io

    return orm.SinglefileData(io.BytesIO(potential.get_yaml().encode()), filename="potential.yaml")
