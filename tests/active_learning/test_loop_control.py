"""The control flow of ActiveLearningWorkChain without any job: an instantiated loop whose children are finished nodes
made here (with the outputs a real child has), its steps called one after the other, and `submit` replaced by a
recorder. One test per way the loop stops, and per failure exit (each asserted by label)."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine.utils import instantiate_process
from aiida.manage.manager import get_manager
from ase.build import bulk

from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from aiida_mlip_trainer.workflows.protocols import merge
from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
from aiida_mlip_trainer.workflows.training import TrainingWorkChain
from tests.conftest import FIXTURES, with_submit_recorder

CODES = ActiveLearningWorkChain.exit_codes
POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
ACTIVE_SET = FIXTURES / "pace_activeset_success" / "potential.asi"


def _child(process_label: str, exit_status: int = 0, message: str | None = None, **outputs: orm.Data):
    """A finished child as the loop sees it: a work chain node returning ``outputs`` (an exploration is a calculation
    node that created them)."""
    calculation = process_label == "ExplorationCalculation"
    node = orm.CalcJobNode() if calculation else orm.WorkChainNode()
    node.set_process_label(process_label)
    node.set_process_state("finished")
    node.set_exit_status(exit_status)
    node.set_exit_message(message)
    if calculation:
        for label, output in outputs.items():
            output.base.links.add_incoming(node, LinkType.CREATE, label)
        node.store()
        for output in outputs.values():
            output.store()
        return node
    node.store()
    for label, output in outputs.items():
        output.store()
        output.base.links.add_incoming(node, LinkType.RETURN, label)
    return node


def _cells(count: int, seed: int, labelled: bool = True) -> TrainingSetData:
    return TrainingSetData(copper_emt(count, seed=seed, repeat=1), labelled=labelled)


def _trained(force_rmse: float = 50.0, baseline: orm.Dict | None = None, active_set: bool = True):
    metrics = {
        "energy_rmse": 2.0,
        "force_rmse": force_rmse,
        "reference": {"energy_per_atom_std": 20.0, "force_component_rms": 500.0},
    }
    extra = {} if baseline is None else {"baseline": baseline}
    potential = PacePotentialData(POTENTIAL, active_set=ACTIVE_SET if active_set else None)
    return _child("TrainingWorkChain", potential=potential, metrics=orm.Dict(metrics), **extra)


def _explored(candidates: int, halted: int = 0, resume: int = 0):
    """An exploration of 4 trajectories (one per starting structure and temperature of the loop's 2 starts x 2
    temperatures): the first keeps every candidate; ``resume`` halted trajectories (from the second on) left a resume
    frame."""
    trajectories = [
        {
            "condition": "",
            "structure": t // 2,
            "temperature": [300.0, 900.0][t % 2],
            "pressure": None,
            "kept": [],
            "resume_step": 40 if 1 <= t <= resume else None,
        }
        for t in range(4)
    ]
    trajectories[0]["kept"] = list(range(0, 10 * candidates, 10))
    summary = {
        "max_gamma": 30.0 if halted else 7.0,
        "num_trajectories": 4,
        "num_halted": halted,
        "fraction_halted": halted / 4,
        "num_candidates": candidates,
        "num_resume": resume,
        "trajectories": trajectories,
    }
    outputs = {"summary": orm.Dict(summary), "candidates": _cells(max(candidates, 1), 7, False)}
    if resume:
        outputs["resume"] = _cells(resume, 11, False)
    return _child("ExplorationCalculation", **outputs)


def _labelled(labelled: int, failed: int, exit_status: int = 0, message: str | None = None):
    failures = orm.Dict({"failures": [], "num_labelled": labelled, "num_failed": failed})
    outputs = {"labelled": _cells(labelled, 9)} if labelled else {}
    return _child("LabelingWorkChain", exit_status, message, failures=failures, **outputs)


@pytest.fixture
def loop(loop_codes, copper_sets):
    """``factory(**inputs)``: the loop instantiated (inputs validated) and set up, its held-out set and starting
    structures prepared; ``process.submitted`` records what its steps submit, instead of submitting."""

    def factory(properties=None, **inputs):
        builder = ActiveLearningWorkChain.get_builder_from_protocol(
            loop_codes,
            inputs.pop("structures", copper_sets["initial"]),
            {"temperatures": [300, 900], "steps": 50},
            oracle=ase_oracle(loop_codes["ase_oracle"], "emt"),
            protocol="fast",
            overrides={"selection": {"max_structures": 3}},
            test_set=copper_sets["test"],
            **inputs,
        )
        if properties is not None:
            builder.training.properties = properties
        process = with_submit_recorder(builder)
        process.setup()
        if not process.needs_initial_labels():
            process.prepare_sets()
        return process

    return factory


def _round(process, trained, explored) -> None:
    """Train and explore, the children finished as given."""
    process.train()
    process.ctx.training = trained
    assert process.inspect_training() is None
    process.explore()
    process.ctx.exploration = explored
    assert process.inspect_exploration() is None


def _selected(count: int = 3):
    return _child("SelectionWorkChain", selected=_cells(count, 8, False), indices=orm.List(list(range(count))))


def _select_and_label(process, labelled) -> None:
    process.select()
    process.ctx.selection = _selected()
    assert process.inspect_selection() is None
    process.label()
    process.ctx.labeling = labelled
    assert process.inspect_labeling() is None
    process.next_round()


def _stopped(process, reason: str) -> None:
    """The loop stops, with exit status 0, and its summary says why."""
    assert not process.should_label() and not process.should_train()
    assert process.results() is None
    assert process.outputs["summary"]["stop_reason"] == reason


def test_stops_at_max_rounds(loop):
    process = loop(max_rounds=orm.Int(2))
    _round(process, _trained(), _explored(candidates=5))
    assert process.should_label()
    _select_and_label(process, _labelled(3, 0))
    assert process.ctx.round == 1 and process.should_train()
    assert process.ctx.data.num_structures == 10 + 3  # the initial structures (test_set given) and the new labels
    _round(process, _trained(), _explored(candidates=5))
    _stopped(process, "max_rounds (2) reached")
    assert process.outputs["learning_curve"].get_array("oracle_calls").tolist() == [0, 3]


@pytest.mark.parametrize(("force_rmse", "stops"), [(20.0, True), (25.0, True), (30.0, False)])
def test_converged_at_target_force_rmse(loop, force_rmse, stops):
    process = loop(target_force_rmse=orm.Float(25.0))
    _round(process, _trained(force_rmse), _explored(candidates=5))
    if stops:
        _stopped(process, f"converged in round 0: held-out force RMSE {force_rmse:.2f} meV/Å <= target 25.0")
    else:
        assert process.ctx.stop_reason is None and process.should_label()


def _with_properties(errors: dict[str, float]):
    """A trained round whose TrainingWorkChain also returned a property table with these relative errors."""
    trained = _trained()
    rows = [
        {"property": name, "unit": "", "potential": 1 + error, "reference": 1.0, "reference_relative_error": error}
        for name, error in errors.items()
    ]
    table = orm.Dict({"rows": rows, "md": {"stopped": None}}).store()
    table.base.links.add_incoming(trained, LinkType.RETURN, "property_table")
    return trained


@pytest.mark.parametrize(("b0_error", "stops"), [(0.03, True), (-0.05, True), (0.08, False)])
def test_converged_when_the_properties_meet_their_targets(loop, properties_code, b0_error, stops):
    """Every round's property table (from its TrainingWorkChain) is in the summary; the loop stops as converged when
    each property named in property_targets is within its relative error, and says which are not otherwise."""
    properties = {
        "job": {"code": properties_code, "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True)),
                "parameters": orm.Dict({"eos": {}})},
        "labeling": {"oracle": ase_oracle(properties_code, "emt")},
    }  # fmt: skip
    process = loop(properties=properties, property_targets=orm.Dict({"a0": 0.01, "B0": 0.05, "md": True}))
    _round(process, _with_properties({"a0": 0.002, "B0": b0_error}), _explored(candidates=5))
    if stops:
        _stopped(process, "converged in round 0: properties within their targets (B0, a0, md)")
        assert process.outputs["summary"]["rounds"][0]["properties"]["B0"]["reference_relative_error"] == b0_error
    else:
        assert process.ctx.stop_reason is None and process.should_label()


@pytest.mark.parametrize(
    ("targets", "properties", "message"),
    [
        ({"B0": 0.05}, False, "give training.properties"),
        ({"B0": 0}, True, r"'B0' must be a relative error in \(0, 10\]"),
        ({"md": 1}, True, "'md' must be true"),
        ({}, True, "property_targets is empty"),
    ],
)
def test_property_targets_are_checked_before_any_job(loop, properties_code, targets, properties, message):
    given = {
        "job": {"code": properties_code, "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True)),
                "parameters": orm.Dict({"eos": {}})},
        "labeling": {"oracle": ase_oracle(properties_code, "emt")},
    }  # fmt: skip
    with pytest.raises(ValueError, match=message):
        loop(properties=given if properties else None, property_targets=orm.Dict(targets))


def test_stops_when_the_oracle_budget_is_spent(loop):
    """The selection is cut to the calls left (2 of a budget of 3 structures); a failed label is a call paid for."""
    process = loop(max_oracle_calls=orm.Int(2), max_rounds=orm.Int(5))  # the budget ends the loop, not the rounds
    _round(process, _trained(), _explored(candidates=5))
    _select_and_label(process, _labelled(1, 1))
    (selection_class, selection), (labeling_class, _) = process.submitted[2:]
    assert selection_class is SelectionWorkChain and labeling_class is LabelingWorkChain
    assert selection["max_structures"].value == 2
    assert process.ctx.oracle_calls == 2 and process.should_train()
    _round(process, _trained(), _explored(candidates=5))
    _stopped(process, "max_oracle_calls (2) spent")


def test_exploration_without_candidates_or_halts_converges(loop):
    process = loop()
    _round(process, _trained(), _explored(candidates=0, halted=0))
    _stopped(process, "converged in round 0: no frame reached gamma_collect and no trajectory halted")


def test_selection_that_finds_nothing_converges(loop):
    """SelectionWorkChain's ERROR_NOTHING_SELECTED (no frame extends the active set) is convergence, not a failure:
    nothing is labelled and the loop ends with exit status 0."""
    process = loop()
    _round(process, _trained(), _explored(candidates=5))
    process.select()
    status = SelectionWorkChain.exit_codes.ERROR_NOTHING_SELECTED.status
    process.ctx.selection = _child("SelectionWorkChain", status, "nothing was selected: round 1: no structure left")
    assert process.inspect_selection() is None
    assert process.label() is None and process.inspect_labeling() is None
    assert [cls for cls, _ in process.submitted] == [TrainingWorkChain, ExplorationCalculation, SelectionWorkChain]
    _stopped(
        process,
        "converged in round 0: no frame extends the active set (nothing was selected: round 1: no structure left)",
    )


def test_exploration_halted_before_any_frame_is_an_exit_code_with_the_outputs(loop):
    process = loop()
    _round(process, _trained(), _explored(candidates=0, halted=3))
    assert not process.should_label()
    exit_code = process.results()
    assert exit_code.status == CODES.ERROR_NOTHING_TO_LABEL.status
    assert "round 0: exploration halted (3 trajectories)" in exit_code.message
    assert process.outputs["potential"].pk == process.ctx.training.outputs.potential.pk


def test_fine_tuning_keeps_the_baseline_output_of_the_first_fit(loop):
    process = loop(max_rounds=orm.Int(3))
    derived = orm.Dict({"type": "zbl", "params": {"Cu-Cu": {"inner_cutoff": 1.8, "cutoff": 2.4}}})
    first = _trained(baseline=derived)
    _round(process, first, _explored(candidates=5))
    _select_and_label(process, _labelled(3, 0))
    process.train()
    inputs = process.submitted[-1][1]
    assert inputs["previous_potential"].pk == first.outputs.potential.pk
    assert inputs["physics_baseline"].pk == derived.pk


@pytest.mark.parametrize("fine_tune", [True, False])
def test_fine_tunes_run_fine_tune_maxiter_iterations_and_the_first_fit_its_own(loop, fine_tune):
    """The first fit keeps the training parameters' maxiter; each fine-tune after it runs ``fine_tune_maxiter``, its
    parameters made by the calcfunction with_maxiter from the first fit's (in the graph); without fine_tune every fit
    keeps its own."""
    process = loop(max_rounds=orm.Int(3), fine_tune=orm.Bool(fine_tune), fine_tune_maxiter=orm.Int(7))
    _round(process, _trained(), _explored(candidates=5))
    _select_and_label(process, _labelled(3, 0))
    process.train()
    (_, first), (_, second) = (call for call in process.submitted if call[0] is TrainingWorkChain)
    given = first["training"]["pace"]["parameters"]
    assert given.get_dict()["fit"]["maxiter"] == process.inputs.training.training.pace.parameters["fit"]["maxiter"]
    parameters = second["training"]["pace"]["parameters"]
    assert ("previous_potential" in second) is fine_tune
    if not fine_tune:
        assert parameters.pk == given.pk
        return
    assert parameters.get_dict() == merge(given.get_dict(), {"fit": {"maxiter": 7}})
    creator = parameters.base.links.get_incoming(link_type=LinkType.CREATE).one().node
    assert creator.process_label == "with_maxiter"
    assert creator.base.links.get_incoming().get_node_by_label("parameters").pk == given.pk


def _fail_training(process):
    process.ctx.training = _child("TrainingWorkChain", 420, "the training failed: the loss stayed NaN")
    return process.inspect_training()


def _fail_exploration(process):
    process.ctx.training = _trained()
    assert process.inspect_training() is None
    process.ctx.exploration = _child("ExplorationCalculation", 300, "the explore script crashed")
    return process.inspect_exploration()


def _fail_selection(process):
    _round(process, _trained(), _explored(candidates=5))
    status = SelectionWorkChain.exit_codes.ERROR_SELECT_JOB_FAILED.status
    process.ctx.selection = _child("SelectionWorkChain", status, "a pace_select job failed")
    return process.inspect_selection()


def _fail_labeling(process):
    _round(process, _trained(), _explored(candidates=5))
    process.ctx.selection = _selected()
    assert process.inspect_selection() is None
    status = LabelingWorkChain.exit_codes.ERROR_ALL_LABELS_FAILED.status
    process.ctx.labeling = _labelled(0, 3, status, "no structure of the pool got a label")
    exit_code = process.inspect_labeling()
    assert process.ctx.oracle_calls == 3  # the failed calls were paid for
    return exit_code


@pytest.mark.parametrize(
    ("fail", "label", "message"),
    [
        (_fail_training, "ERROR_TRAINING_FAILED", "round 0: the training failed: [420] the training failed: the loss"),
        (_fail_exploration, "ERROR_EXPLORATION_FAILED", "round 0: the exploration failed: [300] the explore script"),
        (_fail_selection, "ERROR_SELECTION_FAILED", "round 0: the selection failed: [{status}] a pace_select job"),
        (_fail_labeling, "ERROR_LABELING_FAILED", "round 0: no selected structure got a label: no structure of the"),
    ],
    ids=["training", "exploration", "selection", "labeling"],
)
def test_a_failed_child_is_the_loop_exit_code_with_its_message(loop, fail, label, message):
    exit_code = fail(loop())
    assert exit_code.status == getattr(CODES, label).status
    status = SelectionWorkChain.exit_codes.ERROR_SELECT_JOB_FAILED.status
    assert exit_code.message.startswith(message.format(status=status))


def test_a_potential_without_active_set_is_an_exit_code_not_an_exploration(loop):
    """TrainingWorkChain returns its potential without an active set when pace_activeset's is singular (too few
    distinct environments for the basis): the loop stops there with its exit code, instead of launching an
    exploration that refuses the potential (an exception, the loop excepted)."""
    process = loop()
    process.train()
    process.ctx.training = _trained(active_set=False)
    exit_code = process.inspect_training()
    assert exit_code.status == CODES.ERROR_POTENTIAL_WITHOUT_ACTIVE_SET.status
    assert exit_code.message.startswith("round 0: the potential has no active set")
    assert process.outputs["potentials"]["round_0"].pk == process.ctx.training.outputs.potential.pk


def test_initial_labelling_that_labels_nothing_is_an_exit_code(loop):
    process = loop(structures=_cells(4, 3, labelled=False).store())
    assert process.needs_initial_labels()
    process.label_initial()
    assert process.submitted[0][1]["pool"].pk == process.inputs.structures.pk
    status = LabelingWorkChain.exit_codes.ERROR_ALL_LABELS_FAILED.status
    process.ctx.initial_labeling = _labelled(0, 4, status, "no structure of the pool got a label")
    exit_code = process.inspect_initial()
    assert exit_code.status == CODES.ERROR_INITIAL_LABELING_FAILED.status
    assert exit_code.message.endswith("no structure of the pool got a label")


def test_a_qe_oracle_is_checked_on_the_loops_structures(loop_codes, installed_code, copper_sets):
    """aiida-quantumespresso compares the pseudopotentials with the structure's kinds: the loop checks its oracle on
    its own structures (the labeling namespace has no pool), so a silicon QE oracle passes on silicon and is refused,
    before any job, on copper."""
    import pathlib

    from ase.build import bulk

    from aiida_mlip_trainer.formats.quantumespresso import PSEUDO_FOLDER, PSEUDOPOTENTIALS
    from aiida_mlip_trainer.oracles import qe_oracle

    if not all((pathlib.Path(PSEUDO_FOLDER) / name).is_file() for name, _, _ in PSEUDOPOTENTIALS.values()):
        pytest.skip("no UPF files: scripts/qe.sh installs Debian's quantum-espresso-data as root")
    oracle = qe_oracle(installed_code("fake-pw", "/bin/true", "quantumespresso.pw"), ["Si"])
    cells = []
    for index in range(4):
        atoms = bulk("Si", "diamond", a=5.43)
        atoms.rattle(0.05, seed=index)
        cells.append(atoms)
    silicon = TrainingSetData(cells, labelled=False).store()

    def launch(structures, **inputs):
        builder = ActiveLearningWorkChain.get_builder_from_protocol(
            loop_codes, structures, {"temperatures": [300], "steps": 50}, "fast", oracle=oracle, **inputs
        )
        return instantiate_process(get_manager().get_runner(), builder)

    assert launch(silicon, test_fraction=orm.Float(0.25)).node.is_stored
    with pytest.raises(ValueError, match=r"labeling: the oracle inputs do not fit .*\{'Si'\} vs \{'Cu'\}"):
        launch(copper_sets["initial"], test_set=copper_sets["test"])


def _validation(*extrapolating: str, max_gamma: float = 8.0) -> orm.Dict:
    """What validation_gamma returns, for the loop's gate."""
    return orm.Dict(
        {"max_gamma": max_gamma, "median_gamma": 2.0, "extrapolating": list(extrapolating), "gamma": [], "names": []}
    ).store()


@pytest.mark.parametrize("blind", [True, False], ids=["a validation structure extrapolates", "none does"])
def test_the_validation_gamma_gate(loop, blind):
    """An exploration that finds nothing converges only when no validation structure is at or above gamma_collect;
    otherwise the loop says so, explores again with the same potential (no new data, no new fit) and stops at a
    budget, not as converged."""
    process = loop(max_rounds=orm.Int(2))
    process.train()
    process.ctx.training = _trained()
    process.ctx.validation = _validation("Cu_slab@111") if blind else _validation(max_gamma=3.0)
    assert process.inspect_training() is None
    process.explore()
    process.ctx.exploration = _explored(candidates=0, halted=0)
    assert process.inspect_exploration() is None
    if not blind:
        _stopped(process, "converged in round 0: no frame reached gamma_collect and no trajectory halted")
        assert process.outputs["summary"]["converged"] is True
        return
    assert process.should_train() and not process.should_label()
    process.next_round()
    submitted = len(process.submitted)
    process.train()  # no new data: no fit
    assert len(process.submitted) == submitted and process.inspect_training() is None
    assert process.outputs["potentials"]["round_1"].pk == process.outputs["potentials"]["round_0"].pk
    process.explore()
    assert process.submitted[-1][1]["parameters"]["seed"] == 43  # explored again, anew
    process.ctx.exploration = _explored(candidates=0, halted=0)
    assert process.inspect_exploration() is None
    _stopped(process, "max_rounds (2) reached")
    summary = process.outputs["summary"].get_dict()
    assert summary["converged"] is False
    assert summary["notes"][0].startswith(
        "round 0: not converged although no frame reached gamma_collect and no trajectory halted: 1 validation "
        "structure(s) at or above gamma_collect (largest γ 8.00)"
    )
    assert summary["rounds"][0]["validation"] == {
        "max_gamma": 8.0,
        "median_gamma": 2.0,
        "extrapolating": ["Cu_slab@111"],
    }


def test_halted_trajectories_resume_and_generators_and_picks_are_in_the_summary(loop):
    """Round 0's halted trajectories left resume frames: round 1 starts from the given structures, each generator's
    and those frames; the summary says where each round started and how its picks spread."""
    generators = [{"type": "vacancy", "seed": 3}, {"type": "strain", "strains": [-0.05, 0.05]}]
    process = loop(max_rounds=orm.Int(2), explore_count=orm.Int(1), generators=orm.List(generators))
    given = process.ctx.explore_from.num_structures
    _round(process, _trained(), _explored(candidates=5, halted=2, resume=2))
    resume = process.ctx.exploration.outputs.resume
    first = process.submitted[1][1]["structures"]
    assert first.num_structures == given * 4  # given, one vacancy cell, two strained cells
    assert first.get_arrays()["natoms"].tolist() == [32, 31, 32, 32]
    _select_and_label(process, _labelled(3, 0))
    process.train()
    process.ctx.training = _trained()
    assert process.inspect_training() is None
    process.explore()
    starts = process.submitted[-1][1]["structures"]
    names = list(starts.get_arrays()["names"])
    assert names[-2:] == list(resume.get_arrays()["names"])  # the resume frames come back as starts
    # each continues its own halted trajectory only (round 0's second and third: 900 K, then 300 K), not all four
    assert process.submitted[-1][1]["parameters"]["resume_trajectories"] == [
        {"structure": 4, "condition": "", "temperature": 900.0, "pressure": None},
        {"structure": 5, "condition": "", "temperature": 300.0, "pressure": None},
    ]
    assert np.array_equal(starts.get_arrays()["positions"][-8:], resume.get_arrays()["positions"])
    # the resume frames link to round 1's starting structures in the graph
    assert starts.creator.inputs.resume.pk == resume.pk
    process.ctx.exploration = _explored(candidates=5)
    assert process.inspect_exploration() is None
    _stopped(process, "max_rounds (2) reached")
    rows = process.outputs["summary"]["rounds"]
    assert rows[0]["starts"] == {"generated_00_vacancy": 1, "generated_01_strain": 2, "given": 1}
    assert rows[1]["starts"] == {"generated_00_vacancy": 1, "generated_01_strain": 2, "given": 1, "resume": 2}
    picks = rows[0]["picks"]  # the first trajectory (the given structure at 300 K) kept every candidate
    assert picks["num_picked"] == 3 and picks["num_pool"] == 5
    assert picks["by_temperature"] == {"300": 3} and picks["by_origin"] == {"given": 3}
    assert picks["pool_by_condition"] == {"default": 5}
