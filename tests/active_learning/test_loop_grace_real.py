"""ActiveLearningWorkChain with trainer gracemaker, for real: EMT copper (4-atom cells), the ASE (EMT) oracle, real
gracemaker, pace_activeset, mlip-trainer-explore (GRACE-FS evaluator) and pace_select, two rounds. This is also the
real test of TrainingWorkChain with gracemaker: round 0 is a 40-epoch GRACE-FS fit with stress in the loss and a ZBL
baseline, checked as a user reads a training (active set, short-range check, validation); round 1 fine-tunes it
from its checkpoint for ``fine_tune_maxiter`` (5) epochs. Two fits: TensorFlow's fixed costs dominate (about 2
minutes each on two idle cores)."""

import shutil

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import GraceFSPotentialData, TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from tests.active_learning.test_loop_real import child

pytestmark = [pytest.mark.real_pacemaker, pytest.mark.real_gracemaker]

# Hot, short MD from one cell; gamma_collect low enough that the first potential finds frames to label in round 0.
EXPLORATION = {
    "temperatures": [600, 1200],
    "steps": 40,
    "timestep": 2.0,
    "sample_interval": 5,
    "gamma_collect": 1.5,
    "gamma_halt": 25.0,
    "max_frames": 4,
}
# The data and the first fit's settings of tests/integration/test_grace_train_real.py: 24 strained and rattled cells.
FIRST_FIT = {"grace": {"parameters": {"seed": 1, "fit": {"maxiter": 40}}}}


def test_two_rounds_with_gracemaker_and_a_zbl_baseline(loop_codes, installed_code):
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    codes = {name: code for name, code in loop_codes.items() if name not in ("pacemaker", "pace_yaml2yace")}
    codes["gracemaker"] = installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train")
    structures = copper_emt(30, repeat=1, strain=0.03, rattle=0.05, seed=3)
    initial = TrainingSetData(structures[:24]).store()
    test_set = TrainingSetData(structures[24:]).store()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        initial,
        EXPLORATION,
        "fast",
        {"training": FIRST_FIT, "selection": {"max_structures": 2}},
        oracle=ase_oracle(codes["ase_oracle"], "emt"),
        trainer="gracemaker",
        test_set=test_set,
        validation_structures=test_set,
        explore_count=orm.Int(1),
        max_rounds=orm.Int(2),
        fine_tune_maxiter=orm.Int(5),
    )
    builder.training.physics_baseline = orm.Dict({"type": "zbl"})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"

    # Round 0, TrainingWorkChain with gracemaker: GRACE-FS with its active set and checkpoint, the ZBL baseline.
    first, second = child(node, "training_0"), child(node, "training_1")
    assert first.inputs.trainer.value == second.inputs.trainer.value == "gracemaker"
    potential = results["potentials"]["round_0"]
    assert isinstance(potential, GraceFSPotentialData) and potential.has_active_set and potential.has_checkpoint
    trained = first.outputs
    assert potential.baseline == trained.baseline.get_dict() and potential.baseline["type"] == "zbl"
    # What was fitted is the residual: the baseline subtracted from the labels.
    assert trained.training_set.base.attributes.get("baseline") == potential.baseline
    # The short-range check runs, on compressed fcc only: python-ace's GRACE-FS evaluator crashes on a dimer.
    short_range = trained.short_range.get_dict()
    assert short_range["all_repulsive"] is None and "dimers_not_scanned" in short_range, short_range
    assert short_range["pairs"]["Cu-Cu"]["fcc"]["energy_at_short"] > 0, short_range  # the ZBL wall, added back
    assert "core_repulsion" not in trained  # an ACE basis edit: not for GRACE-FS, said in the report
    metrics = trained.metrics.get_dict()
    stress_rms = metrics["reference"]["stress_component_rms"]  # GPa, of the test set's original labels
    # With the baseline added back the stress is learned (measured without a baseline: 1.1 against 3.5 GPa).
    assert metrics["stress_rmse"] < 0.5 * stress_rms, (metrics["stress_rmse"], stress_rms)
    assert metrics["energy_rmse"] < 30.0, metrics
    assert trained.training_metrics["epochs"] == 40
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(first))
    assert "core repulsion: not sized" in reports

    # Round 1 fine-tunes round 0's GRACE-FS potential from its checkpoint (gracemaker -p model.yaml -cn checkpoint),
    # for fine_tune_maxiter epochs, with the baseline of round 0.
    fits = [[n for n in chain.called if n.process_label == "GraceTrainCalculation"] for chain in (first, second)]
    assert all(len(found) == 1 and found[0].is_finished_ok for found in fits), fits
    # the held-out structures stay out of the fit: gracemaker would pick its checkpoint by its loss on them
    assert not any("test_set" in found[0].inputs for found in fits)
    assert second.inputs.previous_potential.pk == potential.pk
    assert fits[1][0].inputs.previous_potential.pk == potential.pk
    assert second.outputs.training_metrics["epochs"] == 5
    assert results["potential"].baseline == potential.baseline
    for final in (results["potentials"]["round_1"], results["potential"]):
        assert isinstance(final, GraceFSPotentialData) and final.has_active_set and final.has_checkpoint

    # Exploration ran the GRACE-FS evaluator and found frames; selection (pace_select on the FS basis, the active set
    # counted as covered) picked within the budget; the oracle labelled them; round 1 fitted the grown set.
    exploration = child(node, "exploration_0")
    assert exploration.inputs.potential.pk == potential.pk
    assert exploration.outputs.summary["num_candidates"] > 0
    selection = child(node, "selection_0")
    assert selection.inputs.potential.pk == potential.pk
    selected = selection.outputs.selected
    assert 0 < selected.num_structures <= 2
    labelled = child(node, "labeling_0").outputs.labelled
    assert labelled.num_structures == selected.num_structures and labelled.has_stress
    assert second.inputs.training_set.num_structures == initial.num_structures + labelled.num_structures

    # The validation γ of each round is the GRACE-FS potential's, and the held-out errors include the stress.
    assert "validation_gamma_0" in {link.link_label for link in node.base.links.get_outgoing().all()}
    assert "stress_rmse" in second.outputs.metrics.get_dict()
    curve = results["learning_curve"]
    assert curve.get_array("round").tolist() == [0, 1]
    assert curve.get_array("oracle_calls").tolist() == [0, labelled.num_structures]
