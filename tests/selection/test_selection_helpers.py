"""Selection helpers: memory limits, tool options, the unfitted selector basis, pool subsets (no jobs run)."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.selection import (
    ACTIVESET_PARAMETERS,
    COMMON_PARAMETERS,
    basis_layout,
    concatenate_structures,
    gather_selection,
    parse_memory_limit,
    take_structures,
    unfitted_potential,
    validate_tool_parameters,
)


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
    assert basis_layout(potential) == {"Ar": {"num_functions": 36, "ndensity": 1}}
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


def test_gather_selection_maps_rounds_back_to_the_pool(argon_pool):
    summary = {"requested": 4, "returned": 2, "used_active_set": False, "shortfall": "only 2"}
    outputs = gather_selection(
        argon_pool,
        stop_reason=orm.Str("round 2: nothing new"),
        map_0=orm.List(list(range(10))),
        indices_0=orm.List([8, 6]),
        summary_0=orm.Dict(summary),
        map_1=orm.List([0, 1, 2, 3, 4, 5, 7, 9]),
        indices_1=orm.List([7]),
        summary_1=orm.Dict({**summary, "requested": 2, "returned": 1}),
    )
    assert outputs["indices"].get_list() == [8, 6, 9]
    names = argon_pool.get_arrays()["names"]
    assert [a.info["name"] for a in outputs["selected"].to_atoms()] == [names[8], names[6], names[9]]
    result = outputs["summary"].get_dict()
    assert result["requested"] == 4 and result["returned"] == 3
    assert result["shortfall"] == "only 2; round 2: nothing new"
    assert [r["returned"] for r in result["rounds"]] == [2, 1]
