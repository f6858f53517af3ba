"""The plugin on the engine users scale out with: a real broker, the daemon, and Slurm jobs with real pacemaker."""

import pytest
from aiida import orm

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain, TrainingWorkChain

pytestmark = pytest.mark.real_pacemaker

ARGON = {"potential": {"bonds": {"ALL": {"rcut": 7.0}}}, "fit": {"maxiter": 30}}


def test_training_work_chain_runs_as_slurm_jobs_through_the_daemon(slurm_codes, argon_sets, submit_and_await):
    builder = TrainingWorkChain.get_builder()
    builder.training_set = argon_sets["train"]
    builder.test_set = argon_sets["test"]
    builder.preset = orm.Str("fast")
    builder.parameter_overrides = orm.Dict(ARGON)
    builder.codes = slurm_codes
    builder.short_range_check = orm.Str("warning")  # a direct fit: not repulsive below its data
    builder.options = {"max_wallclock_seconds": 600}
    node = submit_and_await(builder, timeout=900)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    jobs = [n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)]
    assert {job.computer.scheduler_type for job in jobs} == {"core.slurm"}
    assert all(job.get_job_id() for job in jobs)  # each ran as a Slurm job with its own id
    assert node.outputs.potential.has_active_set and node.outputs.potential.base.attributes.get("has_yace")


def test_job_killed_by_slurm_at_its_time_limit_is_recovered(
    slurm_codes, argon_sets, small_parameters, submit_and_await
):
    """No max_wallclock_seconds (so no soft stop of ours): Slurm's own one-minute limit kills the fit; the work
    chain continues from the interim potential and finishes."""
    maxiter = 1000  # 2 to 4 minutes on this machine: well over the one-minute limit
    small_parameters["fit"]["maxiter"] = maxiter
    builder = PaceTrainBaseWorkChain.get_builder()
    builder.pace.code = slurm_codes["pacemaker"]
    builder.pace.training_set = argon_sets["train"]
    builder.pace.test_set = argon_sets["test"]
    builder.pace.parameters = orm.Dict(small_parameters)
    builder.pace.metadata.options.custom_scheduler_commands = "#SBATCH --time=00:01:00"
    node = submit_and_await(builder, timeout=1200)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    first, *rest = sorted(node.called, key=lambda n: n.ctime)
    assert first.exit_status == PaceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
    retrieved = first.outputs.retrieved.base.repository
    # killed from outside: the job script never got to record pacemaker's exit status
    assert "pacemaker.exit_status" not in retrieved.list_object_names()
    scheduler_stderr = retrieved.get_object_content("_scheduler-stderr.txt")
    assert "TIME LIMIT" in scheduler_stderr, scheduler_stderr
    assert rest and rest[0].inputs.previous_potential.pk == first.outputs.potential.pk
    done = first.outputs.metrics["iterations"]
    # what is left; at least one iteration, when the kill came after the last one (while pacemaker saved its results)
    assert rest[0].inputs.parameters["fit"]["maxiter"] == max(1, maxiter - done)
