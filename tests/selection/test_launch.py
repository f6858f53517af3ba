"""select_structures: bad input is refused before any job; a failed job raises; codes are found or made."""

import re

import pytest
from aiida import orm

from aiida_mlip_trainer.data import PacePotentialData
from aiida_mlip_trainer.launch import SelectionError, get_or_create_code, select_structures
from tests.selection.conftest import POTENTIAL, build_pool_structures


def _count_jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode).count()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_structures": 0}, "max_structures must be a positive integer, got 0"),
        ({"max_structures": -2}, "max_structures must be a positive integer"),
        ({"max_structures": 2.5}, "max_structures must be a positive integer"),
        ({"pool": []}, "the pool is empty"),
        ({"potential": None}, "give either a `potential`"),
        ({"parameters": {"potential": {}}}, "give either a `potential`"),
        ({"strategy": "greedy"}, "strategy must be 'extend' or 'layers'"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer, got 0"),
        ({"use_active_set": True}, "use_active_set needs a potential with an active set"),
        ({"potential": "copper"}, r"the pool contains \['Ar'\], which the selector potential \(\['Cu'\]\) lacks"),
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
    with pytest.raises(SelectionError, match=r"pace_select failed \[300\].*mock pace_select crashed"):
        select_structures(argon_pool, 4, potential=fitted_potential, code=mock_pace_select_code, options=options)


def test_codes_are_found_next_to_python_and_reused(aiida_localhost):
    code = get_or_create_code("pace_select", "mlip_trainer.pace_select", computer=aiida_localhost)
    assert code.filepath_executable.name == "pace_select"
    assert code.default_calc_job_plugin == "mlip_trainer.pace_select"
    assert get_or_create_code("pace_select", "mlip_trainer.pace_select", computer=aiida_localhost).pk == code.pk


def test_select_within_atoms_fills_the_budget_dopt_first_then_at_random(argon_pool, monkeypatch):
    """The D-optimal share is taken best first while it fits its half of the budget, the rest at random (seeded);
    pace_select itself is stood in for by a fixed order (the argon pool: nine cells of 32 atoms, one of 31)."""
    from types import SimpleNamespace

    from aiida_mlip_trainer import launch

    calls = []

    def fake_select(pool, max_structures, **kwargs):
        calls.append({"max_structures": max_structures, **kwargs})
        order = orm.List([9, 8, 7, 6, 5, 4][:max_structures])
        return SimpleNamespace(creator=SimpleNamespace(outputs=SimpleNamespace(indices=order)))

    monkeypatch.setattr(launch, "select_structures", fake_select)
    natoms = argon_pool.get_arrays()["natoms"]
    selected = launch.select_within_atoms(argon_pool, 100, parameters={"potential": {}}, seed=3)
    indices = selected.creator.inputs.indices.get_list()
    # D-optimal half (50 atoms): the 31-atom cell fits, the next (32) would overflow; then 69 atoms at random: two.
    assert indices[0] == 9 and len(indices) == 3 and len(set(indices)) == 3
    assert sum(natoms[i] for i in indices) <= 100 and selected.num_atoms == sum(natoms[i] for i in indices)
    assert calls == [{"max_structures": 3, "strategy": "layers", "max_rounds": 50, "parameters": {"potential": {}}}]
    again = launch.select_within_atoms(argon_pool, 100, parameters={"potential": {}}, seed=3)
    assert again.creator.inputs.indices.get_list() == indices

    only_random = launch.select_within_atoms(argon_pool, 70, random_fraction=1.0, seed=3)
    assert len(calls) == 2 and only_random.num_structures == 2

    # D-optimal only: the six ranked cells (191 atoms) and no random fill of the 109 atoms left
    only_dopt = launch.select_within_atoms(argon_pool, 300, random_fraction=0.0, parameters={"potential": {}})
    assert only_dopt.creator.inputs.indices.get_list() == [9, 8, 7, 6, 5, 4]
    # the cut is in the graph: budget, share, seed and the D-optimal order are inputs of a calcfunction
    cut = only_dopt.creator.inputs.indices.creator
    assert cut.process_label == "fill_atom_budget" and cut.inputs.max_atoms.value == 300
    assert cut.inputs.ranked.get_list() == [9, 8, 7, 6, 5, 4] and cut.inputs.random_fraction.value == 0.0


def test_select_within_atoms_goes_random_when_nothing_is_new(argon_pool, monkeypatch):
    """When the D-optimal share finds nothing (a potential that covers the pool), the whole budget is random."""
    from aiida_mlip_trainer import launch

    def nothing_new(pool, max_structures, **kwargs):
        raise launch.SelectionError("nothing was selected: no structure left in the pool extends the active set")

    monkeypatch.setattr(launch, "select_structures", nothing_new)
    selected = launch.select_within_atoms(argon_pool, 100, seed=3, parameters={"potential": {}})
    assert selected.num_structures == 3 and selected.creator.inputs.indices.creator.inputs.random_fraction.value == 1.0
    with pytest.raises(launch.SelectionError, match="nothing was selected"):
        launch.select_within_atoms(argon_pool, 100, random_fraction=0.0, parameters={"potential": {}})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_atoms": 0}, "max_atoms must be a positive integer"),
        ({"random_fraction": 1.5}, "random_fraction must be between 0 and 1"),
        ({"strategy": "extend"}, "`strategy` is set by select_within_atoms itself"),
        ({"max_atoms": 20, "random_fraction": 1.0}, "no structure of the pool fits max_atoms=20"),
    ],
)
def test_select_within_atoms_refuses_bad_input_before_any_job(argon_pool, kwargs, message):
    from aiida_mlip_trainer.launch import select_within_atoms

    arguments = {"max_atoms": 100, **kwargs}
    jobs_before = _count_jobs()
    with pytest.raises(ValueError, match=message):
        select_within_atoms(argon_pool, **arguments)
    assert _count_jobs() == jobs_before
