"""Test fixtures: a core.psql_dos profile on a real PostgreSQL server, codes, and CalcJob helpers."""

from __future__ import annotations

import os
import pathlib
import secrets
import shutil
import tempfile

import pytest

pytest_plugins = ["aiida.tools.pytest_fixtures"]

TESTS = pathlib.Path(__file__).parent
FIXTURES = TESTS / "fixtures"
MOCK_CODES = TESTS / "mock_codes"


# Tests that run a real code (minutes each, where the mocked ones take seconds).
REAL_CODE_MARKERS = ("real_pacemaker", "real_gracemaker", "real_cp2k", "real_qe")


def pytest_collection_modifyitems(items):
    """The modules with a test of a real code first, each module's tests in their order: scripts/test.sh hands whole
    modules to its workers in this order (`--dist loadscope --no-loadscope-reorder`), so that the workers start on the
    long modules and the short ones fill in at the end. xdist's own order (most tests first) put the real modules,
    with one to three tests each, last: a worker could start a module of minutes when the other was nearly done."""
    real = {item.nodeid.split("::")[0] for item in items if any(map(item.get_closest_marker, REAL_CODE_MARKERS))}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in real)  # a stable sort


def _debian_server_storage(tmp_path_factory) -> dict | None:
    """Storage config on the server started by scripts/postgres.sh (as root), with a fresh database."""
    host = os.environ.get("MLIP_TRAINER_PG_HOST")
    if not host:
        return None
    import psycopg

    settings = {
        "host": host,
        "port": int(os.environ.get("MLIP_TRAINER_PG_PORT", "5432")),
        "user": os.environ["MLIP_TRAINER_PG_USER"],
        "password": os.environ["MLIP_TRAINER_PG_PASSWORD"],
    }
    name = f"test_mlip_trainer_{secrets.token_hex(6)}"
    with psycopg.connect(dbname="postgres", autocommit=True, **settings) as connection:
        # template0 + C.UTF-8: no dependency on the en_US locale, which a fresh Debian machine lacks.
        connection.execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
        )
    return {
        "database_engine": "postgresql_psycopg",
        "database_hostname": settings["host"],
        "database_port": settings["port"],
        "database_username": settings["user"],
        "database_password": settings["password"],
        "database_name": name,
        "repository_uri": tmp_path_factory.mktemp("repository").as_uri(),
    }


@pytest.fixture(scope="session")
def aiida_profile(aiida_config, aiida_profile_factory, tmp_path_factory, request):
    """The test profile: core.psql_dos storage on a real PostgreSQL server (the Debian cluster when root,
    a pgtest cluster otherwise) and a real broker (RabbitMQ or ZeroMQ)."""
    storage_config = _debian_server_storage(tmp_path_factory)
    if storage_config is None:
        storage_config = request.getfixturevalue("config_psql_dos")()
    # A real broker for `submit` through a real daemon: RabbitMQ when scripts/services.sh started it (as in CI),
    # else aiida-core 2.9's ZeroMQ broker, which the daemon starts by itself.
    broker = "core.rabbitmq" if os.environ.get("MLIP_TRAINER_RABBITMQ") else "core.zeromq"
    with aiida_profile_factory(
        aiida_config, storage_backend="core.psql_dos", storage_config=storage_config, broker_backend=broker
    ) as profile:
        # Debian 12's RabbitMQ 3.10 works (consumer_timeout disabled by scripts/services.sh); aiida warns otherwise.
        aiida_config.set_option("warnings.rabbitmq_version", False, scope=profile.name)
        # The daemon's circus client waits 2 s by default: too short to stop the daemon on a loaded machine.
        aiida_config.set_option("daemon.timeout", 60, scope=profile.name)
        yield profile


@pytest.fixture(scope="session")
def argon_structures():
    """Labelled LJ argon: 16 training and 6 test structures of 32 atoms, from independent random streams."""
    from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

    return {"train": argon_lennard_jones(16, seed=1), "test": argon_lennard_jones(6, seed=2)}


@pytest.fixture
def argon_sets(argon_structures):
    from aiida_mlip_trainer.data import TrainingSetData

    return {
        "train": TrainingSetData(argon_structures["train"]).store(),
        "test": TrainingSetData(argon_structures["test"]).store(),
    }


@pytest.fixture
def small_parameters():
    """A small basis (36 functions) that fits LJ argon to a few meV/Å in about 100 BFGS iterations."""
    return {
        "potential": {
            "deltaSplineBins": 0.001,
            "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
            "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 7.0, "dcut": 0.01}},
            "functions": {"ALL": {"nradmax_by_orders": [8, 3, 2], "lmax_by_orders": [0, 2, 1]}},
        },
        "fit": {"loss": {"kappa": 0.5, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS", "maxiter": 100},
        "backend": {"evaluator": "tensorpot", "batch_size": 20, "display_step": 20},
    }


# Seconds between two polls of localhost's job list (aiida-core's own fixture sets 0, see `aiida_localhost`).
LOCALHOST_POLL_INTERVAL = 0.2


@pytest.fixture
def aiida_localhost(aiida_computer):
    """The computer ``localhost`` (``core.local``, ``core.direct``), as aiida-core's fixture of the same name makes it
    but polled at most every :data:`LOCALHOST_POLL_INTERVAL` seconds through a plain shell. aiida-core's fixture
    sets a minimum poll interval of 0 and a login shell: while any job runs, the engine of each pytest worker and
    daemon then lists the processes back to back (``bash -l -c 'ps ...'``), taking CPU from the fits it waits for."""
    return aiida_computer(
        label="localhost",
        minimum_job_poll_interval=LOCALHOST_POLL_INTERVAL,
        configuration_kwargs={"use_login_shell": False, "safe_interval": 0},
    )


@pytest.fixture
def installed_code(aiida_localhost):
    """Get or create the code ``label@localhost`` for an executable: one node per tool for the whole session, so
    that codes can be addressed by label (as users and the command line do)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    def factory(label: str, executable: str | None, plugin: str):
        if executable is None:
            pytest.fail(f"`{label}` is not on PATH: run the tests through `make test` (it installs python-ace)")
        try:
            return orm.load_code(f"{label}@{aiida_localhost.label}")
        except NotExistent:
            return orm.InstalledCode(
                label=label, computer=aiida_localhost, filepath_executable=executable, default_calc_job_plugin=plugin
            ).store()

    return factory


@pytest.fixture
def ase_oracle_code(installed_code):
    """The `mlip-trainer-ase-oracle` script this package installs, as a code on localhost."""
    return installed_code("mlip-trainer-ase-oracle", _executable("mlip-trainer-ase-oracle"), "mlip_trainer.ase_oracle")


@pytest.fixture
def properties_code(installed_code):
    """The `mlip-trainer-properties` script this package installs, as a code on localhost."""
    return installed_code("mlip-trainer-properties", _executable("mlip-trainer-properties"), "mlip_trainer.properties")


@pytest.fixture
def pacemaker_code(installed_code):
    """The real `pacemaker` executable of this environment."""
    return installed_code("pacemaker", shutil.which("pacemaker"), "mlip_trainer.pace_train")


def _executable(name: str) -> str:
    """A console script of this package: on PATH, or next to the Python running the tests."""
    import sys

    path = shutil.which(name) or shutil.which(name, path=str(pathlib.Path(sys.executable).parent))
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: run the tests through `make test` (it installs the package)")
    return path


@pytest.fixture(scope="session")
def mock_executable(tmp_path_factory):
    """An executable that runs a mock script of tests/mock_codes with this Python (which has pandas and PyYAML),
    whatever PATH the job sees: a Python script with this interpreter in its #! line, as pip writes the real tools
    (the job script reads the versions of the fitting software with that interpreter)."""
    import sys

    folder = tmp_path_factory.mktemp("mock_codes")

    def factory(script: str) -> str:
        wrapper = folder / script.removesuffix(".py")
        wrapper.write_text(
            f"#!{sys.executable}\nimport runpy, sys\nsys.path.insert(0, {str(MOCK_CODES)!r})\n"
            f"runpy.run_path({str(MOCK_CODES / script)!r}, run_name='__main__')\n"
        )
        wrapper.chmod(0o755)
        return str(wrapper)

    return factory


@pytest.fixture
def cp2k_code(installed_code):
    """Debian's CP2K (`cp2k.psmp`, installed by scripts/cp2k.sh as root); the test skips without it."""
    executable = shutil.which("cp2k.psmp")
    if executable is None:
        pytest.skip("no cp2k.psmp: scripts/cp2k.sh installs Debian's cp2k as root (as `make test` does)")
    return installed_code("cp2k.psmp", executable, "cp2k")


@pytest.fixture
def qe_code(installed_code):
    """Debian's Quantum ESPRESSO (`pw.x`, installed by scripts/qe.sh as root), and the pseudopotential family of the
    QE oracle made from quantum-espresso-data's UPF files (aiida_mlip_trainer.oracles.qe_pseudo_family); the test
    skips without them."""
    from aiida_mlip_trainer.formats.quantumespresso import PSEUDO_FOLDER, PSEUDOPOTENTIALS
    from aiida_mlip_trainer.oracles import qe_pseudo_family

    executable = shutil.which("pw.x")
    files = [pathlib.Path(PSEUDO_FOLDER) / name for name, _, _ in PSEUDOPOTENTIALS.values()]
    if executable is None or not all(path.is_file() for path in files):
        pytest.skip("no pw.x or UPF files: scripts/qe.sh installs Debian's quantum-espresso as root (`make test` does)")
    qe_pseudo_family()
    return installed_code("pw.x", executable, "quantumespresso.pw")


@pytest.fixture
def mock_pacemaker_code(installed_code, mock_executable):
    """A stand-in for `pacemaker` that replays the real fit recorded for exactly its inputs (tests/mock_codes/replay.py;
    unknown inputs fail) and can fail on request through MOCK_PACEMAKER_MODE: walltime, nan, crash, bad_input."""
    return installed_code("mock-pacemaker", mock_executable("mock_pacemaker.py"), "mlip_trainer.pace_train")


@pytest.fixture
def mock_pace_select_code(installed_code, mock_executable):
    """A stand-in for pace_select: replay of recorded runs, failures on request (MOCK_PACE_MODE)."""
    return installed_code("mock-pace-select", mock_executable("mock_pace_tools.py"), "mlip_trainer.pace_select")


@pytest.fixture
def mock_pace_activeset_code(installed_code, mock_executable):
    """A stand-in for pace_activeset: replay of recorded runs, failures on request (MOCK_PACE_MODE)."""
    return installed_code("mock-pace-activeset", mock_executable("mock_pace_tools.py"), "mlip_trainer.pace_activeset")


@pytest.fixture
def generate_calc_job(tmp_path):
    """Run a CalcJob's ``prepare_for_submission`` into a sandbox folder; return (folder path, calcinfo)."""
    from aiida.common.folders import Folder
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager

    def factory(process_class, inputs):
        runner = get_manager().get_runner()
        process = instantiate_process(runner, process_class, **inputs)
        sandbox = pathlib.Path(tempfile.mkdtemp(prefix="sandbox-", dir=tmp_path))
        calcinfo = process.prepare_for_submission(Folder(str(sandbox)))
        return sandbox, calcinfo

    return factory


@pytest.fixture
def pacemaker_output(tmp_path):
    """A copy of a real, successful pacemaker working directory (retrieved files), to be altered by a test."""

    def factory() -> pathlib.Path:
        target = tmp_path / "retrieved"
        shutil.copytree(FIXTURES / "pace_train_success", target)
        return target

    return factory


@pytest.fixture
def generate_calc_job_node(aiida_localhost):
    """A stored ``CalcJobNode`` of the CalcJob ``entry_point`` (e.g. ``mlip_trainer.pace_train``) with ``inputs``
    (linked, stored when they are not) and the files of ``folder`` as its ``retrieved`` output: what a parser sees
    after a real run (aiida-quantumespresso's fixture of the same name). Files named in ``exclude`` are left out;
    ``folder=None`` gives a node with no ``retrieved`` output yet (a job still running)."""
    from aiida import orm
    from aiida.common.links import LinkType

    def factory(entry_point: str, folder: pathlib.Path | None, inputs: dict, exclude: tuple[str, ...] = ()):
        node = orm.CalcJobNode(computer=aiida_localhost, process_type=f"aiida.calculations:{entry_point}")
        node.set_option("resources", {"num_machines": 1, "num_mpiprocs_per_machine": 1})
        for label, value in inputs.items():
            node.base.links.add_incoming(value.store(), link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()
        if folder is None:
            return node
        retrieved = orm.FolderData()
        for path in sorted(pathlib.Path(folder).iterdir()):
            if path.name not in exclude:
                retrieved.base.repository.put_object_from_file(str(path), path.name)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label="retrieved")
        retrieved.store()
        return node

    return factory


def recorded_grace_potential(*, active_set: bool = True, checkpoint: bool = True):
    """The recorded gracemaker fit (tests/fixtures/grace_train_success: GRACE-FS, 4-atom EMT copper) as an unstored
    ``GraceFSPotentialData``: its FS YAML, E0 per element, and optionally its active set (``FS_model.asi``) and
    gracemaker's checkpoint."""
    import yaml

    from aiida_mlip_trainer.data import GraceFSPotentialData

    fit = FIXTURES / "grace_train_success"
    names = ("model.yaml", "checkpoint.index", "checkpoint.data-00000-of-00001")
    return GraceFSPotentialData(
        fit / "FS_model.yaml",
        active_set=fit / "FS_model.asi" if active_set else None,
        checkpoint={name: fit / name for name in names} if checkpoint else None,
        reference_energy=yaml.safe_load((fit / "input.yaml").read_text())["data"]["reference_energy"],
    )


def with_submit_recorder(builder):
    """The work chain of ``builder`` instantiated (its inputs validated), not run; ``submit`` replaced by a recorder:
    ``process.submitted`` lists ``(process class, inputs)`` of what its steps submit, each answered by a new
    ``WorkChainNode``."""
    from aiida import orm
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager

    process = instantiate_process(get_manager().get_runner(), builder)
    process.submitted = []

    def submit(process_class, **inputs):
        process.submitted.append((process_class, inputs))
        return orm.WorkChainNode().store()

    process.submit = submit
    return process


@pytest.fixture
def generate_workchain():
    """An instance of the work chain ``entry_point`` with ``inputs`` (validated), not run: call its outline steps and
    process handlers directly (aiida-quantumespresso's fixture of the same name)."""
    from aiida.engine.utils import instantiate_process
    from aiida.manage.manager import get_manager
    from aiida.plugins import WorkflowFactory

    def factory(entry_point: str, inputs: dict):
        return instantiate_process(get_manager().get_runner(), WorkflowFactory(entry_point), **inputs)

    return factory


@pytest.fixture
def finished_child(generate_calc_job_node, argon_sets):
    """A finished ``PaceTrainCalculation`` node that ended with the exit code ``label`` (e.g.
    ``ERROR_OUT_OF_WALLTIME``), with ``outputs`` (label -> node) as a real one would have; its retrieved files are
    those of a real successful fit. For handlers called directly."""
    from aiida import orm
    from aiida.common.links import LinkType

    from aiida_mlip_trainer.calculations import PaceTrainCalculation

    def factory(label: str, outputs: dict | None = None, **format_kwargs):
        node = generate_calc_job_node(
            "mlip_trainer.pace_train",
            FIXTURES / "pace_train_success",
            {"training_set": argon_sets["train"], "test_set": argon_sets["test"]},
        )
        exit_code = getattr(PaceTrainCalculation.exit_codes, label)
        if format_kwargs:
            exit_code = exit_code.format(**format_kwargs)
        for link_label, output in (outputs or {}).items():
            output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=link_label)
            output.store()
        node.set_process_state("finished")
        node.set_exit_status(exit_code.status)
        node.set_exit_message(exit_code.message)
        node.set_process_label("PaceTrainCalculation")
        assert isinstance(node, orm.CalcJobNode) and node.is_finished and node.exit_status == exit_code.status
        return node

    return factory


@pytest.fixture
def parse_retrieved(generate_calc_job_node):
    """Parse a folder of retrieved files as if a PaceTrainCalculation with ``inputs`` had produced them."""
    from aiida.plugins import ParserFactory

    def factory(folder: pathlib.Path, inputs: dict):
        node = generate_calc_job_node("mlip_trainer.pace_train", folder, inputs)
        return ParserFactory("mlip_trainer.pace_train").parse_from_node(node, store_provenance=False)

    return factory


@pytest.fixture
def pace_tool_codes(installed_code):
    """The real pace_activeset, pace_select and pace_yaml2yace of this environment (each a few seconds)."""
    return {
        "pace_activeset": installed_code(
            "pace_activeset", shutil.which("pace_activeset"), "mlip_trainer.pace_activeset"
        ),
        "pace_select": installed_code("pace_select", shutil.which("pace_select"), "mlip_trainer.pace_select"),
        "pace_yaml2yace": installed_code("pace_yaml2yace", shutil.which("pace_yaml2yace"), "core.shell"),
    }


@pytest.fixture
def slurm_codes(tmp_path_factory):
    """A computer with the real Slurm scheduler (`core.slurm`, one node on this machine) and the pacemaker tools on
    it. Skipped with the reason when Slurm is not running (scripts/services.sh starts it as root; CI is root)."""
    if not os.environ.get("MLIP_TRAINER_SLURM"):
        pytest.skip("no Slurm cluster: scripts/services.sh starts one when run as root (as `make test` and CI do)")
    computer, new = computer_on_localhost("slurm-localhost", "core.slurm", tmp_path_factory.mktemp("slurm_scratch"))
    if new:
        computer.configure(safe_interval=0, use_login_shell=False)
        computer.set_minimum_job_poll_interval(1.0)
        computer.set_default_mpiprocs_per_machine(1)
    plugins = {
        "pacemaker": "mlip_trainer.pace_train",
        "pace_select": "mlip_trainer.pace_select",
        "pace_activeset": "mlip_trainer.pace_activeset",
        "pace_yaml2yace": "core.shell",
    }
    return codes_on(computer, {name: (shutil.which(name), plugin) for name, plugin in plugins.items()})


def computer_on_localhost(label: str, scheduler: str, workdir) -> tuple:
    """Get or create the computer ``label`` (local transport, ``scheduler``); with True when it was created now."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        return orm.load_computer(label), False
    except NotExistent:
        computer = orm.Computer(
            label=label, hostname="localhost", transport_type="core.local", scheduler_type=scheduler
        )
        computer.set_workdir(str(workdir))
        return computer.store(), True


def codes_on(computer, codes: dict) -> dict:
    """Get or create the code ``name@<computer>`` for each ``name: (executable, plugin)`` of ``codes``."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    result = {}
    for name, (executable, plugin) in codes.items():
        try:
            result[name] = orm.load_code(f"{name}@{computer.label}")
        except NotExistent:
            result[name] = orm.InstalledCode(
                label=name, computer=computer, filepath_executable=executable, default_calc_job_plugin=plugin
            ).store()
    return result


# Attributes that differ between environments or runs, not between parser behaviours: left out of the regression files.
_VOLATILE_ATTRIBUTES = frozenset({"fitted_with"})
_VOLATILE_OUTPUTS = frozenset({"versions"})  # the python-ace / tensorpotential versions of this environment


def _plain(value):
    """``value`` made JSON/YAML-friendly and stable: numpy to Python, floats to 6 significant figures."""
    import numpy as np

    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float):
        return float(f"{value:.6g}") if np.isfinite(value) else str(value)
    return value


def _node_summary(node) -> dict | list:
    """What a parser output says, without what is volatile: a Dict's content, a List's items, an ArrayData's
    arrays (values when short, shape and rounded min/mean/max when long), other nodes' attributes."""
    import numpy as np
    from aiida import orm

    if isinstance(node, orm.Dict):
        return _plain(node.get_dict())
    if isinstance(node, orm.List):
        return _plain(node.get_list())
    summary = {key: value for key, value in node.base.attributes.all.items() if key not in _VOLATILE_ATTRIBUTES}
    if type(node) is orm.ArrayData:
        summary = {}
        for name in sorted(node.get_arraynames()):
            array = node.get_array(name)
            if array.size <= 12:
                summary[name] = array.tolist()
            else:
                summary[name] = {
                    "shape": list(array.shape),
                    "min": np.min(array),
                    "mean": np.mean(array),
                    "max": np.max(array),
                }
    return _plain(summary)


@pytest.fixture
def parser_regression(data_regression):
    """Pin what a parser returned, ``parser_regression(results, calcfunction)``, in a ``.yml`` file next to the test
    (pytest-regressions; aiida-quantumespresso's parser tests): the exit status and message, and each output node
    made JSON-friendly by :func:`_node_summary`."""

    def check(results: dict, calcfunction) -> None:
        data_regression.check(
            {
                "exit_status": calcfunction.exit_status,
                "exit_message": calcfunction.exit_message,
                "outputs": {
                    label: _node_summary(node)
                    for label, node in sorted(results.items())
                    if label not in _VOLATILE_OUTPUTS
                },
            }
        )

    return check
