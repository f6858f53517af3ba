"""ActiveLearningWorkChain end to end through the daemon: EMT copper, the ASE (EMT) oracle, real pacemaker,
pace_select and pace_activeset, two rounds; the graph it leaves is checked link by link."""

import numpy as np
import pytest
from aiida import orm
from ase.build import bulk

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.functions.learning_curve import CURVE_COLUMNS
from tests.exploration.conftest import max_gamma
from tests.test_cli import invoke

pytestmark = pytest.mark.real_pacemaker

# The CP2K loop's exploration (with its own temperature and steps): hot, short MD from one near-equilibrium cell,
# gamma_collect low enough that the first, small potential finds frames to label in round 0, the halt threshold the
# documented 25.
EXPLORATION = {
    "temperatures": [300, 1200],
    "steps": 60,
    "timestep": 2.0,
    "sample_interval": 5,
    "gamma_collect": 1.5,
    "gamma_halt": 25.0,
    "max_frames": 6,
}
SMALL_FIT = {"training": {"pace": {"parameters": {"fit": {"maxiter": 40}}}, "max_iterations": 1}}
# The loop's overrides: the small fit for every round, three picks per round.
LOOP_OVERRIDES = {"training": SMALL_FIT, "selection": {"max_structures": 3}}
ORACLE_JOB = "aiida.calculations:mlip_trainer.ase_oracle"


def child(node: orm.WorkflowNode, link_label: str) -> orm.ProcessNode:
    """The process ``node`` called under ``link_label``."""
    (found,) = [link.node for link in node.base.links.get_outgoing(link_label_filter=link_label).all()]
    return found


def oracle_jobs(node: orm.ProcessNode) -> set[int]:
    """The pks of the oracle jobs that finished well under ``node``."""
    return {
        n.pk
        for n in node.called_descendants
        if isinstance(n, orm.CalcJobNode) and n.process_type == ORACLE_JOB and n.is_finished_ok
    }


# The loop's exploration protocol (a user file): two generators and two conditions, a mild one and a hot ramp.
# gamma_collect low enough that the first, small potential finds frames to label in round 0 (its training cells are
# barely rattled), the halt threshold low enough that it halts some trajectories (their resume frames start round 1),
# the collect band wide enough for picks.
PROTOCOL = {
    "generators": [{"type": "strain", "strains": [-0.05, 0.05]}, {"type": "vacancy", "count": 1, "seed": 4}],
    "exploration": {
        "steps": 40,
        "timestep": 2.0,
        "sample_interval": 5,
        "gamma_collect": 1.5,
        "gamma_halt": 6.0,
        "max_frames": 3,
        "conditions": [
            {"name": "mild", "temperatures": [300]},
            {"name": "ramp", "temperatures": [600], "ramp_to": 1800},
        ],
    },
}


def test_two_rounds_through_the_daemon(loop_codes, copper_sets, submit_and_await, tmp_path, properties_code):
    """Two rounds through the daemon, one loop for all of this (a real loop costs minutes): its exploration protocol
    (a user file) has two generators and two conditions, and it is given validation structures. The graph is checked
    link by link; round 0's halted trajectories come back as starting structures of round 1, the picks' spread over
    the conditions is in the summary, and every round reports the γ of a (111) slab and a vacancy cell it never saw."""
    import yaml
    from ase.build import fcc111

    from aiida_mlip_trainer.physics.generators import generate
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    path = tmp_path / "protocol.yaml"
    path.write_text(yaml.safe_dump(PROTOCOL))
    slab = fcc111("Cu", size=(2, 2, 4), vacuum=8.0)
    slab.pbc = True  # periodic, with vacuum along z: as pacemaker takes a slab
    slab.info["name"] = "cu111_slab"
    validation = TrainingSetData([slab, *generate(copper_emt(1, seed=5), {"type": "vacancy"})], labelled=False)
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        loop_codes,
        copper_sets["initial"],
        None,
        "fast",
        LOOP_OVERRIDES,
        exploration_protocol=path,
        oracle=ase_oracle(loop_codes["ase_oracle"], "emt"),
        test_set=copper_sets["test"],
        explore_count=orm.Int(1),
        max_rounds=orm.Int(2),
        validation_structures=validation.store(),
    )
    builder.training.short_range_check = orm.Str("warning")  # a 40-iteration fit: reported, not fatal
    # every round's potential gets its equation of state (no oracle here: the reference is tested elsewhere)
    builder.training.properties = {
        "job": {
            "code": properties_code,
            "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True)),
            "parameters": orm.Dict({"eos": {"points": 5}}),
        }
    }
    node = submit_and_await(builder, timeout=1800)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    outputs = node.outputs
    summary = outputs.summary.get_dict()

    # every round's potential is an output; the last one is `potential`
    assert set(outputs.potentials) == {"round_0", "round_1"}
    assert outputs.potential.pk == outputs.potentials.round_1.pk
    first, second = child(node, "training_0"), child(node, "training_1")
    assert first.outputs.potential.pk == outputs.potentials.round_0.pk
    assert second.outputs.potential.pk == outputs.potentials.round_1.pk
    # round 1 fine-tunes from round 0's potential; round 0 starts from scratch
    assert "previous_potential" not in first.inputs
    assert second.inputs.previous_potential.pk == outputs.potentials.round_0.pk
    # the fixed held-out set is the same for both fits, and is an output
    assert first.inputs.test_set.pk == second.inputs.test_set.pk == outputs.test_set.pk == copper_sets["test"].pk

    # exploration of round 0 found frames, selection picked within the budget, the oracle labelled them
    exploration, exploration_1 = child(node, "exploration_0"), child(node, "exploration_1")
    assert exploration.outputs.summary["num_candidates"] > 0
    assert exploration_1.inputs.parameters["seed"] == exploration.inputs.parameters["seed"] + 1
    selected = child(node, "selection_0").outputs.selected
    assert 0 < selected.num_structures <= 3
    labeling = child(node, "labeling_0")
    labelled = labeling.outputs.labelled
    assert labelled.num_structures == selected.num_structures == labeling.outputs.failures["num_labelled"]

    # the training set grows by the labelled structures; the final one is what round 1 was fitted on
    initial = copper_sets["initial"].num_structures
    assert first.inputs.training_set.pk == copper_sets["initial"].pk
    assert second.inputs.training_set.num_structures == initial + labelled.num_structures
    assert outputs.training_set.pk == second.inputs.training_set.pk
    names = list(outputs.training_set.get_arrays()["names"])
    assert names[:initial] == list(copper_sets["initial"].get_arrays()["names"])

    # each new training structure links back to the oracle job that labelled it
    jobs = oracle_jobs(labeling)
    assert len(jobs) == labelled.num_structures
    ancestors = orm.QueryBuilder()
    ancestors.append(TrainingSetData, filters={"id": outputs.training_set.pk}, tag="final")
    ancestors.append(orm.CalcJobNode, filters={"process_type": ORACLE_JOB}, with_descendants="final", project="id")
    assert {pk for (pk,) in ancestors.all()} == jobs
    structures = outputs.training_set.to_atoms()
    assert set(names[initial:]) == {orm.load_node(pk).inputs.structure.label for pk in jobs}
    for pk in jobs:  # the job's structure is the frame it labelled, and its energy the label in the training set
        job = orm.load_node(pk)
        atoms = structures[names.index(job.inputs.structure.label)]
        assert np.allclose(atoms.positions, job.inputs.structure.get_ase().positions)

    # the learning curve: one row per round, cumulative oracle calls, errors in meV, γ
    curve = outputs.learning_curve
    assert set(curve.get_arraynames()) == set(CURVE_COLUMNS)
    assert curve.get_array("round").tolist() == [0, 1]
    assert curve.get_array("oracle_calls").tolist() == [0, labelled.num_structures]
    assert curve.get_array("training_structures").tolist() == [initial, initial + labelled.num_structures]
    for k, fit in enumerate((first, second)):
        assert curve.get_array("force_rmse")[k] == pytest.approx(fit.outputs.metrics["force_rmse"])
        assert curve.get_array("energy_rmse")[k] == pytest.approx(fit.outputs.metrics["energy_rmse"])
    assert curve.get_array("max_gamma")[0] == pytest.approx(exploration.outputs.summary["max_gamma"])
    assert curve.get_array("max_gamma")[0] >= PROTOCOL["exploration"]["gamma_collect"]
    assert outputs.learning_curve_plot.get_content(mode="rb").startswith(b"\x89PNG")
    assert summary["units"] == {"energy_rmse": "meV/atom", "force_rmse": "meV/Å"}
    assert summary["oracle_calls"] == labelled.num_structures
    assert summary["stop_reason"] == "max_rounds (2) reached" or summary["stop_reason"].startswith(
        "converged in round 1"
    )

    # `learn status` shows the same curve, read from the processes the loop called
    status = invoke("learn", "status", node.pk)
    assert status.exit_code == 0, status.output
    rows = [line.split() for line in status.output.splitlines() if line.strip()[:1].isdigit()]
    assert [int(row[0]) for row in rows] == [0, 1]
    assert [int(row[1]) for row in rows] == curve.get_array("oracle_calls").tolist()
    assert [float(row[4]) for row in rows] == pytest.approx(curve.get_array("force_rmse").tolist(), abs=0.006)
    assert f"stopped: {summary['stop_reason']}" in status.output

    # the protocol: every generated set is a calcfunction's output, its generator (and seed) its input
    for index, spec in enumerate(PROTOCOL["generators"]):
        generator = child(node, f"generator_{index}")
        assert generator.inputs.generator.get_dict() == spec
    assert exploration.inputs.structures.num_structures == 4  # the drawn structure, two strained cells, a vacancy cell
    assert summary["rounds"][0]["starts"] == {"generated_00_strain": 2, "generated_01_vacancy": 1, "given": 1}

    # round 0 halted trajectories; each left its last sample below gamma_halt, which round 1 starts from
    halted = [t for t in exploration.outputs.summary["trajectories"] if t["halted"]]
    resumed = [t for t in halted if t["resume_step"] is not None]
    assert resumed and all(t["resume_step"] < t["halt_step"] for t in resumed)
    assert all(t["halt_step"] == 0 for t in halted if t["resume_step"] is None)  # halted at its start: no frame below
    resume = exploration.outputs.resume
    assert resume.num_structures == len(resumed) == summary["rounds"][1]["starts"]["resume"]
    starts = exploration_1.inputs.structures.get_arrays()
    assert np.array_equal(
        starts["positions"][-len(resume.get_arrays()["positions"]) :], resume.get_arrays()["positions"]
    )
    grades = max_gamma(outputs.potentials.round_0, resume.to_atoms())
    assert max(grades) < PROTOCOL["exploration"]["gamma_halt"]

    # the picks of round 0 pooled over both conditions, and their spread
    picks = summary["rounds"][0]["picks"]
    assert picks["num_picked"] == selected.num_structures > 0
    assert set(picks["pool_by_condition"]) <= {"mild", "ramp"}
    assert sum(picks["by_condition"].values()) == sum(picks["by_origin"].values()) == picks["num_picked"]

    # the validation γ of each round, as pyace gives it with that round's potential and active set
    for k in (0, 1):
        expected = max_gamma(outputs.potentials[f"round_{k}"], validation.to_atoms())
        reported = summary["rounds"][k]["validation"]
        assert reported["max_gamma"] == pytest.approx(max(expected), rel=1e-9)
        assert reported["median_gamma"] == pytest.approx(float(np.median(expected)), rel=1e-9)
    # each round's equation of state, from that round's potential, is in its row of the summary
    for k, fit in enumerate((first, second)):
        table = fit.outputs.property_table
        assert summary["rounds"][k]["properties"]["a0"]["potential"] == table["potential"]["eos"]["a0"]
        job = fit.base.links.get_outgoing(link_label_filter="properties").one().node
        assert job.inputs.job.potential.pk == outputs.potentials[f"round_{k}"].pk
        assert 3.4 < table["potential"]["eos"]["a0"] < 3.8  # fitted to EMT copper (3.59 Å)
    if summary["rounds"][1]["validation"]["extrapolating"]:
        assert summary["converged"] is False and not summary["stop_reason"].startswith("converged")


def silicon_cells(count: int, seed: int) -> list:
    """Unlabelled 8-atom diamond silicon cells, strained (±2 %) and rattled (0.05 Å)."""
    from ase.build import bulk

    rng = np.random.default_rng(seed)
    cells = []
    for k in range(count):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + np.diag(rng.uniform(-0.02, 0.02, 3))), scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        atoms.info["name"] = f"si8_{seed}_{k}"
        cells.append(atoms)
    return cells


CP2K_JOB = "aiida.calculations:cp2k"


@pytest.mark.real_cp2k
def test_learn_launch_runs_a_cp2k_labelled_round_through_the_daemon(
    loop_codes, cp2k_code, started_daemon_client, submit_and_await, tmp_path
):
    """`learn launch` (to the daemon, the default) with a YAML file and real DFT: CP2K through aiida-cp2k labels the
    unlabelled initial silicon cells, the first fit explores, its picks are labelled by CP2K and the second fit
    fine-tunes on them. DFT total energies (about -107 eV/atom) come back as total energies: the potential carries
    pacemaker's reference energy."""
    import yaml

    structures = TrainingSetData(silicon_cells(7, seed=3), labelled=False).store()
    spec = {
        "codes": {name: code.full_label for name, code in loop_codes.items() if name != "ase_oracle"},
        "structures": structures.uuid,
        "test_fraction": 0.3,
        "exploration": {**EXPLORATION, "temperatures": [900], "steps": 40},
        "protocol": "fast",
        "overrides": {"training": SMALL_FIT, "selection": {"max_structures": 2}},
        # Γ-point CP2K at 120 Ry: seconds per 8-atom cell; the physics of the labels is checked in tests/oracles.
        "oracle": {
            "type": "cp2k",
            "code": cp2k_code.full_label,
            "elements": ["Si"],
            "kpoint_distance": None,
            "cutoff": 120.0,
            "rel_cutoff": 30.0,
        },
        "explore_count": 1,
        "max_rounds": 2,
        "physics_baseline": {"type": "zbl"},  # windows from the data: DFT data has no short-range repulsion below it
    }
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = invoke("learn", "launch", path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("watch it: aiida-mlip-trainer learn status ")
    node = orm.load_node(int(result.output.split("ActiveLearningWorkChain<")[1].split(">")[0]))
    assert node.inputs.training.training.pace.parameters["fit"]["maxiter"] == 40  # the YAML's overrides arrived
    assert node.inputs.training.physics_baseline.get_dict() == {"type": "zbl"}
    node = submit_and_await(node, timeout=2400)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    outputs = node.outputs

    # every label is CP2K's: the initial cells first, then the picks of round 0; each links to its Cp2kCalculation
    initial, picked = child(node, "initial_labeling"), child(node, "labeling_0")
    assert initial.outputs.failures["num_labelled"] == 7
    assert 1 <= picked.outputs.failures["num_labelled"] <= 2
    jobs = {n.pk for n in node.called_descendants if n.process_type == CP2K_JOB and n.is_finished_ok}
    assert len(jobs) == 7 + picked.outputs.failures["num_labelled"]
    ancestors = orm.QueryBuilder()
    ancestors.append(TrainingSetData, filters={"id": outputs.training_set.pk}, tag="final")
    ancestors.append(orm.CalcJobNode, filters={"process_type": CP2K_JOB}, with_descendants="final", project="id")
    assert {pk for (pk,) in ancestors.all()} == jobs
    assert outputs.training_set.num_structures + outputs.test_set.num_structures == len(jobs)
    second = child(node, "training_1")
    assert second.inputs.previous_potential.pk == outputs.potentials.round_0.pk
    assert outputs.potential.baseline["type"] == "zbl" and second.outputs.short_range["all_repulsive"]

    # total energies: the fit subtracted pacemaker's reference energy (about the DFT energy per atom) and the
    # potential adds it back, so the held-out energy error is meV/atom, not the 10⁵ meV/atom of a raw fit
    (reference,) = outputs.potential.reference_energy.values()
    assert -115.0 < reference < -100.0, reference
    assert outputs.potentials.round_0.reference_energy == outputs.potential.reference_energy  # kept by fine-tuning
    curve = outputs.learning_curve
    assert curve.get_array("oracle_calls").tolist() == [7, 7 + picked.outputs.failures["num_labelled"]]
    assert np.all(curve.get_array("energy_rmse") < 500.0), curve.get_array("energy_rmse")  # meV/atom
    test_set = outputs.test_set.to_atoms()
    atoms = test_set[0].copy()
    atoms.calc = outputs.potential.get_calculator()
    assert abs(atoms.get_potential_energy() - test_set[0].get_potential_energy()) / len(atoms) < 0.5  # eV/atom
