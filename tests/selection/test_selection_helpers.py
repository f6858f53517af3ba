"""Selection helpers: memory limits, tool options, the unfitted selector basis, pool subsets (no jobs run)."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlip_trainer.calculations.pace_tool import (
    ACTIVESET_PARAMETERS,
    COMMON_PARAMETERS,
    parse_memory_limit,
    validate_tool_parameters,
)
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.workflows.functions.selection import (
    assemble_selection,
    concatenate_structures,
    take_structures,
    unfitted_potential,
)
from aiida_mlip_trainer.workflows.selection import chunk_size_for_memory

# Peaks of real pace_select jobs on pools of 32-atom copper cells (benchmarks/selection_memory.py, docs/benchmarks.md
# "Memory of selection"): (structures, basis functions, peak RSS in MiB). The largest of each basis, and the one the
# least squares fit underestimated most (36 functions at rcut 6 Å, 20000 cells).
MEASURED_PEAKS = [(50000, 36, 2175), (20000, 36, 1307), (1000, 276, 385), (10000, 276, 2491), (20000, 276, 4833)]


@pytest.mark.parametrize(("structures", "functions", "peak_mib"), MEASURED_PEAKS)
def test_chunks_sized_from_the_cost_model_hold_the_measured_peaks(structures, functions, peak_mib):
    """With a limit equal to a measured peak, the chunk size derived from the cost model is no larger than the pool
    that peaked there: chunks sized from it keep a job under its limit."""
    assert chunk_size_for_memory(peak_mib * 2**20, 32, functions) <= structures


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2**30, 2**30), ("2GB", 2 * 2**30), ("500 MB", 500 * 2**20), ("1.5gb", int(1.5 * 2**30)), ("4096 KB", 2**22)],
)
def test_memory_limit_in_bytes(value, expected):
    assert parse_memory_limit(value) == expected


@pytest.mark.parametrize("value", ["2 * 2**30", "__import__('os')", "auto", "-1GB", True, 1.5e9, 1000, "10KB"])
def test_memory_limit_refuses_anything_but_a_size(value):
    """The pace tools eval() the limit string: only a plain size may ever reach them."""
    with pytest.raises(ValueError, match="memory_limit"):
        parse_memory_limit(value)


@pytest.mark.parametrize(
    ("parameters", "allowed", "message"),
    [
        ({"gamma": 1.1}, COMMON_PARAMETERS, "unknown parameter"),
        ({"gamma_tolerance": 0.9}, COMMON_PARAMETERS, "gamma_tolerance must be a number >= 1"),
        ({"batch_size": 0}, COMMON_PARAMETERS, "batch_size must be a positive integer"),
        ({"maxvol_iters": 2.5}, COMMON_PARAMETERS, "maxvol_iters must be a positive integer"),
        ({"memory_limit": "lots"}, COMMON_PARAMETERS, "memory_limit must be"),
        ({"full": True}, COMMON_PARAMETERS, "unknown parameter"),
        ({"full": "yes"}, ACTIVESET_PARAMETERS, "full must be true or false"),
        ({"force_error_threshold": -1}, ACTIVESET_PARAMETERS, "force_error_threshold must be a number >= 0"),
    ],
)
def test_tool_parameters_are_checked(parameters, allowed, message):
    assert message in validate_tool_parameters(parameters, allowed)


def test_valid_tool_parameters_pass():
    parameters = {"gamma_tolerance": 1.05, "batch_size": 10, "maxvol_iters": 100, "memory_limit": "1GB"}
    assert validate_tool_parameters(parameters, COMMON_PARAMETERS) is None
    assert validate_tool_parameters({**parameters, "all_atoms": True}, ACTIVESET_PARAMETERS) is None


def test_unfitted_potential_is_the_basis_of_the_coming_fit(small_parameters):
    potential = unfitted_potential(orm.Dict(small_parameters), orm.List(["Ar"]))
    assert potential.elements == ["Ar"] and potential.num_functions == 36 and potential.cutoff == 7.0
    assert potential.basis_layout == {"Ar": {"num_functions": 36, "ndensity": 1}}
    assert potential.baseline is None and not potential.has_active_set
    # in the graph: made by a calcfunction from the parameters
    creator = potential.creator
    assert creator.process_label == "unfitted_potential"
    assert creator.inputs.parameters.get_dict() == small_parameters
    # nothing fitted yet: every coefficient is zero
    import yaml

    (block,) = yaml.safe_load(potential.get_yaml())["species"]
    coefficients = [c for function in block["nbody"] for c in function["c"]]
    assert len(block["nbody"]) == 36 and not any(coefficients)
    # radial coefficients crad = delta_nk: the bare radial basis functions
    crad = np.array(block["radcoefficients"])
    assert np.array_equal(crad[:, 0, :], np.eye(*crad[:, 0, :].shape))


def test_unfitted_potential_refuses_elements_the_parameters_exclude(small_parameters):
    small_parameters["potential"]["elements"] = ["Ar"]
    with pytest.raises(ValueError, match=r"contain \['Kr'\], which potential.elements \['Ar'\] lacks"):
        unfitted_potential(orm.Dict(small_parameters), orm.List(["Ar", "Kr"]))


def test_take_structures_keeps_order_labels_and_baseline(argon_sets):
    training_set = argon_sets["train"]
    residual = TrainingSetData(arrays=training_set.get_arrays())
    residual.base.attributes.set("baseline", {"type": "lj", "params": {"sigma": 3.4}})
    residual.store()
    subset = take_structures(residual, orm.List([5, 0, 3]))
    names = list(training_set.get_arrays()["names"])
    assert [a.info["name"] for a in subset.to_atoms()] == [names[5], names[0], names[3]]
    original = training_set.to_atoms()
    for picked, index in zip(subset.to_atoms(), [5, 0, 3], strict=True):
        assert np.allclose(picked.positions, original[index].positions)
        assert picked.get_potential_energy() == pytest.approx(original[index].get_potential_energy())
        assert np.allclose(picked.get_forces(), original[index].get_forces())
    assert subset.has_stress and subset.base.attributes.get("baseline") == {"type": "lj", "params": {"sigma": 3.4}}
    with pytest.raises(ValueError, match="outside the pool of 16 structures"):
        take_structures(training_set, orm.List([16]))
    with pytest.raises(ValueError, match="repeat"):
        take_structures(training_set, orm.List([1, 1]))


def test_concatenate_keeps_labels_only_when_all_have_them(argon_sets, argon_pool):
    both = concatenate_structures(a=argon_sets["train"], b=argon_sets["test"])
    assert both.num_structures == 22 and both.labelled and both.has_stress
    mixed = concatenate_structures(a=argon_sets["train"], b=argon_pool)
    assert mixed.num_structures == 26 and not mixed.labelled


def _assemble(pool, stop_reason="round 3: nothing new", **budget):
    """Two recorded rounds on the argon pool, cut to ``budget``."""
    rounds = {
        "map_0": orm.List(list(range(10))),
        "indices_0": orm.List([8, 6]),
        "summary_0": orm.Dict({"requested": 4, "returned": 2, "used_active_set": False, "shortfall": "only 2"}),
        "map_1": orm.List([0, 1, 2, 3, 4, 5, 7, 9]),
        "indices_1": orm.List([7]),
        "summary_1": orm.Dict({"requested": 2, "returned": 1, "used_active_set": True, "shortfall": "only 1"}),
    }
    spec = {"max_structures": None, "max_atoms": None, "strategy": "dopt", "random_fraction": 0.0, "seed": 0}
    spec.update(budget)
    return assemble_selection(pool, budget=orm.Dict(spec), stop_reason=orm.Str(stop_reason), **rounds)


def test_assemble_selection_maps_rounds_back_to_the_pool(argon_pool):
    """Round k's picks are positions in its own pool (map_k): [8, 6] then the 7th of [0..5, 7, 9] = 9."""
    outputs = _assemble(argon_pool, max_structures=4)
    assert outputs["indices"].get_list() == [8, 6, 9]
    names = argon_pool.get_arrays()["names"]
    assert [a.info["name"] for a in outputs["selected"].to_atoms()] == [names[8], names[6], names[9]]
    result = outputs["summary"].get_dict()
    assert result["requested"] == 4 and result["returned"] == 3 and result["returned_atoms"] == 32 + 32 + 31
    assert result["shortfall"] == "only 1; round 3: nothing new"
    assert [r["returned"] for r in result["rounds"]] == [2, 1]
    assert result["dopt_share"] == {"structures": 3, "atoms": 95} and result["random_share"]["structures"] == 0


def test_assemble_selection_cuts_to_an_atom_budget_and_fills_a_seeded_random_share(argon_pool):
    """The pool: nine cells of 32 atoms and one of 31 (position 9). 80 atoms of D-optimal picks: 8 and 6 (64), then
    9 (31) would overflow and is skipped; the random share fills the rest of the 160 with cells not picked before,
    until the smallest cell left out would overflow."""
    outputs = _assemble(argon_pool, max_atoms=160, strategy="dopt+random", random_fraction=0.5, seed=3)
    indices = outputs["indices"].get_list()
    summary = outputs["summary"].get_dict()
    natoms = argon_pool.get_arrays()["natoms"]
    assert indices[:2] == [8, 6] and len(set(indices)) == len(indices)
    assert summary["dopt_share"] == {"structures": 2, "atoms": 64}
    assert summary["random_share"]["structures"] == len(indices) - 2 >= 2
    assert summary["returned_atoms"] == sum(natoms[indices]) <= 160 < summary["returned_atoms"] + 31
    assert outputs["selected"].num_atoms == summary["returned_atoms"] and summary["shortfall"] is None
    again = _assemble(argon_pool, max_atoms=160, strategy="dopt+random", random_fraction=0.5, seed=3)
    assert again["indices"].get_list() == indices
    other = _assemble(argon_pool, max_atoms=160, strategy="dopt+random", random_fraction=0.5, seed=4)
    assert other["indices"].get_list()[:2] == [8, 6]
    # a budget of 100 atoms with no random share: 8 and 6 fit, 9 (31 atoms) does too: 95 atoms
    only_dopt = _assemble(argon_pool, max_atoms=100)
    assert only_dopt["indices"].get_list() == [8, 6, 9] and only_dopt["summary"]["shortfall"] is None


def test_assemble_selection_takes_the_whole_pool_when_it_fits(argon_pool):
    outputs = assemble_selection(
        argon_pool, budget=orm.Dict({"max_structures": 20, "whole_pool": True, "strategy": "dopt"})
    )
    assert outputs["indices"].get_list() == list(range(10)) and outputs["summary"]["shortfall"] is None
    assert outputs["summary"]["stop_reason"] == "the whole pool fits the budget"
    assert outputs["whole_pool"].value is True
    assert _assemble(argon_pool, max_atoms=100)["whole_pool"].value is False


def test_a_pool_within_the_budget_is_flagged_whole_and_taken_without_a_job(
    argon_pool, fitted_potential, mock_pace_select_code, mock_pace_activeset_code, generate_workchain
):
    """The flag, not the stop message, says the pool was taken whole: setup sets it, results passes it to the
    calcfunction that cuts the selection, whose ``whole_pool`` output records it; a pool larger than the budget is
    not flagged."""
    codes = {"pace_select": {"code": mock_pace_select_code}, "pace_activeset": {"code": mock_pace_activeset_code}}
    inputs = {"pool": argon_pool, "potential": fitted_potential, **codes}
    process = generate_workchain("mlip_trainer.selection", {**inputs, "max_structures": orm.Int(10)})
    process.setup()
    assert process.ctx.whole_pool and not process.should_run_chunk() and not process.should_run_round()
    assert process.results() is None
    assert process.outputs["whole_pool"].value is True
    assert process.outputs["indices"].get_list() == list(range(10))
    smaller = generate_workchain("mlip_trainer.selection", {**inputs, "max_structures": orm.Int(4)})
    smaller.setup()
    assert not smaller.ctx.whole_pool and smaller.should_run_round()
