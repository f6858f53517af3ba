"""ActiveLearningWorkChain with trainer gracemaker, without any job: the builder, and the loop's steps on finished
children holding a GRACE-FS potential (the recorded gracemaker fit with its active set): every round trains with
gracemaker and fine-tunes the last GRACE-FS potential, exploration, selection (the active set counted as covered) and
the validation γ take it, and its outputs are GRACE-FS potentials. The real loop is in test_loop_grace_real.py."""

from __future__ import annotations

import shutil

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.data import GraceFSPotentialData, TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
from aiida_mlip_trainer.workflows.training import TrainingWorkChain
from tests.active_learning.test_loop_control import _child, _explored, _labelled, _selected
from tests.conftest import recorded_grace_potential, with_submit_recorder

EXPLORATION = {"temperatures": [300, 900], "steps": 50}


@pytest.fixture
def grace_loop_codes(loop_codes, installed_code):
    """The loop's codes with gracemaker in place of pacemaker and pace_yaml2yace."""
    codes = {name: code for name, code in loop_codes.items() if name not in ("pacemaker", "pace_yaml2yace")}
    codes["gracemaker"] = installed_code("gracemaker", shutil.which("gracemaker"), "mlip_trainer.grace_train")
    return codes


@pytest.fixture
def copper_4():
    """4-atom EMT copper cells: few environments, as the recorded GRACE-FS fit's data."""
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    return {
        "initial": TrainingSetData(copper_emt(10, repeat=1, strain=0.03, rattle=0.05, seed=3)).store(),
        "test": TrainingSetData(copper_emt(4, repeat=1, strain=0.03, rattle=0.05, seed=4)).store(),
    }


def _builder(codes, sets, **inputs):
    return ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        sets["initial"],
        EXPLORATION,
        "fast",
        {"selection": {"max_structures": 3}, **inputs.pop("overrides", {})},
        oracle=ase_oracle(codes["ase_oracle"], "emt"),
        test_set=sets["test"],
        trainer=inputs.pop("trainer", "gracemaker"),
        **inputs,
    )


def _trained_grace():
    metrics = {
        "energy_rmse": 2.0,
        "force_rmse": 50.0,
        "stress_rmse": 0.5,
        "reference": {"energy_per_atom_std": 20.0, "force_component_rms": 500.0, "stress_component_rms": 3.0},
    }
    return _child("TrainingWorkChain", potential=recorded_grace_potential(), metrics=orm.Dict(metrics))


def test_the_builder_trains_every_round_with_gracemaker(grace_loop_codes, copper_4):
    builder = _builder(grace_loop_codes, copper_4, overrides={"training": {"grace": {"parameters": {"seed": 7}}}})
    training = builder.training
    assert training.trainer.value == "gracemaker"
    assert training.grace.code.pk == grace_loop_codes["gracemaker"].pk
    assert training.grace.parameters["seed"] == 7 and training.grace.parameters["fit"]["maxiter"] == 40  # fast
    assert training.activeset.code.pk == grace_loop_codes["pace_activeset"].pk
    given = builder._inputs(prune=True)["training"]  # noqa: SLF001 - what the launch sees: empty namespaces pruned
    assert not {"training", "yace", "selection"} & set(given), given
    assert builder.selection.pace_select.code.pk == grace_loop_codes["pace_select"].pk  # the loop's selection
    assert builder.exploration.code.pk == grace_loop_codes["explore"].pk


def test_the_builder_needs_gracemaker_s_codes(grace_loop_codes, copper_4):
    codes = {name: code for name, code in grace_loop_codes.items() if name != "gracemaker"}
    with pytest.raises(ValueError, match="codes: give a code for gracemaker"):
        _builder(codes, copper_4)
    with pytest.raises(ValueError, match="trainer must be one of"):
        _builder(grace_loop_codes, copper_4, trainer="nequip")


def test_gracemaker_s_checks_refuse_bad_input_before_any_job(grace_loop_codes, copper_4):
    """The training namespace keeps TrainingWorkChain's gracemaker checks: a selection inside the fit (D-optimal
    selection there uses an ACE basis) and an unknown key of gracemaker's input are refused before any job."""
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    builder = _builder(grace_loop_codes, copper_4)
    builder.training.grace.parameters = orm.Dict({"fit": {"maxiter": 5, "learning_rate": 0.1}})
    with pytest.raises(ValueError, match=r"grace parameters: .*learning_rate"):
        run_get_node(builder)
    builder = _builder(grace_loop_codes, copper_4)
    builder.training.selection.max_structures = orm.Int(5)
    builder.training.selection.pace_select.code = grace_loop_codes["pace_select"]
    with pytest.raises(ValueError, match="selection with trainer gracemaker is not supported"):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_two_rounds_with_a_grace_fs_potential(grace_loop_codes, copper_4):
    builder = _builder(grace_loop_codes, copper_4, max_rounds=orm.Int(2), fine_tune_maxiter=orm.Int(3))
    process = with_submit_recorder(builder)
    process.setup()
    process.prepare_sets()

    process.train()
    process_class, inputs = process.submitted[-1]
    assert process_class is TrainingWorkChain and inputs["trainer"].value == "gracemaker"
    assert "previous_potential" not in inputs and "grace" in inputs and "training" not in inputs
    first_parameters = inputs["grace"]["parameters"]
    assert first_parameters["fit"]["maxiter"] == 40  # the first fit: the protocol's epochs
    first = _trained_grace()
    process.ctx.training = first
    assert process.inspect_training() is None
    potential = first.outputs.potential
    assert process.outputs["potentials"]["round_0"].pk == potential.pk

    process.explore()
    process_class, inputs = process.submitted[-1]
    assert process_class is ExplorationCalculation and inputs["potential"].pk == potential.pk
    process.ctx.exploration = _explored(candidates=5)
    assert process.inspect_exploration() is None

    process.select()
    process_class, inputs = process.submitted[-1]
    assert process_class is SelectionWorkChain
    assert inputs["potential"].pk == potential.pk and inputs["covered"].pk == process.ctx.data.pk
    process.ctx.selection = _selected()
    assert process.inspect_selection() is None
    process.label()
    process.ctx.labeling = _labelled(3, 0)
    assert process.inspect_labeling() is None
    process.next_round()

    process.train()  # round 1 fine-tunes the GRACE-FS potential with gracemaker
    process_class, inputs = process.submitted[-1]
    assert inputs["trainer"].value == "gracemaker" and inputs["previous_potential"].pk == potential.pk
    assert inputs["training_set"].num_structures == copper_4["initial"].num_structures + 3
    # What TrainingWorkChain checks: gracemaker fine-tunes a GRACE-FS potential that kept its checkpoint.
    assert isinstance(inputs["previous_potential"], GraceFSPotentialData)
    assert inputs["previous_potential"].has_checkpoint
    # fine_tune_maxiter sets gracemaker's epochs of the fine-tune (calcfunction with_maxiter), the rest as the first's
    parameters = inputs["grace"]["parameters"]
    assert parameters.get_dict() == {**first_parameters.get_dict(), "fit": {**first_parameters["fit"], "maxiter": 3}}
    assert parameters.creator.process_label == "with_maxiter"
    second = _trained_grace()
    process.ctx.training = second
    assert process.inspect_training() is None
    process.explore()
    process.ctx.exploration = _explored(candidates=0)
    assert process.inspect_exploration() is None
    assert process.results() is None
    assert isinstance(process.outputs["potential"], GraceFSPotentialData)
    assert process.outputs["potential"].pk == second.outputs.potential.pk


def test_the_validation_gamma_of_a_grace_fs_potential():
    """The loop's validation γ (calcfunction) with a GRACE-FS potential: its own evaluator and active set."""
    import numpy as np
    from ase.build import bulk

    from aiida_mlip_trainer.workflows.functions.potential import validation_gamma

    potential = recorded_grace_potential().store()
    cells = []
    for factor in (1.0, 0.96, 0.92):
        atoms = bulk("Cu", "fcc", a=3.6 * factor, cubic=True).repeat(2)
        atoms.info["name"] = f"Cu_{factor}"
        cells.append(atoms)
    calculator = potential.get_ace_calculator()
    expected = []
    for atoms in cells:
        copy = atoms.copy()
        copy.calc = calculator
        copy.get_potential_energy()
        expected.append(float(np.max(calculator.results["gamma"])))
    result = validation_gamma(potential, TrainingSetData(cells, labelled=False).store(), orm.Float(5.0)).get_dict()
    assert result["gamma"] == pytest.approx(expected, rel=1e-9)
    assert expected[0] < expected[1] < expected[2]  # more compressed, further from the data
    assert sorted(result["extrapolating"]) == sorted(
        atoms.info["name"] for atoms, gamma in zip(cells, expected, strict=True) if gamma >= 5.0
    )


def test_the_learning_yaml_takes_the_trainer(grace_loop_codes, copper_4, tmp_path):
    from aiida_mlip_trainer.cli.learning_yaml import LEARNING_INPUT_KEYS, learning_builder_from_yaml

    assert "trainer" in LEARNING_INPUT_KEYS
    spec = {
        "trainer": "gracemaker",
        "codes": {name: code.full_label for name, code in grace_loop_codes.items() if name != "ase_oracle"},
        "structures": copper_4["initial"].uuid,
        "test_set": copper_4["test"].uuid,
        "exploration": EXPLORATION,
        "oracle": {"type": "ase", "code": grace_loop_codes["ase_oracle"].full_label, "calculator": "emt"},
        "protocol": "fast",
    }
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(spec))
    builder = learning_builder_from_yaml(path)
    assert builder.training.trainer.value == "gracemaker"
    assert builder.training.grace.code.uuid == grace_loop_codes["gracemaker"].uuid
    path.write_text(yaml.safe_dump({**spec, "trainer": "nequip"}))
    with pytest.raises(ValueError, match="trainer must be one of pacemaker, gracemaker, got 'nequip'"):
        learning_builder_from_yaml(path)
    path.write_text(yaml.safe_dump({key: value for key, value in spec.items() if key != "trainer"}))
    with pytest.raises(ValueError, match="trainer pacemaker needs its code: `codes` must map `pacemaker`"):
        learning_builder_from_yaml(path)
