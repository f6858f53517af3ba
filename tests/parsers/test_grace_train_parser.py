"""GraceTrainParser on retrieved folders: a real successful GRACE-FS fit, and each failure made from it."""

import shutil

import pytest
import yaml
from aiida.plugins import ParserFactory

from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation
from aiida_mlip_trainer.data import GraceFSPotentialData, TrainingSetData
from aiida_mlip_trainer.formats.grace_output import read_metrics_rows
from aiida_mlip_trainer.physics.reference_data import copper_emt
from tests.conftest import FIXTURES

EXIT = GraceTrainCalculation.exit_codes


@pytest.fixture
def grace_output(tmp_path):
    target = tmp_path / "retrieved"
    shutil.copytree(FIXTURES / "grace_train_success", target)
    return target


@pytest.fixture
def parse(generate_calc_job_node):
    structures = copper_emt(30, repeat=1, strain=0.03, rattle=0.05, seed=3)  # the real fit's data
    inputs = {"training_set": TrainingSetData(structures[:24]), "test_set": TrainingSetData(structures[24:])}

    def factory(folder):
        node = generate_calc_job_node("mlip_trainer.grace_train", folder, inputs)
        return ParserFactory("mlip_trainer.grace_train").parse_from_node(node, store_provenance=False)

    return factory


def test_success_in_the_plugins_units(grace_output, parse):
    results, calcfunction = parse(grace_output)
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    metrics = results["metrics"].get_dict()
    rows = read_metrics_rows((grace_output / "test_metrics.yaml").read_text())
    best = min(rows, key=lambda row: row["total_loss/test"])
    # gracemaker's file: eV/atom, eV/Å, eV/Å³; the plugin's: meV/atom, meV/Å, GPa (1 eV/Å³ = 160.2 GPa).
    assert metrics["test"]["energy_rmse"] == pytest.approx(1000 * best["rmse/depa"])
    assert metrics["test"]["force_rmse"] == pytest.approx(1000 * best["rmse/f_comp"])
    assert metrics["test"]["stress_rmse"] == pytest.approx(160.21766 * best["rmse/stress"], rel=1e-6)
    assert metrics["test"]["epoch"] == best["epoch"] and metrics["epochs"] == 40
    assert metrics["units"]["stress"] == "GPa per component" and metrics["interim"] is False
    assert metrics["reference"]["test"]["stress_component_rms"] > 1.0  # GPa
    potential = results["potential"]
    assert isinstance(potential, GraceFSPotentialData) and potential.has_checkpoint
    written = yaml.safe_load((grace_output / "input.yaml").read_text())["data"]["reference_energy"]
    assert potential.reference_energy == written and set(written) == {"Cu"}
    assert results["versions"]["tensorpotential"]


# Each failure made from the successful folder, one row each: the files removed, the files written (name: text),
# the exit code and what its message says.
FAILURES = [
    pytest.param(
        ("log.txt", "train_metrics.yaml", "test_metrics.yaml", "FS_model.yaml"),
        {"gracemaker.err": "bash: gracemaker: command not found\n", "gracemaker.exit_status": "127\n"},
        EXIT.ERROR_GRACEMAKER_NO_LOG,
        ("command not found",),
        id="no_log",
    ),
    pytest.param(
        ("train_metrics.yaml", "test_metrics.yaml", "FS_model.yaml"),
        {
            "gracemaker.err": "Traceback (most recent call last):\nKeyError: 'scheduler_params'\n",
            "gracemaker.exit_status": "1\n",
        },
        EXIT.ERROR_GRACEMAKER_UNREADABLE_INPUT,
        ("KeyError: 'scheduler_params'",),
        id="unreadable_input",
    ),
    pytest.param(
        (),
        {"gracemaker.err": "Traceback (most recent call last):\nMemoryError\n", "gracemaker.exit_status": "1\n"},
        EXIT.ERROR_GRACEMAKER_FAILED,
        ("MemoryError",),
        id="failed_during_the_fit",
    ),
    pytest.param(
        ("FS_model.yaml",),
        {
            "grace_utils.err": "Traceback (most recent call last):\nValueError: bad checkpoint\n",
            "grace_utils.exit_status": "1\n",
        },
        EXIT.ERROR_GRACE_EXPORT_FAILED,
        ("ValueError: bad checkpoint",),
        id="export_failed",
    ),
    pytest.param(
        (), {"FS_model.yaml": "elements: [Cu]\n"}, EXIT.ERROR_INVALID_GRACE_POTENTIAL, (), id="invalid_potential"
    ),
    pytest.param(
        ("FS_model.yaml", "model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001"),
        {"gracemaker.exit_status": "137\n"},
        EXIT.ERROR_KILLED_BEFORE_INTERIM,
        (),
        id="stopped_before_the_first_checkpoint",
    ),
]


@pytest.mark.parametrize(("removed", "written", "exit_code", "said"), FAILURES)
def test_failure(grace_output, parse, removed, written, exit_code, said):
    for name in removed:
        (grace_output / name).unlink()
    for name, text in written.items():
        (grace_output / name).write_text(text)
    _, calcfunction = parse(grace_output)
    assert calcfunction.exit_status == exit_code.status
    for words in said:
        assert words in calcfunction.exit_message


def test_nan_loss(grace_output, parse):
    path = grace_output / "train_metrics.yaml"
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace('"total_loss/train": ', '"total_loss/train": .nan, "x": ', 1)
    path.write_text("\n".join(lines))
    _, calcfunction = parse(grace_output)
    assert calcfunction.exit_status == EXIT.ERROR_NAN_LOSS.status
    assert "epoch 4" in calcfunction.exit_message


@pytest.mark.parametrize("status", [None, "143"])
def test_stopped_at_the_walltime_returns_the_exported_last_checkpoint(grace_output, parse, status):
    (grace_output / "mlip_trainer.soft_walltime").write_text("")
    if status is None:
        (grace_output / "gracemaker.exit_status").unlink()
    else:
        (grace_output / "gracemaker.exit_status").write_text(status)
    results, calcfunction = parse(grace_output)
    assert calcfunction.exit_status == EXIT.ERROR_OUT_OF_WALLTIME.status
    assert "soft walltime" in calcfunction.exit_message
    assert results["metrics"]["interim"] is True and "potential" in results
