"""Real pace_select / pace_activeset (python-ace on CPU) on a small argon pool: what is new is picked first, the
result is deterministic and never larger than asked, a shortfall is reported, and the active set grades
extrapolation. Each job takes 2-3 s on two cores."""

import logging
import subprocess

import numpy as np
import pytest
import yaml
from aiida import orm
from aiida.common.log import LOG_LEVEL_REPORT
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.pace_activeset import PaceActivesetCalculation
from aiida_mlip_trainer.calculations.pace_select import PaceSelectCalculation
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
from aiida_mlip_trainer.launch import select_structures
from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones
from aiida_mlip_trainer.workflows.functions.selection import unfitted_potential
from tests.conftest import _executable
from tests.selection.conftest import NEW_IN_POOL, recorded_indices

pytestmark = pytest.mark.real_pacemaker


def run_select(code, pool, potential, max_structures, **extra):
    results, node = run_get_node(
        PaceSelectCalculation, code=code, pool=pool, potential=potential, max_structures=max_structures, **extra
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    return results, node


def test_new_structures_are_picked_first_and_deterministically(pace_select_code, argon_pool, fitted_potential):
    results, _ = run_select(pace_select_code, argon_pool, fitted_potential, 4)
    indices = results["indices"].get_list()
    # the strongly strained/rattled cells and the vacancy, none of the near-copies of the training data
    assert set(indices) == NEW_IN_POOL, indices
    assert results["selected"].num_structures == 4 and results["summary"]["shortfall"] is None

    again, _ = run_select(pace_select_code, argon_pool, fitted_potential, 4)
    assert again["indices"].get_list() == indices


def test_fewer_than_requested_is_said_clearly(pace_select_code, argon_pool, fitted_potential):
    results, node = run_select(pace_select_code, argon_pool, fitted_potential, 20)
    summary = results["summary"].get_dict()
    assert summary["requested"] == 20 and summary["returned"] == len(results["indices"].get_list()) < 20
    assert summary["returned"] <= summary["basis_functions"]["Ar"]
    assert set(results["indices"].get_list()[:4]) == NEW_IN_POOL  # best first
    assert "contribute an atomic environment" in summary["shortfall"]
    reports = [log.message for log in orm.Log.collection.get_logs_for(node) if log.levelname == "REPORT"]
    assert any(f"returned {summary['returned']} of the 20 structures requested" in w for w in reports), reports


def test_active_set_grades_extrapolation_and_marks_the_training_data_covered(
    pace_activeset_code, pace_select_code, argon_sets, argon_pool, fitted_potential
):
    # the fixture potential was fitted on argon_lennard_jones(16, seed=1), i.e. argon_sets["train"]
    results, node = run_get_node(
        PaceActivesetCalculation, code=pace_activeset_code, potential=fitted_potential, training_set=argon_sets["train"]
    )
    assert node.is_finished_ok, f"[{node.exit_status}] {node.exit_message}"
    potential = results["potential"]
    assert potential.has_active_set and potential.get_yaml() == fitted_potential.get_yaml()
    assert results["summary"]["elements"]["Ar"]["active_set_size"] == 36

    calculator = potential.get_calculator()

    def max_gamma(atoms):
        atoms = atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
        return float(np.max(calculator.results["gamma"]))

    training = [max_gamma(atoms) for atoms in argon_sets["train"].to_atoms()]
    far = [max_gamma(atoms) for atoms in argon_lennard_jones(3, seed=4, strain=0.12, rattle=0.35)]
    assert np.median(training) <= 1.01 and max(training) < 5.0, training
    assert min(far) > 10.0, far

    selected, select_node = run_select(pace_select_code, argon_pool, potential, 20, use_active_set=True)
    # with the training data counted as covered, only the new structures come back
    assert set(selected["indices"].get_list()) <= NEW_IN_POOL
    assert "already covered by the potential's active set" in selected["summary"]["shortfall"]
    assert select_node.inputs.potential.pk == potential.pk


def test_selection_before_any_fit_with_the_unfitted_basis(pace_select_code, argon_pool, small_parameters):
    selected = select_structures(argon_pool, 4, parameters=small_parameters, code=pace_select_code)
    indices = selected.creator.outputs.indices.get_list()
    assert selected.num_structures == len(indices) <= 4
    assert set(indices) == NEW_IN_POOL, indices
    # the graph: the selector is the unfitted basis built from the parameters
    select_node = selected.creator.inputs.indices_0.creator  # assemble_selection's input: the round's output
    assert select_node.process_label == "PaceSelectCalculation"
    assert select_node.inputs.potential.creator.process_label == "unfitted_potential"
    assert selected.creator.inputs.pool.pk == argon_pool.pk

    again = select_structures(argon_pool, 4, parameters=small_parameters, code=pace_select_code)
    assert again.creator.outputs.indices.get_list() == indices


def test_rounds_extend_until_nothing_is_new_or_fill_in_layers(
    pace_select_code, pace_activeset_code, argon_pool, fitted_potential, caplog
):
    common = {"potential": fitted_potential, "code": pace_select_code, "activeset_code": pace_activeset_code}
    with caplog.at_level(LOG_LEVEL_REPORT):
        extended = select_structures(argon_pool, 9, **common)
    summary = extended.creator.outputs.summary.get_dict()
    assert summary["returned"] == extended.num_structures < 9
    assert len(summary["rounds"]) == 1  # round 2 found nothing outside the active set of the first round's picks
    assert "no structure left in the pool extends the active set" in summary["shortfall"]
    assert f"returned {summary['returned']} of the 9 structures requested" in caplog.text
    # round 2's pace_select ended with ERROR_NONE_SELECTED, as expected: said in words, without aiida's warning
    assert "nothing selected: no structure of the pool extends the active set" in caplog.text
    assert "output parser returned exit code" not in caplog.text
    # the selection work chain says its shortfall as a report (select_structures, asked for 9, still warns)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    warned = [message for message in warned if "fewer than the budget" in message]
    assert not warned, warned

    layered = select_structures(argon_pool, 9, strategy="layers", **common)
    indices = layered.creator.outputs.indices.get_list()
    assert len(indices) == len(set(indices)) == 9
    assert indices[: summary["returned"]] == extended.creator.outputs.indices.get_list()
    assert layered.creator.outputs.summary["shortfall"] is None


def test_unfitted_basis_is_what_pacemaker_dry_run_writes(tmp_path, small_parameters, argon_sets):
    argon_sets["train"].write_pacemaker_pickle(tmp_path / "data.pckl.gzip")
    config = build_input_yaml(small_parameters, elements=["Ar"], train_filename="data.pckl.gzip")
    (tmp_path / "input.yaml").write_text(yaml.safe_dump(config))
    subprocess.run(
        [_executable("pacemaker"), "-dr", "input.yaml"], cwd=tmp_path, capture_output=True, timeout=300, check=False
    )
    expected = yaml.safe_load((tmp_path / "target_potential.yaml").read_text())
    # pacemaker's metadata (its versions, a time stamp and, with data.reference_energy, what the data gave) is about
    # the run, not the basis: everything else must be the same
    assert set(expected.pop("metadata")) >= {"pacemaker_version", "reference_energy"}
    ours = yaml.safe_load(unfitted_potential(orm.Dict(small_parameters), orm.List(["Ar"])).get_yaml())
    ours.pop("metadata", None)
    assert ours == expected


def test_covered_structures_count_as_known(
    pace_select_code, pace_activeset_code, argon_sets, argon_pool, fitted_potential
):
    """With the training set as `covered`, the new structures come first and fewer near-copies of the training data
    are picked than without it (the plain selection, recorded in pace_select_success, took 2 of them)."""
    selected = select_structures(
        argon_pool,
        9,
        potential=fitted_potential,
        covered=argon_sets["train"],
        code=pace_select_code,
        activeset_code=pace_activeset_code,
    )
    indices = selected.creator.outputs.indices.get_list()
    assert set(indices[:4]) == NEW_IN_POOL, indices
    near_copies = set(indices) - NEW_IN_POOL
    assert len(near_copies) < len(set(recorded_indices("pace_select_success")) - NEW_IN_POOL), indices
    assert selected.creator.outputs.summary["rounds"][0]["used_active_set"] is True


def test_selection_within_an_atom_budget(pace_select_code, pace_activeset_code, argon_pool, fitted_potential):
    """select_within_atoms: the D-optimal share comes first and is what the potential does not know (the pool's
    cells have 32 atoms, the vacancy cell 31), the random share fills the rest; never over the budget, the same
    picks for the same seed."""
    from aiida_mlip_trainer.launch import select_within_atoms

    natoms = argon_pool.get_arrays()["natoms"]
    common = {"potential": fitted_potential, "code": pace_select_code, "activeset_code": pace_activeset_code}
    selected = select_within_atoms(argon_pool, 200, random_fraction=0.5, seed=7, **common)
    indices = selected.creator.outputs.indices.get_list()
    assert set(indices[:3]) <= NEW_IN_POOL, indices  # 100 atoms of D-optimal picks: three cells
    assert len(indices) == 6 and len(set(indices)) == 6 and sum(natoms[indices]) <= 200
    assert selected.num_atoms == sum(natoms[indices])
    again = select_within_atoms(argon_pool, 200, random_fraction=0.5, seed=7, **common)
    assert again.creator.outputs.indices.get_list() == indices

    only_dopt = select_within_atoms(argon_pool, 130, random_fraction=0.0, **common)
    assert set(only_dopt.creator.outputs.indices.get_list()) == NEW_IN_POOL  # 4 cells, 127 atoms


def test_a_pool_in_chunks_gives_the_same_new_structures(pace_select_code, argon_pool, fitted_potential):
    """chunk_size=4 cuts the ten structures into chunks of 4, 4 and 2; each chunk's picks become the candidates,
    and the selection over them finds the same four new structures as over the whole pool."""

    def select_jobs():
        return orm.QueryBuilder().append(PaceSelectCalculation).order_by({PaceSelectCalculation: "id"}).all(flat=True)

    jobs_before = len(select_jobs())
    selected = select_structures(argon_pool, 4, potential=fitted_potential, chunk_size=4, code=pace_select_code)
    summary = selected.creator.outputs.summary.get_dict()
    assert set(selected.creator.outputs.indices.get_list()) == NEW_IN_POOL
    assert summary["chunking"]["chunk_size"] == 4 and summary["chunking"]["chunks"] == 3
    assert 4 <= summary["chunking"]["candidates"] <= 10 and summary["pool_size"] == 10
    jobs = select_jobs()[jobs_before:]
    assert len(jobs) == 3 + len(summary["rounds"])
    chunk_pools = [
        node.inputs.pool.creator.inputs.indices.get_list()
        for node in jobs
        if node.inputs.pool.creator is not None and node.inputs.pool.num_structures < 10
    ]
    assert [0, 1, 2, 3] in chunk_pools and [8, 9] in chunk_pools  # each chunk is a subset of the pool, in the graph


def test_chunks_too_small_for_maxvol_go_on_whole_and_active_sets_work_in_chunks(
    pace_select_code, pace_activeset_code, argon_sets, argon_pool, fitted_potential
):
    """Chunks of one cell (32 environments, fewer than the 36 functions) cannot be selected on their own: each goes
    on whole, so the selection is that of the whole pool. With the active set of the training data, chunks are
    selected against it, and only new structures come back."""
    whole = select_structures(argon_pool, 4, potential=fitted_potential, code=pace_select_code)
    tiny = select_structures(argon_pool, 4, potential=fitted_potential, chunk_size=1, code=pace_select_code)
    assert tiny.creator.outputs.indices.get_list() == whole.creator.outputs.indices.get_list()
    assert tiny.creator.outputs.summary["chunking"] == {"chunk_size": 1, "chunks": 10, "candidates": 10}
    merged = orm.QueryBuilder().append(orm.CalcFunctionNode, filters={"attributes.process_label": "merge_picks"})
    assert merged.count() >= 1

    results, _ = run_get_node(
        PaceActivesetCalculation, code=pace_activeset_code, potential=fitted_potential, training_set=argon_sets["train"]
    )
    with_asi = results["potential"]
    selected = select_structures(
        argon_pool, 4, potential=with_asi, use_active_set=True, chunk_size=5, code=pace_select_code
    )
    indices = selected.creator.outputs.indices.get_list()
    assert indices and set(indices) <= NEW_IN_POOL, indices
    chunking = selected.creator.outputs.summary["chunking"]
    assert chunking["chunks"] == 2 and len(indices) <= chunking["candidates"] < 10
