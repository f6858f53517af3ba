"""ExplorationCalculation with a GRACE-FS potential (gracemaker's recorded fit of 4-atom EMT copper cells and the
active set pace_activeset computed for it): the script runs python-ace's GRACE-FS evaluator (``--model grace-fs``),
and the γ it records are those the node's own evaluator gives. Seconds: no fit."""

import numpy as np
import pytest
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.data import TrainingSetData
from tests.conftest import FIXTURES, recorded_grace_potential

FIT = FIXTURES / "grace_train_success"


@pytest.fixture
def grace_potential():
    return recorded_grace_potential().store()


def _copper(compression: float) -> TrainingSetData:
    atoms = bulk("Cu", "fcc", a=3.6 * compression, cubic=True).repeat(2)
    atoms.info["name"] = f"Cu_{compression}"
    return TrainingSetData([atoms], labelled=False).store()


def test_the_command_line_names_the_grace_fs_model(generate_calc_job, explore_code, grace_potential):
    folder, calcinfo = generate_calc_job(
        ExplorationCalculation,
        {
            "code": explore_code,
            "potential": grace_potential,
            "structures": _copper(1.0),
            "parameters": {"temperatures": [10]},
        },
    )
    params = calcinfo.codes_info[0].cmdline_params
    assert params[params.index("--model") + 1] == "grace-fs"
    assert (folder / "potential.yaml").read_bytes() == (FIT / "FS_model.yaml").read_bytes()
    assert (folder / "potential.asi").read_bytes() == (FIT / "FS_model.asi").read_bytes()


def test_md_with_a_grace_fs_potential_keeps_frames_in_the_band(explore_code, grace_potential):
    # Compressed by 4 %, beyond the ±3 % of the fit's data: γ rises into the collect band [5, 25) (measured 8.6 at 3 %)
    results, node = run_get_node(
        ExplorationCalculation,
        code=explore_code,
        potential=grace_potential,
        structures=_copper(0.96),
        parameters={"temperatures": [50], "steps": 60, "timestep": 2.0, "sample_interval": 10},
    )
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    candidates = results["candidates"]
    assert candidates.num_structures == summary["num_candidates"] > 0, summary
    # Checked independently: the node's GRACE-FS evaluator with its active set grades every kept frame as recorded.
    calculator = grace_potential.get_ace_calculator()
    grades = []
    for atoms in candidates.to_atoms():
        atoms.calc = calculator
        atoms.get_potential_energy()
        grades.append(float(np.max(calculator.results["gamma"])))
    assert all(5.0 <= grade < 25.0 for grade in grades), grades
    kept = summary["trajectories"][0]["kept"]
    steps = results["gamma"].get_array("steps").tolist()
    recorded = results["gamma"].get_array("gamma")[0]
    assert [recorded[steps.index(step)] for step in kept] == pytest.approx(grades, rel=1e-9)
