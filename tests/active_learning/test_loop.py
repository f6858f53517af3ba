"""ActiveLearningWorkChain without jobs: bad input refused before any job with a one-line message naming what to
change, the builder from the protocol, and the learning_curve calcfunction on hand-made rounds."""

import math

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.functions.learning_curve import CURVE_COLUMNS, learning_curve
from aiida_mlip_trainer.workflows.protocols import merge
from tests.oracles.conftest import copper_cells

EXPLORATION = {"temperatures": [300, 900], "steps": 50}


def _processes() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode).count()


@pytest.fixture
def builder(loop_codes, copper_sets):
    """A builder that passes validation (checked by the first case of the parametrized test)."""

    def factory(oracle: bool = True, **kwargs):
        return ActiveLearningWorkChain.get_builder_from_protocol(
            loop_codes,
            kwargs.pop("structures", copper_sets["initial"]),
            kwargs.pop("exploration", EXPLORATION),
            "fast",
            merge({"selection": {"max_structures": 3}}, kwargs.pop("overrides", {})),
            oracle=ase_oracle(loop_codes["ase_oracle"], "emt") if oracle else None,
            test_set=kwargs.pop("test_set", copper_sets["test"]),
            **kwargs,
        )

    return factory


def test_builder_from_protocol_fills_every_namespace(builder, loop_codes, copper_sets):
    filled = builder(max_rounds=orm.Int(3))
    assert filled.structures.pk == copper_sets["initial"].pk
    assert filled.training.training.pace.code.pk == loop_codes["pacemaker"].pk
    assert filled.training.activeset.code.pk == loop_codes["pace_activeset"].pk
    assert "max_structures" not in filled.training.selection  # the loop selects; the fit does not
    assert filled.labeling.max_concurrent.value == 2  # from the protocol
    assert filled.exploration.code.pk == loop_codes["explore"].pk
    assert filled.exploration.parameters.get_dict() == EXPLORATION
    assert filled.selection.max_structures.value == 3
    assert filled.selection.pace_select.code.pk == loop_codes["pace_select"].pk
    assert filled.labeling.oracle["adapter"] == "ase_oracle"
    assert filled.max_rounds.value == 3


def test_builder_needs_the_loop_codes(loop_codes, copper_sets):
    codes = {key: value for key, value in loop_codes.items() if key != "explore"}
    with pytest.raises(ValueError, match="codes: give a code for explore"):
        ActiveLearningWorkChain.get_builder_from_protocol(codes, copper_sets["initial"], EXPLORATION)


def _unlabelled():
    return TrainingSetData(copper_cells(4), labelled=False).store()


def _argon():
    return TrainingSetData(argon_lennard_jones(3, seed=1)).store()


CASES = [
    ({"oracle": False, "structures": _unlabelled}, "the structures have no labels: give the oracle"),
    ({"test_set": _unlabelled}, "the test_set has no labels"),
    ({"test_set": _argon}, r"the test_set contains \['Ar'\], which the structures lack"),
    ({"explore_from": _argon}, r"explore_from contains \['Ar'\]"),
    ({"max_rounds": 0}, "max_rounds must be at least 1, got 0"),
    ({"max_oracle_calls": 0}, "max_oracle_calls must be at least 1, got 0"),
    ({"oracle": False, "max_rounds": 2}, "more than one round needs an oracle"),
    ({"explore_count": 0}, "explore_count must be at least 1, got 0"),
    ({"fine_tune_maxiter": 0}, "fine_tune_maxiter must be at least 1, got 0"),
    ({"exploration": {"temperatures": [300], "thermostat": "nose"}}, "unknown exploration parameters"),
    ({"exploration": {"temperatures": [300], "gamma_collect": 30}}, "gamma_halt .25.0. must be above gamma_collect"),
    (
        {"exploration": {"temperatures": [300], "resume_trajectories": []}},
        "exploration.parameters: resume_trajectories is the loop's to set",
    ),
    ({"overrides": {"selection": {"max_structures": 0}}}, "max_structures must be a positive integer, got 0"),
    (
        {"overrides": {"training": {"training": {"pace": {"parameters": {"potential": {"elements": ["Cu", "Ni"]}}}}}}},
        "training: the training data has 0 Ni atoms",
    ),
    ({"labeling": {"max_concurrent": 0}}, "max_concurrent must be at least 1, got 0"),
]


@pytest.mark.parametrize("change, message", CASES, ids=[message.split(":")[0][:40] for _, message in CASES])
def test_bad_input_refused_before_any_job(builder, change, message):
    change = {key: value() if callable(value) else value for key, value in change.items()}
    labeling = change.pop("labeling", None)
    for key in ("max_rounds", "max_oracle_calls", "explore_count", "fine_tune_maxiter"):
        if key in change:
            change[key] = orm.Int(change[key])
    inputs = builder(**change)
    if labeling:
        inputs.labeling.max_concurrent = orm.Int(labeling["max_concurrent"])
    before = _processes()
    with pytest.raises(ValueError, match=message) as error:
        run_get_node(inputs)
    assert _processes() == before
    reason = str(error.value).split("inputs`: ", 1)[-1] if "inputs`: " in str(error.value) else str(error.value)
    assert "\n" not in reason.strip(), reason


def test_the_training_namespace_keeps_the_validator_of_the_training_work_chain(builder):
    """Exposed, the training namespace is checked by TrainingWorkChain's own validator: without data here (the loop
    supplies them every round, and unlabelled structures leave the checks with data to the first fit), the checks
    that need none still refuse a bad value before any job."""
    inputs = builder(structures=_unlabelled())
    inputs.training.short_range_check = orm.Str("maybe")
    before = _processes()
    with pytest.raises(ValueError, match=r"'inputs.training'.*short_range_check must be one of"):
        run_get_node(inputs)
    assert _processes() == before


def _labelled_copper(count: int, seed: int) -> TrainingSetData:
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    return TrainingSetData(copper_emt(count, seed=seed, repeat=1)).store()


def test_learning_curve_counts_calls_before_each_fit():
    metrics = [orm.Dict({"energy_rmse": 4.0, "force_rmse": 80.0}), orm.Dict({"energy_rmse": 2.0, "force_rmse": 50.0})]
    metrics.append(orm.Dict({"energy_rmse": 1.0, "force_rmse": 30.0}))
    sets = [_labelled_copper(n, seed=n) for n in (5, 8, 10)]
    rounds = {f"metrics_{k}": node for k, node in enumerate(metrics)}
    rounds.update({f"training_set_{k}": node for k, node in enumerate(sets)})
    rounds["initial_labeling"] = orm.Dict({"num_labelled": 5, "num_failed": 1})
    rounds["exploration_0"] = orm.Dict({"max_gamma": 12.0, "fraction_halted": 0.5, "num_candidates": 7})
    rounds["labeling_0"] = orm.Dict({"num_labelled": 3, "num_failed": 1})
    rounds["exploration_1"] = orm.Dict({"max_gamma": 3.0, "fraction_halted": 0.0, "num_candidates": 2})
    rounds["labeling_1"] = orm.Dict({"num_labelled": 2, "num_failed": 0})
    # round 2 trained but did not explore (budget spent)
    results, node = run_get_node(learning_curve, stop_reason=orm.Str("max_rounds (3) reached"), **rounds)
    assert node.is_finished_ok
    curve = results["curve"]
    assert set(curve.get_arraynames()) == set(CURVE_COLUMNS)
    assert curve.get_array("round").tolist() == [0, 1, 2]
    assert curve.get_array("oracle_calls").tolist() == [6, 10, 12]  # failed calls count: they were paid for
    assert curve.get_array("training_structures").tolist() == [5, 8, 10]
    assert curve.get_array("force_rmse").tolist() == [80.0, 50.0, 30.0]
    assert curve.get_array("energy_rmse").tolist() == [4.0, 2.0, 1.0]
    gamma = curve.get_array("max_gamma")
    assert gamma[:2].tolist() == [12.0, 3.0] and math.isnan(gamma[2])
    assert curve.get_array("fraction_halted")[:2].tolist() == [0.5, 0.0]
    assert curve.get_array("candidates")[:2].tolist() == [7, 2]
    assert results["plot"].get_content(mode="rb").startswith(b"\x89PNG")
    summary = results["summary"].get_dict()
    assert summary["stop_reason"] == "max_rounds (3) reached"
    assert summary["oracle_calls"] == 12
    assert summary["rounds"][2]["max_gamma"] is None  # JSON: no NaN
    assert summary["units"] == {"energy_rmse": "meV/atom", "force_rmse": "meV/Å"}
    assert np.isfinite(curve.get_array("force_rmse")).all()
