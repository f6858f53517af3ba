"""PaceTrainCalculation: input folder and command line (sandbox, no run), validation, and mocked runs."""

import gzip
import pathlib
import re

import pytest
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from tests.conftest import FIXTURES

POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"


def inputs_for(code, sets, parameters, **extra):
    return {"code": code, "training_set": sets["train"], "test_set": sets["test"], "parameters": parameters, **extra}


def test_input_folder_and_command_line(generate_calc_job, mock_pacemaker_code, argon_sets, small_parameters):
    previous = PacePotentialData(POTENTIAL).store()
    folder, calcinfo = generate_calc_job(
        PaceTrainCalculation,
        inputs_for(mock_pacemaker_code, argon_sets, small_parameters, previous_potential=previous),
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "input.yaml",
        "previous_potential.yaml",
        "test_set.pckl.gzip",
        "training_set.pckl.gzip",
    ]
    config = yaml.safe_load((folder / "input.yaml").read_text())
    assert config["data"] == {"filename": "training_set.pckl.gzip", "test_filename": "test_set.pckl.gzip"}
    assert config["potential"]["elements"] == ["Ar"] and config["cutoff"] == 7.0 and config["seed"] == 42
    assert config["fit"]["maxiter"] == 100
    with gzip.open(folder / "training_set.pckl.gzip") as handle:
        assert handle.read(2) == b"\x80\x04"  # a pickle of protocol 4 inside real gzip
    assert (folder / "previous_potential.yaml").read_text() == POTENTIAL.read_text()

    (codeinfo,) = calcinfo.codes_info
    assert codeinfo.cmdline_params == ["input.yaml", "-p", "previous_potential.yaml"]
    assert codeinfo.stdout_name == "pacemaker.out" and codeinfo.stderr_name == "pacemaker.err"
    assert "echo $? > pacemaker.exit_status" in calcinfo.append_text
    assert {"log.txt", "output_potential.yaml", "interim_potential_*.yaml", "metrics.txt"} <= set(
        calcinfo.retrieve_list
    )
    assert not any(name.endswith("pckl.gzip") for name in calcinfo.retrieve_list)


def test_user_strings_never_reach_the_shell_unquoted(
    generate_calc_job, mock_pacemaker_code, argon_sets, small_parameters
):
    """A hostile value in the parameters lands in input.yaml as data, never on the command line (where the
    allow-list of keys and values leaves a free string at all: pacemaker then refuses the unknown radial basis)."""
    small_parameters["potential"]["bonds"]["ALL"]["radbase"] = "SBessel; rm -rf ~ #"
    folder, calcinfo = generate_calc_job(
        PaceTrainCalculation, inputs_for(mock_pacemaker_code, argon_sets, small_parameters)
    )
    assert calcinfo.codes_info[0].cmdline_params == ["input.yaml"]
    written = yaml.safe_load((folder / "input.yaml").read_text())
    assert written["potential"]["bonds"]["ALL"]["radbase"] == "SBessel; rm -rf ~ #"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i["parameters"]["fit"].update(maxiter=-1), "fit.maxiter must be a positive integer"),
        (lambda i: i["parameters"].update(data={"test_size": 0.1}), "not both"),
        (
            lambda i: i.update(training_set=TrainingSetData(i["training_set"].to_atoms(), labelled=False)),
            "training_set has no labels",
        ),
        (lambda i: i.update(previous_potential=_copper_potential()), "needs the same elements"),
    ],
)
def test_bad_input_fails_before_any_job(mock_pacemaker_code, argon_sets, small_parameters, change, message):
    inputs = inputs_for(mock_pacemaker_code, argon_sets, small_parameters)
    change(inputs)
    jobs_before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(PaceTrainCalculation, **inputs)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == jobs_before  # no job was even created


def _copper_potential():
    text = re.sub(r"\bAr\b", "Cu", POTENTIAL.read_text())
    return PacePotentialData(text.encode())


def run_mock(mock_pacemaker_code, argon_sets, small_parameters, mode, **extra):
    inputs = inputs_for(mock_pacemaker_code, argon_sets, small_parameters, **extra)
    inputs["metadata"] = {"options": {"environment_variables": {"MOCK_PACEMAKER_MODE": mode}}}
    return run_get_node(PaceTrainCalculation, **inputs)


def test_mock_success(mock_pacemaker_code, argon_sets, small_parameters):
    results, node = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success")
    assert node.is_finished_ok, node.exit_message
    assert results["potential"].elements == ["Ar"]
    metrics = results["metrics"].get_dict()
    # the numbers of the real fit recorded for exactly these inputs (tests/fixtures/replay)
    assert metrics["test"]["force_rmse"] == 4.88 and metrics["iterations"] == 100
    assert metrics["reference"]["test"]["force_component_rms"] == pytest.approx(
        1000 * argon_sets["test"].base.attributes.get("force_component_rms")
    )
    curve = results["learning_curve"]
    assert len(curve.get_array("train_loss")) == 101
    # the graph links inputs and outputs of the one calculation
    assert results["potential"].base.links.get_incoming().one().node.pk == node.pk


def test_mock_continue_passes_previous_potential(mock_pacemaker_code, argon_sets, small_parameters):
    previous = PacePotentialData(POTENTIAL).store()
    _, node = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success", previous_potential=previous)
    assert node.is_finished_ok
    workdir = pathlib.Path(node.outputs.remote_folder.get_remote_path())
    assert (workdir / "mock_argv.txt").read_text().split() == ["input.yaml", "-p", "previous_potential.yaml"]


@pytest.mark.parametrize(
    ("mode", "exit_code", "has_potential"),
    [
        ("walltime", "ERROR_OUT_OF_WALLTIME", True),
        ("nan", "ERROR_NAN_LOSS", False),
        ("crash", "ERROR_PACEMAKER_FAILED", False),
        ("bad_input", "ERROR_UNREADABLE_INPUT", False),
    ],
)
def test_mock_failures_keep_logs_and_inputs(
    mock_pacemaker_code, argon_sets, small_parameters, mode, exit_code, has_potential
):
    results, node = run_mock(mock_pacemaker_code, argon_sets, small_parameters, mode)
    assert node.exit_status == PaceTrainCalculation.exit_codes[exit_code].status, node.exit_message
    retrieved = node.outputs.retrieved.base.repository.list_object_names()
    assert "log.txt" in retrieved and "pacemaker.err" in retrieved
    assert node.inputs.training_set.pk == argon_sets["train"].pk
    assert ("potential" in results) is has_potential
    if mode == "walltime":
        assert "interim_potential_0.yaml" in node.exit_message
        assert results["metrics"]["interim"] is True
        assert node.outputs.retrieved.base.repository.get_object_content("pacemaker.exit_status").strip() == "137"
    if mode == "crash":
        assert "RuntimeError: mock pacemaker crashed" in node.exit_message


def test_walltime_becomes_a_soft_stop(generate_calc_job, mock_pacemaker_code, argon_sets, small_parameters):
    inputs = inputs_for(mock_pacemaker_code, argon_sets, small_parameters)
    inputs["metadata"] = {"options": {"max_wallclock_seconds": 3600}}
    _, calcinfo = generate_calc_job(PaceTrainCalculation, inputs)
    watchdog = "( sleep 3300 && touch mlip_trainer.soft_walltime && pkill -TERM -P $$ -f input.yaml ) &"
    assert watchdog in calcinfo.prepend_text
    assert calcinfo.append_text.splitlines()[0] == "echo $? > pacemaker.exit_status"
    assert PaceTrainCalculation.soft_walltime(60) == 50
    assert PaceTrainCalculation.soft_walltime(86400) == 86100
    assert PaceTrainCalculation.soft_walltime(None) is None
    _, calcinfo = generate_calc_job(PaceTrainCalculation, inputs_for(mock_pacemaker_code, argon_sets, small_parameters))
    assert "sleep" not in calcinfo.prepend_text and "pkill" not in calcinfo.prepend_text


def test_the_job_script_reads_the_versions_with_the_codes_own_python(
    generate_calc_job, mock_pacemaker_code, argon_sets, small_parameters
):
    _, calcinfo = generate_calc_job(PaceTrainCalculation, inputs_for(mock_pacemaker_code, argon_sets, small_parameters))
    executable = str(mock_pacemaker_code.get_executable())
    assert f"sed -n '1s/^#![[:space:]]*//p' {executable}" in calcinfo.prepend_text
    assert "> versions.json" in calcinfo.prepend_text and "versions.json" in calcinfo.retrieve_list


def _fake_site(tmp_path, name, version):
    """A folder that, first on PYTHONPATH, makes importlib.metadata report ``name`` at ``version``."""
    site = tmp_path / f"site-{name}-{version}"
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return site


def test_potentials_fitted_with_different_versions_are_told_apart_by_a_query(
    mock_pacemaker_code, argon_sets, small_parameters, tmp_path
):
    """The versions are read where the job runs: here a job whose Python sees another TensorFlow."""
    first, first_node = run_mock(mock_pacemaker_code, argon_sets, small_parameters, "success")
    inputs = inputs_for(mock_pacemaker_code, argon_sets, small_parameters)
    environment = {"MOCK_PACEMAKER_MODE": "success", "PYTHONPATH": str(_fake_site(tmp_path, "tensorflow", "9.9.9"))}
    inputs["metadata"] = {"options": {"environment_variables": environment}}
    second, second_node = run_get_node(PaceTrainCalculation, **inputs)
    assert first_node.is_finished_ok and second_node.is_finished_ok
    assert second["versions"]["tensorflow"] == "9.9.9" != first["versions"].get_dict().get("tensorflow")
    assert second["potential"].fitted_with["tensorflow"] == "9.9.9"

    query = orm.QueryBuilder().append(
        PacePotentialData, filters={"attributes.fitted_with.tensorflow": "9.9.9"}, project="id"
    )
    assert query.all(flat=True) == [second["potential"].pk]
    by_calculation = (
        orm.QueryBuilder()
        .append(orm.Dict, filters={"attributes.tensorflow": "9.9.9"}, tag="versions")
        .append(PaceTrainCalculation, with_outgoing="versions", project="id")
    )
    assert by_calculation.all(flat=True) == [second_node.pk]
