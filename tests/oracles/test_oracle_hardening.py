"""An oracle description is data: what it may not carry (job-script text, command-line words, files outside the
job folder, a command runner as the process, a generator aimed at a taken port) is refused before any job, with a
message; what a user types in Python (``oracle_job_options``) still reaches the jobs. ``validate_oracle`` never
raises."""

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import (
    ase_oracle,
    check_oracle_inputs,
    cp2k_oracle,
    validate_oracle,
)
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.oracles.conftest import copper_cells

CP2K = "aiida.calculations:cp2k"


@pytest.fixture
def fake_cp2k(installed_code):
    """A code of the cp2k plugin that never runs (every test here stops before a job)."""
    return installed_code("fake-cp2k", "/bin/true", "cp2k")


def _jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode).count()


def _validate(oracle: dict, job_options: dict | None = None) -> str | None:
    structure_inputs = oracle.get("structure_inputs", {})
    return validate_oracle(
        oracle["process"],
        oracle.get("structure_port", "structure"),
        oracle["adapter"],
        oracle["inputs"],
        oracle.get("options"),
        structure_inputs.get("generator"),
        structure_inputs.get("parameters"),
        job_options,
    )


# ------------------------------------------------------------------------------------- item 1: options as data
@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"prepend_text": "id"}, "option 'prepend_text'"),
        ({"append_text": "id"}, "option 'append_text'"),
        ({"custom_scheduler_commands": "#SBATCH --x\nid"}, "option 'custom_scheduler_commands'"),
        ({"mpirun_extra_params": ["; id"]}, "option 'mpirun_extra_params'"),
        ({"import_sys_environment": False}, "option 'import_sys_environment'"),
        ({"environment_variables_double_quotes": True}, "option 'environment_variables_double_quotes'"),
        ({"submit_script_filename": "../x.sh"}, "option 'submit_script_filename'"),
        ({"scheduler_stdout": "/tmp/out"}, "option 'scheduler_stdout'"),
        ({"additional_retrieve_list": ["x"]}, "option 'additional_retrieve_list'"),
        ({"environment_variables": {"LD_PRELOAD": "/tmp/x.so"}}, "'LD_PRELOAD' is job-script text"),
        ({"environment_variables": {"OMP_NUM_THREADS": "1; id"}}, "OMP_NUM_THREADS must be a positive integer"),
        ({"environment_variables": {"A=1; touch x; B": "v"}}, "job-script text"),
        ({"queue_name": "debug\nid"}, "queue_name must be one word"),
        ({"account": "a b"}, "account must be one word"),
        ({"resources": {"num_machines": 1, "parallel_env": "x\nid"}}, "resources.parallel_env"),
        ({"max_wallclock_seconds": True}, "max_wallclock_seconds must be a positive integer"),
    ],
)
def test_stored_description_options_hold_scheduler_requests_only(ase_oracle_code, copper_pool, options, fragment):
    """`options.prepend_text` of a stored oracle description ran `id` inside a LabelingWorkChain that finished [0]."""
    oracle = ase_oracle(ase_oracle_code, "emt")
    oracle["options"] = {"resources": {"num_machines": 1}, **options}
    before = _jobs()
    with pytest.raises(ValueError, match="oracle.options") as error:
        run_get_node(LabelingWorkChain, pool=copper_pool, oracle=oracle)
    assert fragment in str(error.value)
    if "option '" in fragment:  # says where to set it instead
        assert "oracle_job_options" in str(error.value)
    assert _jobs() == before


def test_cp2k_oracle_defaults_pass_and_its_options_are_data(fake_cp2k):
    """cp2k_oracle sets OMP_NUM_THREADS=1 (a thread count: allowed); job-script text through its `options` is not."""
    assert _validate(cp2k_oracle(fake_cp2k, ["Si"])) is None
    assert _validate(cp2k_oracle(fake_cp2k, ["Si"], options={"queue_name": "debug", "max_memory_kb": 10**6})) is None
    message = _validate(cp2k_oracle(fake_cp2k, ["Si"], options={"prepend_text": "module load cp2k"}))
    assert "prepend_text" in message and "oracle_job_options" in message


def test_oracle_job_options_from_python_may_hold_job_script_text(fake_cp2k):
    oracle = cp2k_oracle(fake_cp2k, ["Si"])
    typed = {"prepend_text": "module load cp2k", "environment_variables": {"LD_LIBRARY_PATH": "/x"}}
    assert _validate(oracle, typed) is None
    message = _validate(oracle, {"environment_variables": {"A=1; touch x; B": "v"}})
    assert "oracle_job_options" in message and "not an identifier" in message
    assert "no_such_option" in _validate(oracle, {"no_such_option": 1})


def test_oracle_job_options_reach_every_oracle_job(ase_oracle_code):
    """The way left for job-script text: typed in Python, merged into each job's options with the description's."""
    pool = TrainingSetData(copper_cells(1), labelled=False).store()
    oracle = ase_oracle(ase_oracle_code, "emt", options={"environment_variables": {"OMP_NUM_THREADS": 1}})
    job_options = {"prepend_text": "echo typed-in-python", "environment_variables": {"MY_SETTING": "x"}}
    _, node = run_get_node(LabelingWorkChain, pool=pool, oracle=oracle, oracle_job_options=job_options)
    assert node.is_finished_ok, node.exit_message
    (job,) = [n for n in node.called if n.process_label == "AseOracleCalculation"]
    assert job.get_option("prepend_text") == "echo typed-in-python"
    assert job.get_option("environment_variables") == {"OMP_NUM_THREADS": 1, "MY_SETTING": "x"}
    # never stored as an input node of the labelling
    assert "oracle_job_options" not in {link.link_label for link in node.base.links.get_incoming().all()}


def test_active_learning_exposes_oracle_job_options():
    """The loop passes its labeling namespace, non-db inputs included (exposed_inputs reads self.inputs), on."""
    port = ActiveLearningWorkChain.spec().inputs["labeling"]["oracle_job_options"]
    assert port.non_db and dict in (port.valid_type if isinstance(port.valid_type, tuple) else (port.valid_type,))
    builder = ActiveLearningWorkChain.get_builder()
    builder.labeling.oracle_job_options = {"prepend_text": "module load cp2k"}
    assert builder.labeling.oracle_job_options["prepend_text"] == "module load cp2k"


def test_node_in_the_options_namespace_of_the_inputs_is_refused(ase_oracle_code):
    """A Str node where the job's metadata.options.prepend_text goes does not fit the port (a str)."""
    oracle = ase_oracle(ase_oracle_code, "emt")
    oracle["inputs"]["metadata"] = {"options": {"prepend_text": orm.Str("id")}}
    assert "prepend_text" in _validate(oracle)


def test_options_dict_and_remote_folders_among_the_inputs_are_refused(aiida_localhost, fake_cp2k):
    """A work chain oracle that takes its job options as a Dict node gets the rule of oracle.options; a RemoteData
    would link a folder of the computer into every job."""
    message = check_oracle_inputs({"cp2k": {"options": orm.Dict({"append_text": "id"})}})
    assert "oracle input cp2k.options" in message and "append_text" in message
    assert check_oracle_inputs({"options": orm.Dict({"max_wallclock_seconds": 60})}) is None
    remote = orm.RemoteData(computer=aiida_localhost, remote_path="/etc")
    assert "RemoteData" in check_oracle_inputs({"parent_calc_folder": remote})
    oracle = cp2k_oracle(fake_cp2k, ["Si"])
    oracle["inputs"]["parent_calc_folder"] = remote  # aiida-cp2k links it into the job folder
    assert "oracle input parent_calc_folder is a RemoteData" in _validate(oracle)


# ------------------------------------------------------------------------------------ item 3: settings retrieve
@pytest.mark.parametrize(
    "settings, fragment",
    [
        ({"additional_retrieve_list": ["../../../../etc/passwd"]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_list": ["/etc/passwd"]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_list": ["sub/../../x"]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_list": [["../x", ".", 0]]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_list": [["x", "/tmp", 0]]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_temporary_list": ["~/.ssh/id_rsa"]}, "not a relative path inside the job folder"),
        ({"additional_retrieve_list": "aiida.out"}, "must be a list of file names"),
        ({"cmdline": ["-o", "/tmp/x"]}, "`cmdline` is command-line text"),
        ({"output_filename": "x"}, "key 'output_filename' is not taken"),
    ],
)
def test_settings_retrieve_only_inside_the_job_folder(fake_cp2k, copper_pool, settings, fragment):
    """A settings Dict with additional_retrieve_list ['../../../../<outside>'] passed validate_oracle; the file was
    retrieved into the repository."""
    oracle = cp2k_oracle(fake_cp2k, ["Cu"], kpoint_distance=None)
    oracle["inputs"]["settings"] = orm.Dict(settings)
    before = _jobs()
    with pytest.raises(ValueError, match="oracle input settings") as error:
        run_get_node(LabelingWorkChain, pool=copper_pool, oracle=oracle)
    assert fragment in str(error.value)
    assert _jobs() == before


def test_settings_inside_the_job_folder_pass(fake_cp2k):
    oracle = cp2k_oracle(fake_cp2k, ["Si"])
    oracle["inputs"]["settings"] = orm.Dict(
        {"additional_retrieve_list": ["aiida-1.restart", "sub/*.cube", ["out/x", ".", 1]]}
    )
    assert _validate(oracle) is None


# ------------------------------------------------------------------------------- low (a): the oracle process
@pytest.mark.parametrize(
    "process, port",
    [
        ("aiida.calculations:core.shell", "nodes"),
        ("aiida.calculations:core.templatereplacer", "structure"),
        ("aiida.calculations:core.transfer", "structure"),
        ("aiida.calculations:core.arithmetic.add", "x"),
    ],
)
def test_command_runners_are_not_oracles(ase_oracle_code, process, port):
    """core.shell was accepted, and its `nodes` port made validate_oracle raise TypeError."""
    message = validate_oracle(process, port, "ase_oracle", {"code": ase_oracle_code})
    assert isinstance(message, str) and "is not driven as an oracle" in message


def test_steps_of_the_plugin_are_not_oracles(ase_oracle_code):
    message = validate_oracle("aiida.calculations:mlip_trainer.pace_train", "structure", "ase_oracle", {})
    assert "a step of aiida-mlip-trainer, not an oracle" in message


@pytest.mark.parametrize(
    "arguments",
    [
        ("aiida.calculations:mlip_trainer.ase_oracle", "structure", "ase_oracle", 5),
        ("aiida.calculations:mlip_trainer.ase_oracle", None, "ase_oracle", {}),
        ("aiida.calculations:mlip_trainer.ase_oracle", "structure", "ase_oracle", {"calculator": {"x": object()}}),
        (None, "structure", None, {}),
    ],
)
def test_validate_oracle_never_raises(arguments):
    message = validate_oracle(*arguments)
    assert isinstance(message, str) and message


# ------------------------------------------------------------------ medium: the per-structure generator's port
@pytest.mark.parametrize(
    "parameters, fragment",
    [
        ({"port": "code"}, "port 'code' is taken"),
        ({"port": "parameters"}, "port 'parameters' is taken"),
        ({"port": "structure"}, "port 'structure' is taken"),
        ({"port": "metadata__options"}, "is taken (metadata)"),
        ({"port": "settings"}, "takes"),
        ({"port": "no_such_port"}, "has no input port 'no_such_port'"),
        ({"port": "a.b"}, "must be a port name"),
        ({"port": 3}, "must be a port name"),
        ({"distance": "fine"}, "distance must be a number"),
        ({"distance": 0.0}, "distance must be a number"),
        ({"spacing": 0.3}, "unknown kpoints_mesh parameter"),
    ],
)
def test_generator_port_is_checked_before_any_job(fake_cp2k, copper_pool, parameters, fragment):
    """`structure_inputs.parameters.port = "code"` passed validation, then the labelling ended Excepted."""
    oracle = cp2k_oracle(fake_cp2k, ["Cu"])
    oracle["structure_inputs"]["parameters"] = parameters
    before = _jobs()
    with pytest.raises(ValueError, match="structure_inputs") as error:
        run_get_node(LabelingWorkChain, pool=copper_pool, oracle=oracle)
    assert fragment in str(error.value)
    assert _jobs() == before
