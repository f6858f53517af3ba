"""A fit that has not learned is said to be so (issue 18, item 7).

A held-out five-element alloy through ``train(..., protocol="fast")`` finished [0] with test errors of E 37.3
meV/atom against a spread of 35.9 and F 833 meV/Å against an RMS of 1134, worse than predicting the mean energy,
and nothing said so. Now the validation judges it (``metrics["learned"]``), the work chain reports it (ERROR_NOT_LEARNED
with ``require_learned``), ``train()`` warns, and the command line prints it.
"""

import math
import warnings

import pytest
from aiida import orm

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones
from aiida_mlip_trainer.workflows.functions.learning_curve import curve_rows
from aiida_mlip_trainer.workflows.functions.potential import judge_learning, validate_potential
from tests.conftest import FIXTURES
from tests.workflows.test_training_workchain import OVERRIDES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"


def metrics(energy_rmse, energy_spread, force_rmse, force_rms, **extra):
    return {
        "energy_rmse": energy_rmse,
        "force_rmse": force_rmse,
        "reference": {"energy_per_atom_std": energy_spread, "force_component_rms": force_rms},
        **extra,
    }


# ------------------------------------------------------------------------------------------------ the criterion
def test_the_alloy_of_the_issue_has_not_learned_on_both_counts():
    judgement = judge_learning(metrics(37.3, 35.9, 833.0, 1134.0))
    assert judgement["learned"] is False and judgement["not_judged"] == []
    energy, force = judgement["not_learned_reasons"]
    assert "energy RMSE 37.3 meV/atom" in energy and "35.9 meV/atom" in energy and "predicting their mean" in energy
    assert "force RMSE 833 meV/Å" in force and "(1134 meV/Å;" in force and "zero forces" in force


@pytest.mark.parametrize(
    ("energy_rmse", "force_rmse", "learned", "reasons"),
    [
        (4.99, 49.9, True, []),  # just below half of each: learned
        (5.0, 49.9, False, ["energy"]),  # at half the energy spread: not learned (at least half)
        (4.99, 50.0, False, ["force"]),  # at half the force RMS: not learned, whatever the energy says
        (1.0, 600.0, False, ["force"]),
        (9.0, 1.0, False, ["energy"]),
    ],
)
def test_half_the_spread_is_the_line(energy_rmse, force_rmse, learned, reasons):
    """Energy spread 10 meV/atom, force RMS 100 meV/Å: at or above 5 and 50 the fit has not learned."""
    judgement = judge_learning(metrics(energy_rmse, 10.0, force_rmse, 100.0))
    assert judgement["learned"] is learned
    assert [reason.split()[1] for reason in judgement["not_learned_reasons"]] == reasons


def test_one_test_structure_has_no_energy_spread_the_energy_cannot_be_judged():
    """One structure: spread 0. No division by zero, and no verdict on the energy; the forces still count."""
    judgement = judge_learning(metrics(12.0, 0.0, 10.0, 100.0, num_structures=1))
    assert judgement["learned"] is True and judgement["not_learned_reasons"] == []
    (line,) = judgement["not_judged"]
    assert line.startswith("energy:") and "is 0 meV/atom, so the energy error cannot be judged" in line
    bad_forces = judge_learning(metrics(12.0, 0.0, 80.0, 100.0, num_structures=1))
    assert bad_forces["learned"] is False and bad_forces["not_learned_reasons"][0].startswith("test force RMSE 80")
    nothing = judge_learning(metrics(12.0, 0.0, 0.0, 0.0))  # and no forces either (a relaxed structure)
    assert nothing["learned"] is None and len(nothing["not_judged"]) == 2


def test_an_error_that_is_not_finite_has_not_learned():
    judgement = judge_learning(metrics(math.nan, 10.0, 1.0, 100.0))
    assert judgement["learned"] is False and judgement["not_learned_reasons"] == ["the test energy RMSE is nan"]


@pytest.mark.parametrize(
    "stored",
    [
        {},
        {"energy_rmse": "37", "force_rmse": True, "reference": "x"},
        {"energy_rmse": 1.0, "force_rmse": 1.0, "reference": {"energy_per_atom_std": None, "force_component_rms": []}},
        "not a mapping",
    ],
)
def test_metrics_from_someone_elses_archive_are_never_judged_nor_raise(stored):
    from aiida_mlip_trainer.cli.commands import validation_lines

    judgement = judge_learning(stored)
    assert judgement["learned"] is None and judgement["not_learned_reasons"] == [] and len(judgement["not_judged"]) == 2
    if isinstance(stored, dict):
        errors, learned = validation_lines(stored)
        assert learned.startswith("cannot be judged") and errors.startswith("E ")


def test_learning_curve_rows_say_which_rounds_have_not_learned():
    rows = curve_rows(
        [metrics(37.3, 35.9, 100.0, 1134.0), metrics(2.0, 35.9, 80.0, 1134.0), {"energy_rmse": 1, "force_rmse": 9}],
        [5, 8, 10],
        {},
        {},
    )
    assert [row["learned"] for row in rows] == [False, True, None]


# ---------------------------------------------------------------------------------------------- the validation
def rattled_argon() -> TrainingSetData:
    """Argon rattled by 0.3 Å where the fixture potential's data were rattled by 0.1 Å: close contacts it never saw
    (measured: E 115 meV/atom against a spread of 88, F 1622 meV/Å against an RMS of 1755)."""
    return TrainingSetData(argon_lennard_jones(6, seed=3, rattle=0.3)).store()


def test_validation_on_data_the_potential_never_saw_says_it_has_not_learned(argon_sets):
    potential = PacePotentialData(POTENTIAL).store()
    result, node = validate_potential.run_get_node(potential, rattled_argon())
    stored = result["metrics"].get_dict()
    assert stored["energy_rmse"] >= 0.5 * stored["reference"]["energy_per_atom_std"]  # the case is what it claims
    assert stored["learned"] is False and stored["not_judged"] == []
    assert [reason.split()[1] for reason in stored["not_learned_reasons"]] == ["energy", "force"]
    logs = [log.message for log in orm.Log.collection.get_logs_for(node)]
    assert any("has NOT LEARNED its data: test energy RMSE" in log and "'fast' protocol" in log for log in logs)
    # the same potential on data like its own has learned, and says nothing of the kind
    result, node = validate_potential.run_get_node(potential, argon_sets["test"])
    assert result["metrics"]["learned"] is True and result["metrics"]["not_learned_reasons"] == []
    assert not [log for log in orm.Log.collection.get_logs_for(node) if "NOT LEARNED" in log.message]


def test_validation_on_one_structure_says_the_energy_cannot_be_judged(argon_structures):
    potential = PacePotentialData(POTENTIAL).store()
    one = TrainingSetData(argon_structures["test"][:1]).store()
    result, node = validate_potential.run_get_node(potential, one)
    assert node.is_finished_ok
    stored = result["metrics"].get_dict()
    assert stored["reference"]["energy_per_atom_std"] == 0.0
    assert stored["learned"] is True  # judged on the forces alone
    assert [line.split(":")[0] for line in stored["not_judged"]] == ["energy"]
    assert any("not judged: energy:" in log.message for log in orm.Log.collection.get_logs_for(node))


# ------------------------------------------------------------------------------ work chain, train() and the CLI
@pytest.fixture
def codes(mock_pacemaker_code, pace_tool_codes):
    return {"pacemaker": mock_pacemaker_code, **pace_tool_codes}


def train_argon(codes, argon_sets, test_set, **inputs):
    """The fast protocol on argon with a mocked pacemaker (the replay of a real fit recorded for these inputs)."""
    from aiida_mlip_trainer.launch import train
    from aiida_mlip_trainer.workflows.protocols import merge

    overrides = merge(OVERRIDES, {"selection": None})
    return train(
        argon_sets["train"], codes, "fast", overrides, test_set=test_set, short_range_check="warning", **inputs
    )


def _chain_of(results):
    from aiida.common.links import LinkType

    return results["metrics"].base.links.get_incoming(link_type=LinkType.RETURN).one().node


_NOT_LEARNED = {}


@pytest.fixture
def not_learned_chain(codes, argon_sets):
    """One training whose held-out set is rattled argon (run once for the tests that read it): its results, its node
    and the warnings ``train()`` gave."""
    if not _NOT_LEARNED:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = train_argon(codes, argon_sets, rattled_argon())
        _NOT_LEARNED.update(results=results, node=_chain_of(results), warnings=caught)
    return _NOT_LEARNED


def test_train_returns_a_fit_that_has_not_learned_with_a_warning_and_the_flag(not_learned_chain):
    from aiida_mlip_trainer.launch import NotLearnedWarning

    node, stored = not_learned_chain["node"], not_learned_chain["results"]["metrics"].get_dict()
    assert node.is_finished_ok  # the potential is returned: require_learned is False by default
    assert stored["learned"] is False and len(stored["not_learned_reasons"]) == 2
    (warning,) = [w for w in not_learned_chain["warnings"] if issubclass(w.category, NotLearnedWarning)]
    message = str(warning.message)
    assert "\n" not in message and message.startswith(f"TrainingWorkChain<{node.pk}>: the potential has NOT LEARNED")
    assert "test energy RMSE" in message and "test force RMSE" in message and "'fast' protocol" in message
    reports = [log.message for log in orm.Log.collection.get_logs_for(node)]
    assert any("the potential has NOT LEARNED its data: test energy RMSE" in report for report in reports)


def test_require_learned_ends_with_not_learned_and_keeps_every_output(codes, argon_sets):
    from aiida_mlip_trainer.launch import TrainingError
    from aiida_mlip_trainer.workflows import TrainingWorkChain

    status = TrainingWorkChain.exit_codes.ERROR_NOT_LEARNED.status
    with pytest.raises(TrainingError, match=rf"failed \[{status}\]: the potential has NOT LEARNED its data") as error:
        train_argon(codes, argon_sets, rattled_argon(), require_learned=True)
    node = error.value.node
    assert node.exit_status == status
    assert "require_learned=False accepts it" in node.exit_message
    assert {"potential", "metrics", "parity_plot", "short_range"} <= set(node.outputs)
    assert node.outputs.metrics["learned"] is False


def test_require_learned_lets_a_fit_that_has_learned_through(codes, argon_sets):
    from aiida_mlip_trainer.launch import NotLearnedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = train_argon(codes, argon_sets, argon_sets["test"], require_learned=True)
    assert results["metrics"]["learned"] is True and _chain_of(results).is_finished_ok
    assert not [w for w in caught if issubclass(w.category, NotLearnedWarning)]


def test_train_status_and_potential_show_say_it_has_not_learned(not_learned_chain):
    from click.testing import CliRunner

    from aiida_mlip_trainer.cli.commands import cli

    node, stored = not_learned_chain["node"], not_learned_chain["results"]["metrics"].get_dict()
    for command in (["train", "status", str(node.pk)], ["potential", "show", str(node.pk)]):
        result = CliRunner().invoke(cli, command, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        (learned,) = [line for line in result.output.splitlines() if line.startswith("learned")]
        assert "NO, NOT LEARNED: test energy RMSE" in learned and "test force RMSE" in learned, result.output
        (errors,) = [line for line in result.output.splitlines() if line.startswith("held-out test")]
        spread = stored["reference"]["energy_per_atom_std"]
        assert f"E {stored['energy_rmse']:.4g} meV/atom (spread {spread:.4g})" in errors, result.output


def test_potential_show_of_a_fit_that_has_learned(argon_sets):
    from click.testing import CliRunner

    from aiida_mlip_trainer.cli.commands import cli

    potential = PacePotentialData(POTENTIAL).store()
    validate_potential(potential, argon_sets["test"])
    result = CliRunner().invoke(cli, ["potential", "show", str(potential.pk)], catch_exceptions=False)
    (learned,) = [line for line in result.output.splitlines() if line.startswith("learned")]
    assert learned.split(None, 1)[1].startswith("yes"), result.output
