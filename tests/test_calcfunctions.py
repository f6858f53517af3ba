"""The calcfunctions of the work chain: split, validation of a potential."""

import numpy as np
import pytest
from aiida import orm

from aiida_mlip_trainer.data import PacePotentialData
from aiida_mlip_trainer.workflows.functions.potential import validate_potential
from aiida_mlip_trainer.workflows.functions.training_set import split_training_set
from tests.conftest import FIXTURES


def test_split_is_reproducible_disjoint_and_complete(argon_sets):
    data = argon_sets["train"]
    first = split_training_set(data, orm.Float(0.25), orm.Int(7))
    again = split_training_set(data, orm.Float(0.25), orm.Int(7))
    other = split_training_set(data, orm.Float(0.25), orm.Int(8))
    test = first["test_indices"].get_list()
    assert len(test) == 4 and first["train"].num_structures == 12
    assert test == again["test_indices"].get_list() != other["test_indices"].get_list()
    names = set(first["train"].get_arrays()["names"]) | set(first["test"].get_arrays()["names"])
    assert names == set(data.get_arrays()["names"])
    assert not set(first["train"].get_arrays()["names"]) & set(first["test"].get_arrays()["names"])
    assert first["test"].base.links.get_incoming().one().node.process_label == "split_training_set"


def test_validate_potential_reports_errors_next_to_the_spread(argon_sets, argon_structures):
    potential = PacePotentialData(FIXTURES / "pace_train_success" / "output_potential.yaml").store()
    result = validate_potential(potential, argon_sets["test"])
    metrics = result["metrics"].get_dict()
    calculator = potential.get_calculator()
    errors = []
    for atoms in argon_structures["test"]:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_forces() - atoms.get_forces())
    assert metrics["force_rmse"] == pytest.approx(1000 * np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    assert metrics["reference"]["force_component_rms"] == pytest.approx(
        1000 * argon_sets["test"].base.attributes.get("force_component_rms")
    )
    assert metrics["stress_rmse"] > 0 and metrics["reference"]["stress_component_rms"] > 0
    assert metrics["num_structures"] == 6 and metrics["num_atoms"] == 192
    assert result["parity_plot"].filename == "parity.png"


def test_validation_on_a_tiny_held_out_set_carries_a_warning(argon_structures):
    """Two test structures were reported like any other validation."""
    from aiida import orm

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.workflows.functions.potential import MIN_TEST_STRUCTURES

    potential = PacePotentialData(FIXTURES / "pace_train_success" / "output_potential.yaml").store()
    tiny = TrainingSetData(argon_structures["test"][:2]).store()
    result, node = validate_potential.run_get_node(potential, tiny)
    warning = result["metrics"]["warning"]
    assert f"only 2 test structures (fewer than {MIN_TEST_STRUCTURES})" in warning
    assert any(warning in log.message for log in orm.Log.collection.get_logs_for(node))
    enough = TrainingSetData(argon_structures["train"][:MIN_TEST_STRUCTURES]).store()
    assert "warning" not in validate_potential(potential, enough)["metrics"].get_dict()


def test_starting_structures_are_seeded_geometry_without_labels(argon_sets):
    from aiida_mlip_trainer.workflows.functions.training_set import pick_starting_structures

    data = argon_sets["train"]
    first = pick_starting_structures(data, orm.Int(5), orm.Int(3))
    again = pick_starting_structures(data, orm.Int(5), orm.Int(3))
    other = pick_starting_structures(data, orm.Int(5), orm.Int(4))
    assert first.num_structures == 5 and not first.labelled and not first.has_stress
    names = list(first.get_arrays()["names"])
    assert names == list(again.get_arrays()["names"]) != list(other.get_arrays()["names"])
    assert set(names) <= set(data.get_arrays()["names"])
    assert first.creator.process_label == "pick_starting_structures"
