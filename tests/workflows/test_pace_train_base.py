"""PaceTrainBaseWorkChain: each handler against a mocked pacemaker that fails in the matching way."""

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain


def run_base(code, sets, parameters, mode, state_path, options=None, **extra):
    inputs = {
        "pace": {
            "code": code,
            "training_set": sets["train"],
            "test_set": sets["test"],
            "parameters": parameters,
            "metadata": {
                "options": {
                    "environment_variables": {"MOCK_PACEMAKER_MODE": mode, "MOCK_PACEMAKER_STATE": str(state_path)},
                    **(options or {}),
                }
            },
        },
        **extra,
    }
    return run_get_node(PaceTrainBaseWorkChain, **inputs)


def reports(node):
    return [log.message for log in orm.Log.collection.get_logs_for(node)]


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
    # the calculation's message, with its detail: it showed a literal "{detail}"
    assert "{" not in node.exit_message and "yaml.scanner.ScannerError" in node.exit_message, node.exit_message
    # the work chain passes the calculation's own number on, with its message:
    assert node.exit_message == f"the pacemaker calculation failed: {children(node)[0].exit_message}"
    assert len(children(node)) == 1
    # nothing is lost: the failed child's logs are retrieved
    assert "pacemaker.err" in children(node)[0].outputs.retrieved.base.repository.list_object_names()


# ------------------------------------------------------------------ jobs stopped before any progress (issue 9)
EXIT = PaceTrainCalculation.exit_codes


@pytest.mark.parametrize("early", ["killed_early", "killed_starting"])
def test_killed_before_the_first_interim_restarts_from_the_start(
    mock_pacemaker_code, argon_sets, small_parameters, tmp_path, early
):
    results, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, f"{early}-once", tmp_path / "s")
    assert node.is_finished_ok, node.exit_message
    first, second = children(node)
    assert first.exit_status == EXIT.ERROR_KILLED_BEFORE_INTERIM.status
    assert "SIGKILL" in first.exit_message
    # the same job again: same settings, no previous potential, all iterations still to do
    assert "previous_potential" not in second.inputs
    assert second.inputs.parameters.get_dict() == small_parameters
    assert any("restart 1 of at most 2 without progress" in line for line in reports(node))


def test_a_time_limit_too_short_to_make_progress_is_said_plainly(
    mock_pacemaker_code, argon_sets, small_parameters, tmp_path
):
    _, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, "killed_early", tmp_path / "s")
    assert node.exit_status == PaceTrainBaseWorkChain.exit_codes.ERROR_TIME_LIMIT_TOO_SHORT.status
    assert len(children(node)) == 3  # the first job and two restarts without progress
    assert "time limit is too short" in node.exit_message and "3 jobs in a row" in node.exit_message
    assert "max_walltime" in node.exit_message and "SIGKILL" in node.exit_message


def test_the_walltime_is_raised_where_the_user_allows_it(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    _, node = run_base(
        mock_pacemaker_code,
        argon_sets,
        small_parameters,
        "killed_early",
        tmp_path / "s",
        options={"max_wallclock_seconds": 100},
        max_walltime=300,
    )
    assert node.exit_status == PaceTrainBaseWorkChain.exit_codes.ERROR_TIME_LIMIT_TOO_SHORT.status
    walltimes = [child.get_option("max_wallclock_seconds") for child in children(node)]
    assert walltimes == [100, 200, 300]
    assert "Give the job more time than max_wallclock_seconds=300 s" in node.exit_message


def test_restarts_with_progress_are_counted_apart(mock_pacemaker_code, argon_sets, small_parameters, tmp_path):
    """Two no-progress jobs, one with progress, two no-progress again: the limit of 2 applies to jobs in a row."""
    modes = "killed_early,killed_early,walltime,killed_early,killed_early,success"
    results, node = run_base(mock_pacemaker_code, argon_sets, small_parameters, modes, tmp_path / "s", max_iterations=6)
    assert node.is_finished_ok, node.exit_message
    statuses = [child.exit_status for child in children(node)]
    killed, walltime = (
        PaceTrainCalculation.exit_codes[label].status
        for label in ("ERROR_KILLED_BEFORE_INTERIM", "ERROR_OUT_OF_WALLTIME")
    )
    assert statuses == [killed, killed, walltime, killed, killed, 0]
    lines = reports(node)
    assert sum("without progress" in line for line in lines) == 4
    assert any("restart 1 with progress" in line for line in lines)
    last = children(node)[-1]
    # the restarts after the kill with progress continue from its interim potential, with the iterations left
    assert last.inputs.previous_potential.pk == children(node)[2].outputs.potential.pk
    assert last.inputs.parameters["fit"]["maxiter"] == 100 - 10


def test_too_few_iterations_per_job_is_said_before_max_iterations(
    mock_pacemaker_code, argon_sets, small_parameters, tmp_path
):
    _, node = run_base(
        mock_pacemaker_code,
        argon_sets,
        small_parameters,
        "walltime",
        tmp_path / "s",
        options={"max_wallclock_seconds": 100},
        max_walltime=150,
        max_iterations=3,
    )
    assert node.exit_status == PaceTrainBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status
    lines = reports(node)
    assert any("at 10 iterations per job, the 90 iterations left need about 9 more jobs" in line for line in lines)
    assert [child.get_option("max_wallclock_seconds") for child in children(node)] == [100, 150, 150]
