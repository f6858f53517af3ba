"""Real gracemaker (tensorpotential, CPU) through GraceTrainCalculation: a GRACE-FS fit with stress in the loss.

One fit of about 2 to 3 minutes on two cores (about 80 s of TensorFlow tracing, 40 s of SavedModel export and 30 s
of FS export are fixed costs): 30 strained and rattled EMT copper cells of 4 atoms. Against the spread of the data,
not against a second fit with stress weight 0, which would double the cost.
"""

import shutil

import numpy as np
import pytest
import yaml
from aiida.engine import run_get_node
from ase.units import GPa

from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation

pytestmark = [pytest.mark.real_pacemaker, pytest.mark.real_gracemaker]

PARAMETERS = {"seed": 1, "cutoff": 5.0, "fit": {"maxiter": 40}}


@pytest.fixture
def copper_sets():
    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    structures = copper_emt(30, repeat=1, strain=0.03, rattle=0.05, seed=3)
    return {
        "train": TrainingSetData(structures[:24]).store(),
        "test": TrainingSetData(structures[24:]).store(),
        "structures": structures,
    }


def test_real_grace_fit_learns_the_stress(installed_code, copper_sets):
    code = installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train")
    results, node = run_get_node(
        GraceTrainCalculation,
        code=code,
        training_set=copper_sets["train"],
        test_set=copper_sets["test"],
        parameters=PARAMETERS,
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    metrics = results["metrics"].get_dict()
    assert metrics["units"] == {"energy": "meV/atom", "force": "meV/Å per component", "stress": "GPa per component"}
    stress_rms = metrics["reference"]["test"]["stress_component_rms"]  # GPa
    test = metrics["test"]
    # The data's stress RMS is a few GPa (±3 % strain); a fit that learned the stress is well below it (measured:
    # 1.1 GPa against 3.5 GPa after 40 epochs; without the stress term the error is of the order of the RMS).
    assert 1.0 < stress_rms < 20.0, stress_rms
    assert test["stress_rmse"] < 0.5 * stress_rms, (test, stress_rms)
    assert test["energy_rmse"] < 30.0, test  # meV/atom: the reference energy (auto) took the constant away
    assert metrics["epochs"] == 40
    written = yaml.safe_load(node.outputs.retrieved.base.repository.get_object_content("input.yaml"))
    assert written["fit"]["loss"]["stress"]["weight"] > 0 and written["data"]["stress_units"] == "eV/A3"

    # The exported FS YAML (python-ace's GRACE-FS evaluator) predicts what gracemaker measured on the test set, with
    # ASE's stress sign and units: the metrics' eV/Å³ converted to GPa.
    potential = results["potential"]
    assert potential.base.attributes.get("model_kind") == "grace-fs" and potential.has_checkpoint
    calculator = potential.get_calculator()
    errors, energy_errors = [], []
    for atoms in copper_sets["structures"][24:]:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_stress() - atoms.get_stress())
        energy_errors.append((copy.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
    rmse = float(np.sqrt(np.mean(np.square(errors)))) / GPa
    assert rmse == pytest.approx(test["stress_rmse"], rel=0.05), (rmse, test["stress_rmse"])
    # Total energies: the E0 gracemaker subtracted (not in the FS YAML) are added back by the node.
    energy_rmse = 1000 * float(np.sqrt(np.mean(np.square(energy_errors))))
    assert energy_rmse == pytest.approx(test["energy_rmse"], rel=0.05, abs=0.5), (energy_rmse, test["energy_rmse"])


def test_real_active_set_of_a_grace_fs_potential(installed_code, copper_sets):
    """pace_activeset reads the FS YAML (PaceActivesetCalculation, unchanged): the result is a GRACE-FS potential
    with its checkpoint, E0 and the .asi, and its calculator grades the training data (γ)."""
    from aiida_mlip_trainer.calculations import PaceActivesetCalculation
    from aiida_mlip_trainer.data import GraceFSPotentialData
    from tests.conftest import FIXTURES

    fit = FIXTURES / "grace_train_success"
    names = ("model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001")
    reference = yaml.safe_load((fit / "input.yaml").read_text())["data"]["reference_energy"]
    potential = GraceFSPotentialData(
        fit / "FS_model.yaml", checkpoint={name: fit / name for name in names}, reference_energy=reference
    ).store()
    code = installed_code("pace_activeset", shutil.which("pace_activeset"), "mlip_trainer.pace_activeset")
    results, node = run_get_node(
        PaceActivesetCalculation, code=code, potential=potential, training_set=copper_sets["train"]
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    graded = results["potential"]
    assert isinstance(graded, GraceFSPotentialData) and graded.has_active_set and graded.has_checkpoint
    assert graded.reference_energy == reference
    calculator = graded.get_ace_calculator()
    gammas = []
    for atoms in copper_sets["structures"][:24]:
        copy = atoms.copy()
        copy.calc = calculator
        copy.get_potential_energy()
        gammas.append(calculator.results["gamma"].max())
    # The active set's own environments have γ = 1 exactly; the training data are nearly all interpolation (one of
    # the 24 cells was measured at γ = 3.9 with python-ace 0.4.0rc1's GRACE-FS evaluator: not explained yet).
    assert min(abs(gamma - 1.0) for gamma in gammas) < 1e-6, gammas
    assert sum(gamma <= 1.0 + 1e-6 for gamma in gammas) >= 0.9 * len(gammas), gammas
