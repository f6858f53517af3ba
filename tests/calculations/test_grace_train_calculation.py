"""GraceTrainCalculation: input folder, command line and job script (sandbox, no run), and validation."""

import re

import pytest
import yaml
from aiida import orm

from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation
from aiida_mlip_trainer.data import GraceFSPotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt
from tests.conftest import FIXTURES

FIT = FIXTURES / "grace_train_success"
CHECKPOINT = {name: FIT / name for name in ("model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001")}


@pytest.fixture
def copper():
    structures = copper_emt(8, repeat=1, seed=5)
    return {"train": TrainingSetData(structures[:6]).store(), "test": TrainingSetData(structures[6:]).store()}


@pytest.fixture
def grace_code(installed_code, mock_executable):
    return installed_code("mock-gracemaker", mock_executable("exit 0"), "mlip_trainer.grace_train")


def test_input_folder_command_line_and_export_in_the_job_script(generate_calc_job, grace_code, copper):
    folder, calcinfo = generate_calc_job(
        GraceTrainCalculation,
        {"code": grace_code, "training_set": copper["train"], "test_set": copper["test"], "parameters": {"seed": 7}},
    )
    assert sorted(p.name for p in folder.iterdir()) == ["input.yaml", "test_set.pckl.gzip", "training_set.pckl.gzip"]
    config = yaml.safe_load((folder / "input.yaml").read_text())
    assert config["fit"]["loss"]["stress"]["weight"] > 0 and config["data"]["stress_units"] == "eV/A3"
    # E0 by least squares, written out (gracemaker's FS export leaves them out: the parser adds them to the node)
    assert set(config["data"]["reference_energy"]) == {"Cu"}
    (codeinfo,) = calcinfo.codes_info
    assert codeinfo.cmdline_params == ["input.yaml"]
    append = calcinfo.append_text
    assert append.startswith("echo $? > gracemaker.exit_status")
    # The model gracemaker ends with is copied and exported by grace_utils of the same installation.
    executable = str(grace_code.get_executable())
    grace_utils = executable.rsplit("/", 1)[0] + "/grace_utils"
    assert f"{grace_utils} -p model.yaml -c checkpoint export -n FS_model.yaml -sf" in append
    assert "seed/7/checkpoints/checkpoint.best_test_loss" in append
    assert {"FS_model.yaml", "model.yaml", "checkpoint.index", "test_metrics.yaml", "log.txt"} <= set(
        calcinfo.retrieve_list
    )


def test_without_test_data_the_last_epoch_is_a_checkpoint(generate_calc_job, grace_code, copper):
    parameters = {"fit": {"maxiter": 12, "checkpoint_freq": 5}}
    folder, _ = generate_calc_job(
        GraceTrainCalculation, {"code": grace_code, "training_set": copper["train"], "parameters": parameters}
    )
    fit = yaml.safe_load((folder / "input.yaml").read_text())["fit"]
    assert fit["maxiter"] % fit["checkpoint_freq"] == 0


def test_fine_tuning_starts_from_the_previous_checkpoint(generate_calc_job, grace_code, copper):
    previous = GraceFSPotentialData(FIT / "FS_model.yaml", checkpoint=CHECKPOINT).store()
    folder, calcinfo = generate_calc_job(
        GraceTrainCalculation,
        {"code": grace_code, "training_set": copper["train"], "previous_potential": previous},
    )
    assert calcinfo.codes_info[0].cmdline_params == [
        "input.yaml",
        "-p",
        "previous_model.yaml",
        "-cn",
        "previous_checkpoint",
    ]
    assert (folder / "previous_model.yaml").read_bytes() == CHECKPOINT["model.yaml"].read_bytes()
    assert (folder / "previous_checkpoint.index").read_bytes() == CHECKPOINT["checkpoint.index"].read_bytes()
    config = yaml.safe_load((folder / "input.yaml").read_text())
    assert config["fit"]["reset_epoch_and_step"] is True and config["fit"]["reset_optimizer"] is True
    assert config["data"]["reference_energy"] == 0  # the predecessor's E0 (none), not new ones


def test_walltime_stops_gracemaker_early_enough_to_export(generate_calc_job, grace_code, copper):
    _, calcinfo = generate_calc_job(
        GraceTrainCalculation,
        {
            "code": grace_code,
            "training_set": copper["train"],
            "metadata": {"options": {"max_wallclock_seconds": 3600}},
        },
    )
    (limit,) = re.findall(r"sleep (\d+) && touch mlip_trainer.soft_walltime", calcinfo.prepend_text)
    assert int(limit) == 3600 - 300 - GraceTrainCalculation.EXPORT_ALLOWANCE


@pytest.mark.parametrize(
    "change, message",
    [
        ({"parameters": {"potential": {"preset": "GRACE_1LAYER_latest"}}}, "only ['FS']"),
        ({"parameters": {"fit": {"loss": {"stress": -5}}}}, "stress.weight"),
        ({"no_stress": True}, "no stress labels"),
        ({"previous_without_checkpoint": True}, "no gracemaker checkpoint"),
    ],
)
def test_bad_input_fails_before_any_job(generate_calc_job, grace_code, copper, change, message):
    inputs = {"code": grace_code, "training_set": copper["train"]}
    if "parameters" in change:
        inputs["parameters"] = orm.Dict(change["parameters"])
    if change.get("no_stress"):
        structures = copper_emt(3, repeat=1, seed=6)
        for atoms in structures:
            del atoms.calc.results["stress"]
        inputs["training_set"] = TrainingSetData(structures).store()
    if change.get("previous_without_checkpoint"):
        inputs["previous_potential"] = GraceFSPotentialData(FIT / "FS_model.yaml").store()
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_calc_job(GraceTrainCalculation, inputs)


def test_user_strings_never_reach_the_job_script(generate_calc_job, grace_code, copper):
    """A hostile string in the parameters lands in input.yaml as data; the job script holds only the plugin's text
    (the seed directory is written from a checked integer)."""
    hostile = "a; touch pwned #"
    folder, calcinfo = generate_calc_job(
        GraceTrainCalculation,
        {
            "code": grace_code,
            "training_set": copper["train"],
            "parameters": {"fit": {"scheduler_params": {"minimum_learning_rate": 0.001, "note": hostile}}},
        },
    )
    assert hostile in (folder / "input.yaml").read_text()
    script = "\n".join([calcinfo.prepend_text or "", calcinfo.append_text, *calcinfo.codes_info[0].cmdline_params])
    assert hostile not in script and "pwned" not in script
    with pytest.raises(ValueError, match="seed must be a positive integer"):
        generate_calc_job(
            GraceTrainCalculation,
            {"code": grace_code, "training_set": copper["train"], "parameters": {"seed": "1 && touch pwned"}},
        )
