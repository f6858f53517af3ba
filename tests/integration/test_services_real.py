"""The plugin on the engine users scale out with: a real broker, the daemon, and Slurm jobs with real pacemaker."""

import os
import pathlib
import signal
import subprocess
import time

import pytest
from aiida import orm

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain, TrainingWorkChain

pytestmark = pytest.mark.real_pacemaker

ARGON = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}, "fit": {"maxiter": 30}}


def test_training_work_chain_runs_as_slurm_jobs_through_the_daemon(slurm_codes, argon_sets, submit_and_await):
    builder = TrainingWorkChain.get_builder_from_protocol(
        slurm_codes,
        argon_sets["train"],
        "fast",
        {"training": {"pace": {"parameters": ARGON}}},
        options={"max_wallclock_seconds": 600},
    )
    builder.test_set = argon_sets["test"]
    builder.short_range_check = orm.Str("warning")  # a direct fit: not repulsive below its data
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert {job.computer.scheduler_type for job in jobs} == {"core.slurm"}
    assert all(job.get_job_id() for job in jobs)  # each ran as a Slurm job with its own id
    assert node.outputs.potential.has_active_set and node.outputs.potential.base.attributes.get("has_yace")
    (fit,) = [job for job in jobs if job.process_label == "PaceTrainCalculation"]
    assert fit.outputs.metrics["iterations"] == ARGON["fit"]["maxiter"]  # the overrides reached the Slurm job


def _freeze(workdir: pathlib.Path) -> list[int]:
    """Stop (SIGSTOP) the pacemaker processes that run in ``workdir`` (the one-node Slurm cluster runs its jobs on
    this machine) and return their ids: the fit then cannot go on, whatever the speed of the machine."""
    pids = []
    for proc in pathlib.Path("/proc").iterdir():
        try:
            if not proc.name.isdigit() or os.path.realpath(proc / "cwd") != os.path.realpath(workdir):
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # the process ended, or is not ours to read
            continue
        if b"input.yaml" in argv and any(arg.endswith(b"pacemaker") for arg in argv):
            os.kill(int(proc.name), signal.SIGSTOP)
            pids.append(int(proc.name))
    return pids


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.mark.alone  # after the parallel tests: it stops a process and cuts a job's time limit on the shared cluster
def test_job_killed_by_slurm_at_its_time_limit_is_recovered(
    slurm_codes, argon_sets, small_parameters, submit_and_await
):
    """No max_wallclock_seconds (so no soft stop of ours): once the Slurm job has written an interim potential, its
    time limit is cut to one minute with `scontrol update`, and Slurm kills it (DUE TO TIME LIMIT); the work chain
    continues from the interim potential and finishes.

    Nothing here depends on how fast the machine is: the kill comes only after an interim potential exists, and the
    fit is frozen (SIGSTOP) from then on, so that it cannot finish before Slurm kills it, however fast it runs and
    however long Slurm takes. (A fit sized from a speed measured just before could finish within the minute when the
    load on the machine fell in between, and then nothing was killed.)"""
    from aiida.engine import submit

    maxiter = 400  # a few dozen seconds of fitting on two idle cores: what is left is the continuation's
    small_parameters["fit"]["maxiter"] = maxiter

    builder = PaceTrainBaseWorkChain.get_builder()
    builder.pace.code = slurm_codes["pacemaker"]
    builder.pace.training_set = argon_sets["train"]
    builder.pace.test_set = argon_sets["test"]
    builder.pace.parameters = orm.Dict(small_parameters)
    node = submit(builder)

    def first_job():
        jobs = sorted(node.called, key=lambda n: n.ctime)
        return jobs[0] if jobs and "remote_folder" in jobs[0].outputs and jobs[0].get_job_id() else None

    job = _wait_for(first_job, 600, "the first Slurm job to start")
    workdir = pathlib.Path(job.outputs.remote_folder.get_remote_path())

    def fitting_with_an_interim_potential():
        metrics = workdir / "metrics.txt"
        rows = metrics.read_text().splitlines()[1:] if metrics.exists() else []
        return (workdir / "interim_potential_0.yaml").exists() and len(rows) >= 2 and _freeze(workdir)

    frozen = _wait_for(fitting_with_an_interim_potential, 600, "an interim potential of the first job")
    try:
        subprocess.run(["scontrol", "update", f"JobId={job.get_job_id()}", "TimeLimit=1"], check=True)
    except BaseException:
        for pid in frozen:  # let the fit go on rather than leave it stopped in the queue
            os.kill(pid, signal.SIGCONT)
        raise

    node = submit_and_await(node, timeout=1200)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    first, *rest = sorted(node.called, key=lambda n: n.ctime)
    assert first.pk == job.pk
    assert first.exit_status == PaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status, first.exit_message
    assert "killed by the scheduler at the job's time limit" in first.exit_message
    retrieved = first.outputs.retrieved.base.repository
    # killed from outside: the job script never got to record pacemaker's exit status
    assert "pacemaker.exit_status" not in retrieved.list_object_names()
    scheduler_stderr = retrieved.get_object_content("_scheduler-stderr.txt")
    assert "TIME LIMIT" in scheduler_stderr, scheduler_stderr
    assert len(rest) == 1, [n.exit_status for n in rest]
    assert rest[0].inputs.previous_potential.pk == first.outputs.potential.pk
    done = first.outputs.metrics["iterations"]
    assert 0 < done < maxiter, f"{done} of {maxiter} iterations"
    assert rest[0].inputs.parameters["fit"]["maxiter"] == maxiter - done
    # the versions that ran, read on the Slurm job's machine, on the calculation and on the potential
    versions = first.outputs.versions.get_dict()
    assert versions["python-ace"] == "0.4.0rc1" and versions["tensorflow"]
    assert node.outputs.potential.fitted_with == rest[0].outputs.versions.get_dict()
