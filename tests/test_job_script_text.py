"""One rule for text that becomes shell: job-script options come only from Python builders; YAML files accept
scheduler requests only; environment variable names are identifiers wherever they come from; a training YAML reads
its structures_file only from its own folder."""

import shutil

import pytest
import yaml
from aiida import orm

from aiida_mlip_trainer.calculations.ase_oracle import AseOracleCalculation
from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.calculations.grace_train import GraceTrainCalculation
from aiida_mlip_trainer.calculations.job_options import check_data_options
from aiida_mlip_trainer.calculations.pace_activeset import PaceActivesetCalculation
from aiida_mlip_trainer.calculations.pace_select import PaceSelectCalculation
from aiida_mlip_trainer.calculations.pace_train import PaceTrainCalculation
from aiida_mlip_trainer.cli.learning_yaml import learning_builder_from_yaml
from aiida_mlip_trainer.cli.training_yaml import training_builder_from_yaml
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.training import TrainingWorkChain
from tests.test_cli import _one_error_line, invoke

INJECTED = {"A=1; touch x; B": "v"}


# -------------------------------------------------------------------- environment variable names, from anywhere
@pytest.mark.parametrize(
    "process_class, path",
    [
        (PaceTrainCalculation, "metadata.options"),
        (GraceTrainCalculation, "metadata.options"),
        (PaceSelectCalculation, "metadata.options"),
        (PaceActivesetCalculation, "metadata.options"),
        (ExplorationCalculation, "metadata.options"),
        (AseOracleCalculation, "metadata.options"),
        (TrainingWorkChain, "training.pace.metadata.options"),
        (TrainingWorkChain, "yace.metadata.options"),  # aiida-shell's ShellJob, exposed
        (TrainingWorkChain, "activeset.metadata.options"),
        (ActiveLearningWorkChain, "exploration.metadata.options"),
        (ActiveLearningWorkChain, "selection.pace_select.metadata.options"),
    ],
)
def test_environment_variable_names_must_be_identifiers(process_class, path):
    """aiida-core writes `export A=1; touch x; B='v'` for the key `A=1; touch x; B`."""
    port = process_class.spec().inputs
    for part in [*path.split("."), "environment_variables"]:
        port = port[part]
    error = port.validate(INJECTED)
    assert error is not None and "is not an identifier" in str(error)
    assert port.validate({"MOCK_PACEMAKER_MODE": "crash", "_X1": "v"}) is None


def test_injected_environment_variable_refused_before_the_job(installed_code, generate_calc_job):
    """Through a real launch: the process is refused at instantiation, no job script is written."""
    from ase.build import bulk

    code = installed_code("mlip-trainer-ase-oracle", shutil.which("mlip-trainer-ase-oracle"), "mlip_trainer.ase_oracle")
    inputs = {
        "code": code,
        "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.6)),
        "calculator": orm.Str("emt"),
        "metadata": {"options": {"environment_variables": INJECTED}},
    }
    with pytest.raises(ValueError, match="is not an identifier"):
        generate_calc_job(AseOracleCalculation, inputs)
    inputs["metadata"]["options"]["environment_variables"] = {"OMP_NUM_THREADS": "1"}
    _, calcinfo = generate_calc_job(AseOracleCalculation, inputs)
    assert calcinfo.codes_info


# ---------------------------------------------------------------------------------------- the allowlist itself
def test_scheduler_requests_pass_as_data():
    options = {
        "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 4},
        "max_wallclock_seconds": 3600,
        "max_memory_kb": 2_000_000,
        "queue_name": "debug",
        "account": "proj-42",
        "qos": "normal",
        "withmpi": False,
        "rerunnable": True,
        "environment_variables": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": 1},
    }
    assert check_data_options(options, "x.yaml: options", "in Python") is None


@pytest.mark.parametrize(
    "key, value",
    [
        ("prepend_text", "id"),
        ("append_text", "id"),
        ("custom_scheduler_commands", "id"),
        ("mpirun_extra_params", ["x"]),
        ("import_sys_environment", False),
        ("environment_variables_double_quotes", True),
        ("submit_script_filename", "x.sh"),
        ("input_filename", "../x"),
        ("output_filename", "x"),
        ("scheduler_stderr", "/tmp/x"),
        ("additional_retrieve_list", ["x"]),
        ("stash", {"target_base": "/tmp"}),
        ("parser_name", "core.arithmetic.add"),
    ],
)
def test_job_script_options_are_refused_as_data_with_where_to_set_them(key, value):
    message = check_data_options({key: value}, "x.yaml: options", "in Python on the builder")
    assert f"x.yaml: options: option {key!r}" in message and "set it in Python on the builder" in message


# --------------------------------------------------------------------------------------------- the YAML files
def _write(tmp_path, name: str, content: dict):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content))
    return path


TRAIN = {"codes": {"pacemaker": "no-such-code"}, "training_set": 1}


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"options": {"append_text": "id"}}, ["options: option 'append_text'", "builder.training.pace.metadata"]),
        ({"options": {"prepend_text": "id"}}, ["options: option 'prepend_text'"]),
        ({"options": {"environment_variables": {"BASH_ENV": "/tmp/x"}}}, ["'BASH_ENV' is job-script text"]),
        (
            {"overrides": {"training": {"pace": {"metadata": {"options": {"prepend_text": "id"}}}}}},
            ["overrides.training.pace.metadata.options: option 'prepend_text'"],
        ),
        (
            {"overrides": {"activeset": {"metadata": {"options": {"custom_scheduler_commands": "id"}}}}},
            ["option 'custom_scheduler_commands'"],
        ),
    ],
)
def test_training_yaml_options_hold_scheduler_requests_only(tmp_path, changes, fragments):
    """A training YAML's options.prepend_text reached the pacemaker job."""
    path = _write(tmp_path, "train.yaml", {**TRAIN, **changes})
    with pytest.raises(ValueError) as error:
        training_builder_from_yaml(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(error.value)


def test_training_yaml_refusal_through_the_command_line_is_one_line(tmp_path):
    path = _write(tmp_path, "train.yaml", {**TRAIN, "options": {"append_text": "id"}})
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    _one_error_line(invoke("train", "launch", path, "--run"), "option 'append_text'", "in Python on the builder")
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_python_options_stay_allowed(argon_sets, mock_pacemaker_code, pace_tool_codes):
    """Typed in Python, job-script text is the user's own: get_builder_from_protocol(options=...) keeps it."""
    codes = {"pacemaker": mock_pacemaker_code, **pace_tool_codes}
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes, argon_sets["train"], "fast", options={"prepend_text": "module load pacemaker"}
    )
    assert builder.training.pace.metadata.options.prepend_text == "module load pacemaker"


LEARN = {"codes": {"pacemaker": "no-such-code"}, "structures": 1, "exploration": {"temperatures": [300]}}


@pytest.mark.parametrize(
    "changes, fragments",
    [
        ({"options": {"prepend_text": "id"}}, ["options: option 'prepend_text'", "builder.exploration.metadata"]),
        (
            {"oracle": {"type": "ase", "code": "x", "calculator": "emt", "options": {"append_text": "id"}}},
            ["oracle.options: option 'append_text'", "builder.labeling.oracle_job_options"],
        ),
        (
            {
                "oracle": {
                    "type": "cp2k",
                    "code": "x",
                    "elements": ["Si"],
                    "options": {"custom_scheduler_commands": "x"},
                }
            },
            ["oracle.options: option 'custom_scheduler_commands'"],
        ),
        (
            {"oracle": {"type": "cp2k", "code": "x", "elements": ["Si"], "options": {"queue_name": "a\nid"}}},
            ["queue_name must be one word"],
        ),
        (
            {"overrides": {"training": {"training": {"pace": {"metadata": {"options": {"append_text": "id"}}}}}}},
            ["overrides.training.training.pace.metadata.options: option 'append_text'"],
        ),
    ],
)
def test_learning_yaml_options_hold_scheduler_requests_only(tmp_path, changes, fragments):
    """A learn YAML's top-level options.prepend_text reached the exploration and pacemaker jobs; the oracle's
    append_text and custom_scheduler_commands passed too."""
    path = _write(tmp_path, "learn.yaml", {**LEARN, **changes})
    with pytest.raises(ValueError) as error:
        learning_builder_from_yaml(path)
    for fragment in [str(path), *fragments]:
        assert fragment in str(error.value)
    _one_error_line(invoke("learn", "launch", path, "--run"), fragments[0])


# ------------------------------------------------------------------------------- structures_file (low finding)
def _train_yaml_with_file(folder, structures_file: str):
    return _write(folder, "train.yaml", {"codes": {"pacemaker": "no-such-code"}, "structures_file": structures_file})


def test_structures_file_outside_the_yaml_folder_is_refused(tmp_path):
    """`structures_file` read any absolute or ../ path."""
    outside = tmp_path / "secret.extxyz"
    outside.write_text("not yours\n")
    folder = tmp_path / "project"
    folder.mkdir()
    for value in (str(outside), "../secret.extxyz", "data/../../secret.extxyz", "~/secret.extxyz"):
        with pytest.raises(ValueError, match="must be a path inside the YAML file's folder"):
            training_builder_from_yaml(_train_yaml_with_file(folder, value))
    (folder / "link.extxyz").symlink_to(outside)
    with pytest.raises(ValueError, match="leads out of the YAML file's folder"):
        training_builder_from_yaml(_train_yaml_with_file(folder, "link.extxyz"))
    _one_error_line(
        invoke("train", "launch", _train_yaml_with_file(folder, "../secret.extxyz")), "inside the YAML file's folder"
    )


def test_structures_file_inside_the_yaml_folder_is_read(tmp_path):
    from aiida_mlip_trainer.cli.training_yaml import structures_file_path

    (tmp_path / "data").mkdir()
    inside = tmp_path / "data" / "set.extxyz"
    inside.write_text("x\n")
    spec = tmp_path / "train.yaml"
    assert structures_file_path(spec, "data/set.extxyz") == inside.resolve()
    assert structures_file_path(spec, "./data/./set.extxyz") == inside.resolve()
