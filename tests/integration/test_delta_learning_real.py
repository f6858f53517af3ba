"""Real pacemaker fits on residuals (labels minus a physical baseline), predicted as ACE + baseline."""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase import Atoms

from aiida_mlip_trainer.calcfunctions import subtract_baseline
from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.reference_data import copper_emt, shortest_distance

pytestmark = pytest.mark.real_pacemaker

# Deliberately not the LJ that made the labels (epsilon 10.4 meV, sigma 3.4 Å, cut at 7 Å): ACE learns the rest.
LJ = {"type": "lj", "params": {"epsilon": 0.008, "sigma": 3.3, "cutoff": 6.5}}


def force_rmse(potential, structures) -> float:
    """Force RMSE (meV/Å per component) of the potential's ASE calculator (ACE + baseline) against the labels."""
    calculator = potential.get_calculator()
    errors = []
    for atoms in structures:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_forces() - atoms.get_forces())
    return 1000 * float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def test_lj_residual_fit_reproduces_the_labels(pacemaker_code, argon_sets, argon_structures, small_parameters):
    baseline = orm.Dict(LJ)
    results, node = run_get_node(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=subtract_baseline(argon_sets["train"], baseline),
        test_set=subtract_baseline(argon_sets["test"], baseline),
        parameters=small_parameters,
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    potential = results["potential"]
    assert potential.baseline == baseline.get_dict()
    for label in ("train", "test"):
        reference_rms = 1000 * argon_sets[label].base.attributes.get("force_component_rms")
        rmse = force_rmse(potential, argon_structures[label])
        assert rmse < 0.10 * reference_rms, (label, rmse, reference_rms)
        # the residual-space error pacemaker reports is the same error: the baseline is exact
        assert rmse == pytest.approx(results["metrics"][label]["force_rmse"], rel=0.02, abs=0.02)


def test_zbl_residual_fit_is_repulsive_at_short_range(pacemaker_code, small_parameters):
    structures = copper_emt(20, seed=3)
    d_min = shortest_distance(structures)
    # ZBL switched off at the shortest training distance: it shapes the sum only where there are no data.
    zbl = orm.Dict({"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": round(d_min, 2)}})
    small_parameters["potential"]["bonds"]["ALL"].update(rcut=5.0, radparameters=[5.25])
    results, node = run_get_node(
        PaceTrainCalculation,
        code=pacemaker_code,
        training_set=subtract_baseline(TrainingSetData(structures[:16]).store(), zbl),
        test_set=subtract_baseline(TrainingSetData(structures[16:]).store(), zbl),
        parameters=small_parameters,
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    calculator = results["potential"].get_calculator()
    distances = np.linspace(d_min, 0.5, 60)
    energies = []
    for r in distances:
        dimer = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calculator
        energies.append(dimer.get_potential_energy())
    energies = np.array(energies)
    assert np.all(np.diff(energies) > 0), energies  # rises at every step as the distance shrinks
    assert energies[-1] > energies[0] + 100.0  # and strongly: hundreds of eV at 0.5 Å
