"""SelectionWorkChain with the real pace_select and pace_activeset: budgets, strategies, the round limit, chunks from
a memory limit, and bad input refused before any job. (The wrappers select_structures / select_within_atoms are
exercised in test_selection_real.py.)"""

import re

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.workflows.selection import SelectionWorkChain, chunk_size_for_memory
from tests.selection.conftest import NEW_IN_POOL

pytestmark = pytest.mark.real_pacemaker


@pytest.fixture
def jobs(pace_select_code, pace_activeset_code):
    return {"pace_select": {"code": pace_select_code}, "pace_activeset": {"code": pace_activeset_code}}


def run(pool, jobs, **inputs):
    results, node = run_get_node(SelectionWorkChain, pool=pool, **jobs, **inputs)
    return results, node


def called(node, label):
    return [child for child in node.called if child.process_label == label]


def test_max_structures_with_dopt_rounds(argon_pool, fitted_potential, jobs):
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=4)
    assert node.is_finished_ok, node.exit_message
    assert set(results["indices"].get_list()) == NEW_IN_POOL
    summary = results["summary"].get_dict()
    assert summary["returned"] == 4 and summary["shortfall"] is None and summary["strategy"] == "dopt"
    assert results["selected"].creator.process_label == "assemble_selection"


def test_max_rounds_caps_the_rounds_and_the_summary_says_so(argon_pool, fitted_potential, jobs):
    """In layers, one round on the argon pool returns fewer than 9: with max_rounds=1 the selection stops there."""
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=9, rounds="layers", max_rounds=1)
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    assert len(summary["rounds"]) == 1 == len(called(node, "PaceSelectCalculation"))
    assert summary["returned"] < 9 and "max_rounds (1) reached" in summary["shortfall"]
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=9, rounds="layers", max_rounds=3)
    assert results["summary"]["returned"] == 9 and len(results["summary"]["rounds"]) >= 2


def test_atom_budget_dopt_only_never_overflows(argon_pool, fitted_potential, jobs):
    """130 atoms: the four new cells (32, 32, 32 and the 31-atom vacancy cell: 127 atoms), nothing random."""
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_atoms=130, rounds="layers")
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    assert set(results["indices"].get_list()) == NEW_IN_POOL and summary["returned_atoms"] == 127
    assert summary["random_share"]["structures"] == 0 and summary["shortfall"] is None


def test_all_random_runs_no_pace_select_and_is_reproducible(argon_pool, fitted_potential, jobs):
    inputs = {"potential": fitted_potential, "max_atoms": 100, "strategy": "dopt+random", "random_fraction": 1.0}
    first, node = run(argon_pool, jobs, seed=5, **inputs)
    assert node.is_finished_ok and not called(node, "PaceSelectCalculation")
    assert first["summary"]["random_share"]["structures"] == 3 == first["summary"]["returned"]
    second, _ = run(argon_pool, jobs, seed=5, **inputs)
    other, _ = run(argon_pool, jobs, seed=6, **inputs)
    assert second["indices"].get_list() == first["indices"].get_list() != other["indices"].get_list()


def test_whole_pool_within_the_budget_is_taken_without_a_job(argon_pool, fitted_potential, jobs):
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=10, max_atoms=1000)
    assert node.is_finished_ok and not called(node, "PaceSelectCalculation")
    assert results["indices"].get_list() == list(range(10))
    assert results["summary"]["stop_reason"] == "the whole pool fits the budget" and results["whole_pool"].value


def test_memory_limit_gives_the_chunk_size_and_reaches_the_jobs(argon_pool, fitted_potential, jobs):
    """The chunk size comes from the measured cost model: with the memory of five 32-atom cells above the fixed part,
    chunks of five; the limit is passed to each pace_select job (which passes half of it to the tool)."""
    from aiida_mlip_trainer.workflows import selection as module

    per_structure = 32 * (module.SELECT_BYTES_PER_ATOM + module.SELECT_BYTES_PER_ATOM_FUNCTION * 36)
    limit = module.SELECT_BASE_BYTES + 5 * per_structure + 100
    assert chunk_size_for_memory(limit, 32, 36) == 5
    assert chunk_size_for_memory(limit, 31.9, 36) == 5
    results, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=4, memory_limit=limit)
    assert node.is_finished_ok, node.exit_message
    assert results["summary"]["chunking"]["chunk_size"] == chunk_size_for_memory(limit, 31.9, 36)
    assert set(results["indices"].get_list()) == NEW_IN_POOL
    for job in called(node, "PaceSelectCalculation"):
        assert job.inputs.parameters["memory_limit"] == limit


def test_job_options_reach_every_job(argon_pool, fitted_potential, jobs):
    jobs["pace_select"]["metadata"] = {"options": {"max_wallclock_seconds": 321}}
    jobs["pace_activeset"]["metadata"] = {"options": {"max_wallclock_seconds": 654}}
    _, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=9)
    assert node.is_finished_ok, node.exit_message
    assert {job.get_option("max_wallclock_seconds") for job in called(node, "PaceSelectCalculation")} == {321}
    assert {job.get_option("max_wallclock_seconds") for job in called(node, "PaceActivesetCalculation")} == {654}


def test_a_failed_pace_select_job_is_an_exit_code(argon_pool, fitted_potential, jobs, mock_pace_select_code):
    jobs["pace_select"] = {
        "code": mock_pace_select_code,
        "metadata": {"options": {"environment_variables": {"MOCK_PACE_MODE": "crash"}}},
    }
    _, node = run(argon_pool, jobs, potential=fitted_potential, max_structures=4)
    assert node.exit_status == SelectionWorkChain.exit_codes.ERROR_SELECT_JOB_FAILED.status
    assert "mock pace_select crashed" in node.exit_message


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "give the budget: max_structures and/or max_atoms"),
        ({"max_atoms": -1}, "max_atoms must be a positive integer, got -1"),
        ({"max_structures": 3, "strategy": "greedy"}, r"strategy must be one of \['dopt', 'dopt\+random'\]"),
        ({"max_structures": 3, "random_fraction": 1.2}, "random_fraction must be between 0 and 1"),
        ({"max_structures": 3, "max_rounds": 0}, "max_rounds must be at least 1"),
        ({"max_structures": 3, "chunk_size": 4, "memory_limit": "2GB"}, "give either chunk_size or memory_limit"),
        ({"max_structures": 3, "memory_limit": "2 * 2**30"}, "memory_limit: memory_limit must be a number"),
        ({"max_structures": 3, "parameters": {"potential": {}}}, "give either a `potential`"),
        ({"max_structures": 3, "potential": None}, "give either a `potential`"),
        ({"max_structures": 3, "covered": "copper"}, r"the covered contains \['Cu'\]"),
        ({"max_structures": 3, "pace_activeset": {}}, "give pace_activeset.code, or rounds='layers'"),
    ],
)
def test_bad_input_is_refused_before_any_job(argon_pool, fitted_potential, jobs, inputs, message):
    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    arguments = {"potential": fitted_potential, **jobs, **inputs}
    if arguments["potential"] is None:
        arguments.pop("potential")
    if arguments.get("covered") == "copper":
        arguments["covered"] = TrainingSetData(copper_emt(2)).store()
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError) as error:
        run_get_node(SelectionWorkChain, pool=argon_pool, **arguments)
    assert re.search(message, str(error.value)), str(error.value)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_a_pool_with_too_few_environments_for_the_basis_is_refused(argon_sets, small_parameters, jobs):
    """One argon cell (32 atoms) cannot determine a 36-function MaxVol: refused with what to do."""
    from aiida_mlip_trainer.data import TrainingSetData

    pool = TrainingSetData(argon_sets["train"].to_atoms()[:1], labelled=False).store()
    with pytest.raises(ValueError, match="the pool has 32 Ar atoms but the potential has 36 basis functions"):
        run_get_node(SelectionWorkChain, pool=pool, parameters=small_parameters, max_structures=1, **jobs)
