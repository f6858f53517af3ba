"""examples/*.py choose their inputs safely: run as the README shows them (`verdi run examples/NAME.py [ARGUMENT]`) on a
fresh profile (SQLite, in tmp_path) that holds only a potential of other elements than the examples' copper, each
stops with one line that says what is missing, never a traceback. The successful runs, after `make demo`, are in
tests/test_docs_commands.py (the README's block) and tests/test_tutorial.py."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARGON = ROOT / "tests" / "fixtures" / "pace_train_success" / "output_potential.yaml"
# An argon potential as the output of a finished TrainingWorkChain: what the examples' query would find.
SETUP = f"""
from aiida import orm
from aiida.common.links import LinkType
from plumpy import ProcessState
from aiida_mlip_trainer.data import PacePotentialData
from aiida_mlip_trainer.workflows import TrainingWorkChain

chain = orm.WorkflowNode()
chain.set_process_type(TrainingWorkChain.build_process_type())
chain.set_process_state(ProcessState.FINISHED)
chain.set_exit_status(0)
chain.store()
potential = PacePotentialData({str(ARGON)!r}).store()
potential.base.links.add_incoming(chain, LinkType.RETURN, "potential")
print(potential.pk)
"""


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A fresh SQLite profile with one finished TrainingWorkChain whose potential is argon; its pk."""
    folder = tmp_path_factory.mktemp("examples")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AIIDA")}
    environment["AIIDA_PATH"] = str(folder)
    environment["PATH"] = f"{pathlib.Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    subprocess.run(
        ["verdi", "presto", "--profile-name", "examples", "--no-broker"], env=environment, check=True, cwd=folder
    )
    (folder / "setup.py").write_text(SETUP)
    created = subprocess.run(
        ["verdi", "run", "setup.py"], env=environment, cwd=folder, capture_output=True, text=True, check=True
    )
    return folder, environment, created.stdout.split()[-1]


def verdi_run(profile, *arguments: str) -> str:
    """`verdi run examples/...` from the repository root; stderr of a run that must fail, in one line."""
    folder, environment, _ = profile
    result = subprocess.run(
        ["verdi", "run", *arguments], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_fine_tune_without_a_copper_potential_says_so_in_one_line(profile):
    line = verdi_run(profile, "examples/fine_tune.py")
    assert line.startswith("fine_tune.py: no finished TrainingWorkChain made a potential of ['Cu']")


def test_fine_tune_refuses_a_potential_of_other_elements(profile):
    pk = profile[2]
    line = verdi_run(profile, "examples/fine_tune.py", pk)
    assert line == f"fine_tune.py: potential {pk} has elements ['Ar'], the new data ['Cu']"
    assert verdi_run(profile, "examples/fine_tune.py", "999999").startswith("fine_tune.py: ")


def test_query_provenance_without_a_deployable_potential_says_so_in_one_line(profile):
    line = verdi_run(profile, "examples/query_provenance.py")
    assert line.startswith("query_provenance.py: no deployable potential yet")


def test_missing_codes_and_files_are_one_line(profile):
    assert verdi_run(profile, "examples/train_argon.py", "nothing@localhost").startswith(
        "train_argon.py: code nothing@localhost: "
    )
    assert verdi_run(profile, "examples/train_from_extxyz.py", "missing.extxyz") == (
        "train_from_extxyz.py: no file missing.extxyz"
    )
