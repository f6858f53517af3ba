"""The oracle jobs as Slurm jobs, submitted through a real daemon: the shipped script runs wherever the plugin is
installed, and the work chain survives being run by a daemon worker (checkpointed context)."""

import numpy as np
from aiida import orm
from ase.calculators.emt import EMT

from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.conftest import _executable


def test_labelling_through_the_daemon_as_slurm_jobs(slurm_codes, copper_pool, submit_and_await):
    computer = slurm_codes["pacemaker"].computer
    code = orm.InstalledCode(
        label="mlip-trainer-ase-oracle",
        computer=computer,
        filepath_executable=_executable("mlip-trainer-ase-oracle"),
        default_calc_job_plugin="mlip_trainer.ase_oracle",
    ).store()
    builder = LabelingWorkChain.get_builder()
    builder.pool = copper_pool
    builder.oracle = ase_oracle(code, "emt", options={"max_wallclock_seconds": 300})
    builder.max_concurrent = orm.Int(2)
    node = submit_and_await(builder, timeout=600)
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    jobs = [n for n in node.called if isinstance(n, orm.CalcJobNode)]
    assert len(jobs) == 3 and all(job.get_job_id() for job in jobs)  # each ran as a Slurm job
    assert {job.get_option("max_wallclock_seconds") for job in jobs} == {300}
    for atoms in node.outputs.labelled.to_atoms():
        reference = atoms.copy()
        reference.calc = EMT()
        assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-8
