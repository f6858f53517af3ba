"""Real TrainingWorkChain with trainer gracemaker: GRACE-FS with stress in the loss, a ZBL baseline, the active set,
the short-range check and the validation, end to end (about 3 minutes on two cores: the fit's fixed TensorFlow costs
dominate). The data and the fit's settings are those of test_grace_train_real.py."""

import shutil

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import GraceFSPotentialData
from aiida_mlip_trainer.workflows import TrainingWorkChain

pytestmark = [pytest.mark.real_pacemaker, pytest.mark.real_gracemaker]


def test_real_training_work_chain_with_gracemaker_and_a_zbl_baseline(installed_code):
    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    structures = copper_emt(30, repeat=1, strain=0.03, rattle=0.05, seed=3)
    codes = {
        "gracemaker": installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train"),
        "pace_activeset": installed_code(
            "pace_activeset", shutil.which("pace_activeset"), "mlip_trainer.pace_activeset"
        ),
    }
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes,
        TrainingSetData(structures[:24]).store(),
        "fast",
        {"grace": {"parameters": {"seed": 1, "fit": {"maxiter": 40}}}},
        trainer="gracemaker",
        test_set=TrainingSetData(structures[24:]).store(),
        physics_baseline={"type": "zbl"},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"

    potential = results["potential"]
    assert isinstance(potential, GraceFSPotentialData) and potential.has_active_set and potential.has_checkpoint
    assert potential.baseline == results["baseline"].get_dict() and potential.baseline["type"] == "zbl"
    # What was fitted is the residual: the baseline subtracted from the labels.
    assert results["training_set"].base.attributes.get("baseline") == potential.baseline
    # The short-range check runs, on compressed fcc only: python-ace's GRACE-FS evaluator crashes on a dimer.
    short_range = results["short_range"].get_dict()
    assert short_range["all_repulsive"] is None and "dimers_not_scanned" in short_range, short_range
    assert short_range["pairs"]["Cu-Cu"]["fcc"]["energy_at_short"] > 0, short_range  # the ZBL wall, added back
    assert "core_repulsion" not in results  # an ACE basis edit: not for GRACE-FS, said in the report
    metrics = results["metrics"].get_dict()
    stress_rms = metrics["reference"]["stress_component_rms"]  # GPa, of the test set's original labels
    # With the baseline added back the stress is learned (measured without a baseline: 1.1 against 3.5 GPa).
    assert metrics["stress_rmse"] < 0.5 * stress_rms, (metrics["stress_rmse"], stress_rms)
    assert metrics["energy_rmse"] < 30.0, metrics
    assert results["training_metrics"]["epochs"] == 40
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(node))
    assert "core repulsion: not sized" in reports
