"""PaceTrainBaseWorkChain's process handlers, called directly on a finished child of each exit status (no job runs):
which handler answers which exit code, and what it changes for the next job."""

import pytest
from aiida import orm

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from tests.conftest import FIXTURES

EXIT = PaceTrainCalculation.exit_codes


@pytest.fixture
def base(generate_workchain, mock_pacemaker_code, argon_sets, small_parameters):
    """A set-up PaceTrainBaseWorkChain (maxiter 100) that has run its first job; ``extra`` are top-level inputs."""

    def factory(options=None, **extra):
        inputs = {
            "pace": {
                "code": mock_pacemaker_code,
                "training_set": argon_sets["train"],
                "test_set": argon_sets["test"],
                "parameters": orm.Dict(small_parameters),
                "metadata": {"options": options or {}},
            },
            "max_iterations": orm.Int(10),
            **extra,
        }
        process = generate_workchain("mlip_trainer.pace_train_base", inputs)
        process.setup()
        process.ctx.children = []
        return process

    return factory


def inspect(process, child):
    """What the work chain does with a finished child (None: run the next job), through BaseRestartWorkChain's own
    ``inspect_process``, as in the outline: the handlers that answer the child's exit status run by priority."""
    process.ctx.children.append(child)
    process.ctx.iteration = len(process.ctx.children)
    exit_code = process.inspect_process()
    return None if exit_code is None or exit_code.status == 0 else exit_code


def interim_outputs(iterations: int, stopped_by: str = "killed with SIGTERM") -> dict:
    from aiida_mlip_trainer.data import PacePotentialData

    potential = PacePotentialData(FIXTURES / "pace_train_success" / "output_potential.yaml")
    return {"potential": potential, "metrics": orm.Dict({"iterations": iterations, "stopped_by": stopped_by})}


def test_out_of_walltime_continues_from_the_interim_potential_with_the_iterations_left(base, finished_child):
    process = base()
    child = finished_child(
        "ERROR_OUT_OF_WALLTIME", interim_outputs(40), reason="r", filename="interim_potential_1.yaml", iteration=40
    )
    assert inspect(process, child) is None  # handled: the next job runs
    assert process.ctx.inputs.previous_potential.pk == child.outputs.potential.pk
    assert process.ctx.inputs.parameters["fit"]["maxiter"] == 60
    assert process.ctx.restarts_with_progress == 1 and process.ctx.restarts_without_progress == 0


def test_an_interim_potential_without_iterations_counts_as_no_progress(base, finished_child):
    process = base(max_restarts_without_progress=0)
    child = finished_child(
        "ERROR_OUT_OF_WALLTIME", interim_outputs(0), reason="r", filename="interim_potential_0.yaml", iteration=0
    )
    exit_code = inspect(process, child)
    assert exit_code.status == process.exit_codes.ERROR_TIME_LIMIT_TOO_SHORT.status
    assert "1 jobs in a row" in exit_code.message and "killed with SIGTERM" in exit_code.message


def test_killed_before_interim_restarts_the_same_job_then_says_the_time_is_too_short(base, finished_child):
    process = base(options={"max_wallclock_seconds": 100}, max_walltime=150, max_restarts_without_progress=1)

    def metrics():
        return {"metrics": orm.Dict({"iterations": 0, "stopped_by": "killed with SIGKILL"})}

    assert inspect(process, finished_child("ERROR_KILLED_BEFORE_INTERIM", metrics(), reason="x")) is None
    assert "previous_potential" not in process.ctx.inputs
    assert process.ctx.inputs.metadata["options"]["max_wallclock_seconds"] == 150  # doubled, up to max_walltime
    exit_code = inspect(process, finished_child("ERROR_KILLED_BEFORE_INTERIM", metrics(), reason="x"))
    assert exit_code.status == process.exit_codes.ERROR_TIME_LIMIT_TOO_SHORT.status
    assert "Give the job more time than max_wallclock_seconds=150 s" in exit_code.message


@pytest.mark.parametrize("label", ["ERROR_NAN_LOSS", "ERROR_LOSS_DIVERGED"])
def test_an_unstable_loss_goes_through_both_levels_of_safer_settings_then_gives_up(base, finished_child, label):
    process = base()
    loss = process.ctx.parameters["fit"]["loss"]
    kwargs = {"iteration": 3} if label == "ERROR_NAN_LOSS" else {"initial": 1.0, "final": 20.0}

    assert inspect(process, finished_child(label, **kwargs)) is None
    fit = process.ctx.inputs.parameters["fit"]
    assert fit["optimizer"] == "L-BFGS-B" and fit["loss"]["L2_coeffs"] == pytest.approx(10 * loss["L2_coeffs"])
    assert fit["loss"]["kappa"] == loss["kappa"]

    assert inspect(process, finished_child(label, **kwargs)) is None  # the second level
    fit = process.ctx.inputs.parameters["fit"]
    assert fit["loss"]["kappa"] == 0.1 and fit["optimizer"] == "L-BFGS-B"
    assert fit["loss"]["L1_coeffs"] == pytest.approx(100 * loss["L1_coeffs"])
    assert fit["loss"]["L2_coeffs"] == pytest.approx(100 * loss["L2_coeffs"])
    assert "previous_potential" not in process.ctx.inputs  # always from the same start

    exit_code = inspect(process, finished_child(label, **kwargs))
    assert exit_code.status == process.exit_codes.ERROR_FIT_UNSTABLE.status


def test_a_crash_is_retried_once_with_half_the_batch(base, finished_child, small_parameters):
    process = base()
    assert inspect(process, finished_child("ERROR_PACEMAKER_FAILED", status=1, detail="MemoryError")) is None
    assert process.ctx.inputs.parameters["backend"]["batch_size"] == small_parameters["backend"]["batch_size"] // 2
    # a second crash is left to BaseRestartWorkChain's policy for unhandled failures: abort
    exit_code = inspect(process, finished_child("ERROR_PACEMAKER_FAILED", status=1, detail="MemoryError"))
    assert exit_code.status == process.exit_codes.ERROR_UNHANDLED_FAILURE.status


@pytest.mark.parametrize(
    ("label", "kwargs"),
    [
        ("ERROR_NO_LOG", {"detail": "pacemaker: command not found"}),
        ("ERROR_UNREADABLE_INPUT", {"detail": "yaml.scanner.ScannerError"}),
        ("ERROR_NO_OUTPUT_POTENTIAL", {}),
        ("ERROR_INVALID_OUTPUT_POTENTIAL", {"detail": "not a potential"}),
    ],
)
def test_unrecoverable_failures_stop_at_once_with_the_child_exit_status_and_message(
    base, finished_child, label, kwargs
):
    process = base()
    child = finished_child(label, **kwargs)
    exit_code = inspect(process, child)
    assert exit_code.status == child.exit_status == PaceTrainCalculation.exit_codes[label].status
    assert exit_code.message == f"the pacemaker calculation failed: {child.exit_message}"
    assert "{" not in exit_code.message


@pytest.mark.parametrize("label", sorted(label for label, code in EXIT.items() if code.status >= 300))
def test_every_failure_of_the_calculation_has_a_handler(base, finished_child, label):
    """A new exit code of PaceTrainCalculation must get a handler: its first occurrence is never left to the
    unhandled-failure policy."""
    process = base()
    exit_code = inspect(process, finished_child(label, interim_outputs(10)))
    assert exit_code is None or exit_code.status != process.exit_codes.ERROR_UNHANDLED_FAILURE.status
    assert isinstance(process.ctx.children[-1], orm.CalcJobNode)
