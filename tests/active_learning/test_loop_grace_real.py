"""ActiveLearningWorkChain with trainer gracemaker, for real: EMT copper (4-atom cells), the ASE (EMT) oracle, real
gracemaker, pace_activeset, mlip-trainer-explore (GRACE-FS evaluator) and pace_select, two rounds. Two short GRACE-FS
fits (5 epochs: TensorFlow's fixed costs dominate, about 2 minutes each on two idle cores). Measured: 29 minutes
on the 2-core machine at a load average of 15 to 20 (2026-12-06); not yet measured on an idle machine."""

import shutil

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import GraceFSPotentialData, TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from tests.active_learning.test_loop_real import child

pytestmark = [pytest.mark.real_pacemaker, pytest.mark.real_gracemaker]

# Hot, short MD from one cell; gamma_collect low enough that a 5-epoch potential finds frames to label in round 0.
EXPLORATION = {
    "temperatures": [600, 1200],
    "steps": 40,
    "timestep": 2.0,
    "sample_interval": 5,
    "gamma_collect": 1.5,
    "gamma_halt": 25.0,
    "max_frames": 4,
}
SMALL_FIT = {"grace": {"parameters": {"seed": 1, "fit": {"maxiter": 5}}}}


def test_two_rounds_with_gracemaker(loop_codes, installed_code):
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    codes = {name: code for name, code in loop_codes.items() if name not in ("pacemaker", "pace_yaml2yace")}
    codes["gracemaker"] = installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train")
    initial = TrainingSetData(copper_emt(12, repeat=1, strain=0.03, rattle=0.05, seed=3)).store()
    test_set = TrainingSetData(copper_emt(4, repeat=1, strain=0.03, rattle=0.05, seed=4)).store()
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        initial,
        EXPLORATION,
        "fast",
        {"training": SMALL_FIT, "selection": {"max_structures": 2}},
        oracle=ase_oracle(codes["ase_oracle"], "emt"),
        trainer="gracemaker",
        test_set=test_set,
        validation_structures=test_set,
        explore_count=orm.Int(1),
        max_rounds=orm.Int(2),
    )
    builder.training.short_range_check = orm.Str("warning")  # a 5-epoch fit: reported, not fatal
    results, node = run_get_node(builder)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"

    first, second = child(node, "training_0"), child(node, "training_1")
    assert first.inputs.trainer.value == second.inputs.trainer.value == "gracemaker"
    fits = [[n for n in chain.called if n.process_label == "GraceTrainCalculation"] for chain in (first, second)]
    assert all(len(found) == 1 and found[0].is_finished_ok for found in fits), fits
    # Round 1 fine-tunes round 0's GRACE-FS potential from its checkpoint (gracemaker -p model.yaml -cn checkpoint).
    assert second.inputs.previous_potential.pk == results["potentials"]["round_0"].pk
    assert fits[1][0].inputs.previous_potential.pk == results["potentials"]["round_0"].pk
    for potential in (results["potentials"]["round_0"], results["potentials"]["round_1"], results["potential"]):
        assert isinstance(potential, GraceFSPotentialData) and potential.has_active_set and potential.has_checkpoint

    # Exploration ran the GRACE-FS evaluator and found frames; selection (pace_select on the FS basis, the active set
    # counted as covered) picked within the budget; the oracle labelled them; round 1 fitted the grown set.
    exploration = child(node, "exploration_0")
    assert exploration.inputs.potential.pk == results["potentials"]["round_0"].pk
    assert exploration.outputs.summary["num_candidates"] > 0
    selection = child(node, "selection_0")
    assert selection.inputs.potential.pk == results["potentials"]["round_0"].pk
    selected = selection.outputs.selected
    assert 0 < selected.num_structures <= 2
    labelled = child(node, "labeling_0").outputs.labelled
    assert labelled.num_structures == selected.num_structures and labelled.has_stress
    assert second.inputs.training_set.num_structures == initial.num_structures + labelled.num_structures

    # The validation γ of each round is the GRACE-FS potential's, and the held-out errors include the stress.
    assert "validation_gamma_0" in {link.link_label for link in node.base.links.get_outgoing().all()}
    metrics = second.outputs.metrics.get_dict()
    assert "stress_rmse" in metrics and metrics["reference"]["stress_component_rms"] > 0
    curve = results["learning_curve"]
    assert curve.get_array("round").tolist() == [0, 1]
    assert curve.get_array("oracle_calls").tolist() == [0, labelled.num_structures]
