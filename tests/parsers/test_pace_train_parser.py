"""PaceTrainParser on retrieved folders: a real successful fit, and each failure made from it."""

import json

import pytest

from aiida_mlip_trainer.calculations import PaceTrainCalculation

EXIT = PaceTrainCalculation.exit_codes


def parse(parse_retrieved, folder, argon_sets):
    return parse_retrieved(folder, {"training_set": argon_sets["train"], "test_set": argon_sets["test"]})


def test_success(pacemaker_output, parse_retrieved, argon_sets):
    results, calcfunction = parse(parse_retrieved, pacemaker_output(), argon_sets)
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    metrics = results["metrics"].get_dict()
    assert metrics["train"]["force_rmse"] == 5.08 and metrics["test"]["energy_mae"] == 0.56
    assert metrics["iterations"] == 30 and metrics["num_functions"] == 36
    assert metrics["final_loss"] == pytest.approx(3.891072875287753e-05)
    assert metrics["wall_time"] == pytest.approx(17.127, abs=0.01)
    assert metrics["interim"] is False and metrics["exit_status"] == 0
    assert results["potential"].num_functions == 36


def test_no_log(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    for name in ("log.txt", "metrics.txt", "test_metrics.txt", "output_potential.yaml"):
        (folder / name).unlink()
    (folder / "pacemaker.err").write_text("bash: pacemaker: command not found\n")
    (folder / "pacemaker.exit_status").write_text("127\n")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_NO_LOG.status
    assert "command not found" in calcfunction.exit_message


def test_unreadable_input(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    for name in ("metrics.txt", "test_metrics.txt", "output_potential.yaml"):
        (folder / name).unlink()
    (folder / "pacemaker.err").write_text("Traceback (most recent call last):\nKeyError: 'bonds'\n")
    (folder / "pacemaker.exit_status").write_text("1\n")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_UNREADABLE_INPUT.status
    assert "KeyError: 'bonds'" in calcfunction.exit_message


@pytest.mark.parametrize("status", [None, "124", "137", "143"])
def test_killed_returns_the_last_interim_potential(pacemaker_output, parse_retrieved, argon_sets, status):
    folder = pacemaker_output()
    output = folder / "output_potential.yaml"
    output.rename(folder / "interim_potential_1.yaml")
    (folder / "interim_potential_0.yaml").write_text("an older, half-written file")
    if status is None:
        (folder / "pacemaker.exit_status").unlink()  # the whole job script was killed
    else:
        (folder / "pacemaker.exit_status").write_text(status)
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_OUT_OF_WALLTIME.status
    assert "interim_potential_1.yaml" in calcfunction.exit_message
    assert results["potential"].num_functions == 36
    assert results["metrics"]["interim"] is True


@pytest.mark.parametrize(
    ("status", "scheduler_stderr", "soft", "reason"),
    [
        (None, "", False, "killed before it could record the exit status"),
        (None, "slurmstepd: *** JOB 7 ON vm CANCELLED AT 2026-11-26 DUE TO TIME LIMIT ***", False, "time limit"),
        (None, "slurmstepd: *** JOB 7 ON vm CANCELLED AT 2026-11-26 ***", False, "cancelled through the scheduler"),
        ("137", "", False, "SIGKILL, exit status 137: kill -9"),
        ("143", "", False, "SIGTERM from outside"),
        ("143", "", True, "the soft walltime"),
        ("124", "", False, "timeout"),
    ],
)
def test_killed_before_any_interim(
    pacemaker_output, parse_retrieved, argon_sets, status, scheduler_stderr, soft, reason
):
    """Not "finished without output" (330): a kill before the first interim potential is its own exit code (405),
    which says what stopped the job (`kill -9` was reported as "walltime")."""
    folder = pacemaker_output()
    (folder / "output_potential.yaml").unlink()
    if status is None:
        (folder / "pacemaker.exit_status").unlink()
    else:
        (folder / "pacemaker.exit_status").write_text(status)
    (folder / "_scheduler-stderr.txt").write_text(scheduler_stderr)
    if soft:
        (folder / "mlip_trainer.soft_walltime").write_text("")
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_KILLED_BEFORE_INTERIM.status != EXIT.ERROR_NO_OUTPUT_POTENTIAL.status
    assert reason in calcfunction.exit_message and "walltime" not in calcfunction.exit_message.replace(
        "soft walltime", ""
    )
    assert reason in results["metrics"]["stopped_by"]


def test_killed_while_starting_before_the_log(pacemaker_output, parse_retrieved, argon_sets):
    """Killed while Python and TensorFlow were still loading: no log.txt yet, still a kill (405), not 300."""
    folder = pacemaker_output()
    for name in ("log.txt", "metrics.txt", "test_metrics.txt", "output_potential.yaml", "pacemaker.exit_status"):
        (folder / name).unlink()
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_KILLED_BEFORE_INTERIM.status
    assert results["metrics"]["iterations"] == 0


def test_kill_with_an_interim_potential_says_what_stopped_it(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    (folder / "output_potential.yaml").rename(folder / "interim_potential_0.yaml")
    (folder / "pacemaker.exit_status").write_text("137")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_OUT_OF_WALLTIME.status
    assert "SIGKILL" in calcfunction.exit_message and "(walltime)" not in calcfunction.exit_message


def test_versions_are_recorded_on_the_calculation_and_the_potential(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    versions = {"python-ace": "0.4.0rc1", "tensorpotential": "0.6.2.1", "tensorflow": "2.20.0", "python": "3.11.7"}
    # what the job's python saw; pacemaker's log (0.4.0rc1 and 0.6.2.1) names what really ran
    (folder / "versions.json").write_text(json.dumps({**versions, "python-ace": None, "tensorpotential": "0.1"}))
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.is_finished_ok
    assert results["versions"].get_dict() == versions
    assert results["potential"].fitted_with == versions


def test_versions_from_the_log_when_the_executable_could_not_be_asked(pacemaker_output, parse_retrieved, argon_sets):
    results, _ = parse(parse_retrieved, pacemaker_output(), argon_sets)  # the recorded fit has no versions.json
    assert results["versions"].get_dict() == {"python-ace": "0.4.0rc1", "tensorpotential": "0.6.2.1"}
    assert results["potential"].fitted_with["python-ace"] == "0.4.0rc1"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"python-ace": "' + "9" * 500 + '", "evil": "x"}'])
def test_a_strange_versions_file_is_read_as_data_only(pacemaker_output, parse_retrieved, argon_sets, content):
    folder = pacemaker_output()
    (folder / "versions.json").write_text(content)
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.is_finished_ok
    versions = results["versions"].get_dict()
    assert "evil" not in versions and all(len(value) <= 64 for value in versions.values() if value)


def test_nan_loss(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    lines = (folder / "metrics.txt").read_text().splitlines()
    fields = lines[5].split()
    fields[3] = "nan"
    lines[5] = " ".join(fields)
    (folder / "metrics.txt").write_text("\n".join(lines) + "\n")
    results, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_NAN_LOSS.status
    assert "iteration 4" in calcfunction.exit_message
    assert "potential" not in results


def test_diverged_loss(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    lines = (folder / "metrics.txt").read_text().splitlines()
    fields = lines[-1].split()
    fields[3] = "1.0"  # the initial loss was 6.5e-3
    lines[-1] = " ".join(fields)
    (folder / "metrics.txt").write_text("\n".join(lines) + "\n")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_LOSS_DIVERGED.status


def test_crash_after_the_fit_started(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    (folder / "output_potential.yaml").unlink()
    (folder / "pacemaker.err").write_text("Traceback (most recent call last):\nMemoryError\n")
    (folder / "pacemaker.exit_status").write_text("1\n")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_PACEMAKER_FAILED.status
    assert "MemoryError" in calcfunction.exit_message


def test_no_output_potential(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    (folder / "output_potential.yaml").unlink()
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_NO_OUTPUT_POTENTIAL.status


def test_unreadable_output_potential(pacemaker_output, parse_retrieved, argon_sets):
    folder = pacemaker_output()
    (folder / "output_potential.yaml").write_text("species: {broken")
    _, calcfunction = parse(parse_retrieved, folder, argon_sets)
    assert calcfunction.exit_status == EXIT.ERROR_INVALID_OUTPUT_POTENTIAL.status


# ------------------------------------------------------------------------------ outputs pinned with data_regression
def test_success_outputs(pacemaker_output, parse_retrieved, argon_sets, parser_regression):
    parser_regression(*parse(parse_retrieved, pacemaker_output(), argon_sets))


def test_killed_with_interim_outputs(pacemaker_output, parse_retrieved, argon_sets, parser_regression):
    """A walltime kill (exit status 124) after an interim potential: 400, with the interim potential and metrics."""
    folder = pacemaker_output()
    (folder / "output_potential.yaml").rename(folder / "interim_potential_1.yaml")
    (folder / "pacemaker.exit_status").write_text("124")
    parser_regression(*parse(parse_retrieved, folder, argon_sets))


def test_no_log_outputs(pacemaker_output, parse_retrieved, argon_sets, parser_regression):
    folder = pacemaker_output()
    for name in ("log.txt", "metrics.txt", "test_metrics.txt", "output_potential.yaml"):
        (folder / name).unlink()
    (folder / "pacemaker.err").write_text("bash: pacemaker: command not found\n")
    (folder / "pacemaker.exit_status").write_text("127\n")
    parser_regression(*parse(parse_retrieved, folder, argon_sets))
