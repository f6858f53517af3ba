"""PaceTrainBaseWorkChain: each handler against a mocked pacemaker that fails in the matching way."""

import pytest
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain


def run_base(code, sets, parameters, mode, state_path):
    inputs = {
        "pace": {
            "code": code,
            "training_set": sets["train"],
            "test_set": sets["test"],
            "parameters": parameters,
            "metadata": {
                "options": {
                    "environment_variables": {"MOCK_PACEMAKER_MODE": mode, "MOCK_PACEMAKER_STATE": str(state_path)}
                }
            },
        }
    }
    return run_get_node(PaceTrainBaseWorkChain, **inputs)


def children(node):
    return sorted(node.called, key=lambda child: child.ctime)


def test_walltime_continues_from_the_interim_potential(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    results, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "walltime-once", tmp_path / "s")
    assert node.is_finished_ok, node.exit_message
    first, second = children(node)
    assert first.exit_status == PaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    # the second run starts from the first one's interim potential, with the iterations still to do
    assert second.inputs.previous_potential.pk == first.outputs.potential.pk
    done = first.outputs.metrics["iterations"]
    assert done == 10
    assert second.inputs.parameters["fit"]["maxiter"] == 100 - done
    assert results["potential"].pk == second.outputs.potential.pk


def test_nan_restarts_with_safer_settings(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "nan-once", tmp_path / "s")
    assert node.is_finished_ok, node.exit_message
    first, second = children(node)
    assert first.exit_status == PaceTrainCalculation.exit_codes.ERROR_NAN_LOSS.status
    fit = second.inputs.parameters["fit"]
    assert fit["optimizer"] == "L-BFGS-B"
    assert fit["loss"]["L2_coeffs"] == pytest.approx(10 * small_parameters["fit"]["loss"]["L2_coeffs"])
    assert "previous_potential" not in second.inputs


def test_nan_every_time_gives_up(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "nan", tmp_path / "s")
    assert node.exit_status == PaceTrainBaseWorkChain.exit_codes.ERROR_FIT_UNSTABLE.status
    assert len(children(node)) == 3  # the first try and one per level of safer settings


def test_crash_is_retried_once_with_a_smaller_batch(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "crash-once", tmp_path / "s")
    assert node.is_finished_ok, node.exit_message
    first, second = children(node)
    assert first.exit_status == PaceTrainCalculation.exit_codes.ERROR_PACEMAKER_FAILED.status
    assert second.inputs.parameters["backend"]["batch_size"] == small_parameters["backend"]["batch_size"] // 2


def test_crash_twice_is_not_retried_forever(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "crash", tmp_path / "s")
    assert node.exit_status == PaceTrainBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE.status
    assert len(children(node)) == 2


def test_bad_input_stops_at_once_with_the_calculation_exit_code(
    mock_pacemaker_code, argon_sets, small_parameters, tmp_path
):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "bad_input", tmp_path / "s")
    code = PaceTrainCalculation.exit_codes.ERROR_UNREADABLE_INPUT
    assert node.exit_status == code.status
    assert PaceTrainBaseWorkChain.exit_codes.ERROR_UNREADABLE_INPUT.status == code.status
    assert len(children(node)) == 1
    # nothing is lost: the failed child's logs are retrieved
    assert "pacemaker.err" in children(node)[0].outputs.retrieved.base.repository.list_object_names()
