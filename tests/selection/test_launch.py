"""select_structures: bad input is refused before any job; a failed job raises; codes are found or made."""

import pathlib
import re

import pytest
from aiida import orm

from aiida_mlip_trainer.data import PacePotentialData
from aiida_mlip_trainer.launch import (
    LOCALHOST_POLL_INTERVAL,
    SelectionError,
    create_localhost,
    get_or_create_code,
    select_structures,
)
from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
from tests.selection.conftest import POTENTIAL, build_pool_structures


def _count_jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode).count()


def test_the_localhost_it_creates_is_polled_at_an_interval():
    # with a minimum poll interval of 0 the engine lists the processes back to back while a job runs
    import uuid

    computer = create_localhost(label=f"localhost-{uuid.uuid4().hex[:8]}")
    assert computer.get_minimum_job_poll_interval() == LOCALHOST_POLL_INTERVAL >= 1.0
    assert computer.is_configured and computer.transport_type == "core.local"
    assert pathlib.Path(computer.get_workdir()).is_dir()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_structures": 0}, "max_structures must be a positive integer, got 0"),
        ({"max_structures": -2}, "max_structures must be a positive integer"),
        ({"max_structures": 2.5}, "max_structures must be a positive integer"),
        ({"pool": []}, "the pool is empty"),
        ({"potential": None}, "give either a `potential`"),
        ({"parameters": {"potential": {}}}, "give either a `potential`"),
        ({"strategy": "greedy"}, "rounds must be one of \\['extend', 'layers'\\], got 'greedy'"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
        ({"use_active_set": True}, "use_active_set needs a potential with an active set"),
        (
            {"potential": "copper"},
            r"the pool contains \['Ar'\], which the selector \(elements \['Cu'\]\) does not describe",
        ),
    ],
)
def test_bad_input_is_refused_before_any_job(argon_pool, fitted_potential, mock_pace_select_code, kwargs, message):
    arguments = {"pool": argon_pool, "max_structures": 4, "potential": fitted_potential, "code": mock_pace_select_code}
    arguments.update(kwargs)
    if arguments["potential"] == "copper":
        arguments["potential"] = PacePotentialData(re.sub(r"\bAr\b", "Cu", POTENTIAL.read_text()).encode())
    jobs_before = _count_jobs()
    with pytest.raises(ValueError, match=message):
        select_structures(**arguments)
    assert _count_jobs() == jobs_before


def test_parameters_that_exclude_the_pool_elements_are_refused(small_parameters, mock_pace_select_code):
    small_parameters["potential"]["elements"] = ["Kr"]
    jobs_before = _count_jobs()
    with pytest.raises(ValueError, match=r"contain \['Ar'\], which potential.elements \['Kr'\] lacks"):
        select_structures(build_pool_structures(), 3, parameters=small_parameters, code=mock_pace_select_code)
    assert _count_jobs() == jobs_before


def test_a_failed_job_raises(argon_pool, fitted_potential, mock_pace_select_code):
    options = {"environment_variables": {"MOCK_PACE_MODE": "crash"}}
    status = SelectionWorkChain.exit_codes.ERROR_SELECT_JOB_FAILED.status
    with pytest.raises(SelectionError, match=rf"SelectionWorkChain<\d+> failed \[{status}\].*mock pace_select crashed"):
        select_structures(argon_pool, 4, potential=fitted_potential, code=mock_pace_select_code, options=options)


def test_codes_are_found_next_to_python_and_reused(aiida_localhost):
    code = get_or_create_code("pace_select", "mlip_trainer.pace_select", computer=aiida_localhost)
    assert code.filepath_executable.name == "pace_select"
    assert code.default_calc_job_plugin == "mlip_trainer.pace_select"
    assert get_or_create_code("pace_select", "mlip_trainer.pace_select", computer=aiida_localhost).pk == code.pk


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_atoms": 0}, "max_atoms must be a positive integer"),
        ({"max_atoms": True}, "max_atoms must be a positive integer"),
        ({"random_fraction": 1.5}, "random_fraction must be between 0 and 1"),
        ({"strategy": "mixed"}, "rounds must be one of"),
    ],
)
def test_select_within_atoms_refuses_bad_input_before_any_job(
    argon_pool, fitted_potential, mock_pace_select_code, kwargs, message
):
    from aiida_mlip_trainer.launch import select_within_atoms

    arguments = {"max_atoms": 100, "potential": fitted_potential, "code": mock_pace_select_code, **kwargs}
    jobs_before = _count_jobs()
    with pytest.raises(ValueError, match=message):
        select_within_atoms(argon_pool, **arguments)
    assert _count_jobs() == jobs_before
