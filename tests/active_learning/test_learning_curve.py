"""The learning curve of a loop: its figure, and the reasons `learn status` gives for a rise of the test error."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType

from aiida_mlip_trainer.workflows.functions.learning_curve import CURVE_COLUMNS, explain_rises, learning_curve_figure


@pytest.mark.parametrize("rounds", [2, 3, 7])
def test_the_figure_has_whole_rounds_and_calls_on_its_axes(rounds):
    """The round axis had ticks at -0.25 ... 1.25 for two rounds; oracle calls are whole numbers too."""
    columns = {name: [np.nan] * rounds for name in CURVE_COLUMNS}
    columns |= {
        "round": list(range(rounds)),
        "oracle_calls": [3 * k for k in range(rounds)],
        "force_rmse": [90.0 - k for k in range(rounds)],
        "energy_rmse": [2.0] * rounds,
        "max_gamma": [5.0 + k for k in range(rounds)],
        "fraction_halted": [0.5] * rounds,
    }
    figure = learning_curve_figure(columns, made=3 * rounds)
    try:
        figure.canvas.draw()
        errors, gamma = figure.axes[0], figure.axes[1]
        for axis in (errors, gamma):
            low, high = axis.get_xlim()
            ticks = [t for t in axis.get_xticks() if low <= t <= high]
            assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), (axis.get_xlabel(), ticks)
        assert gamma.get_xlabel() == "round"
    finally:
        plt.close(figure)


def _round(force_rmse, test_structures=20, test_set="a", test_energies=None, added=None):
    test_energies = np.linspace(-3.50, -3.40, 20) if test_energies is None else test_energies
    return {
        "force_rmse": force_rmse,
        "test_structures": test_structures,
        "test_set": test_set,
        "test_energies": test_energies,
        "added_energies": added,
    }


def test_a_rise_says_its_causes_or_that_none_was_found():
    near = [-3.45, -3.46, -3.44]
    assert explain_rises([_round(87.9), _round(80.0, added=near)]) == {}  # it fell: nothing to explain
    plain = explain_rises([_round(87.9), _round(95.1, added=near)])
    assert plain == {1: "the test force error rose from 87.9 to 95.1 meV/Å; no cause found"}

    few = explain_rises([_round(87.9, 6), _round(95.1, 6, added=near)])[1]
    assert few.startswith("the test force error rose from 87.9 to 95.1 meV/Å: only 6 test structures")
    assert "no cause found" not in few

    changed = explain_rises([_round(87.9), _round(95.1, test_set="b", added=near)])[1]
    assert "the test set changed between rounds 0 and 1" in changed and "only" not in changed

    far = explain_rises([_round(87.9), _round(90.0), _round(95.1, added=[-2.9, -2.8, -3.45])])
    assert set(far) == {1, 2} and far[1].endswith("no cause found")
    assert "2 of the 3 structures added before this fit have energies per atom outside the test set's" in far[2]
    assert "+400 meV/atom from its mean" in far[2]


def test_learn_status_explains_a_rise_of_the_test_error(aiida_localhost, copper_sets):
    """A finished loop whose round 1 fits worse on its 6 held-out structures: the status says so, and why."""
    from tests.active_learning.test_learn_cli import _output, _process
    from tests.test_cli import invoke

    loop = _process(orm.WorkChainNode, "workflows:mlip_trainer.active_learning", "ActiveLearningWorkChain").store()
    reference = {"force_component_rms": 412.5, "energy_per_atom_std": 21.25}
    for k, force in enumerate((87.9, 95.1)):
        training = _process(
            orm.WorkChainNode, "workflows:mlip_trainer.training", "TrainingWorkChain", loop, f"training_{k}"
        )
        for label, data in (("training_set", copper_sets["initial"]), ("test_set", copper_sets["test"])):
            training.base.links.add_incoming(data, link_type=LinkType.INPUT_WORK, link_label=label)
        training.store()
        metrics = {"energy_rmse": 3.5, "force_rmse": force, "num_structures": 6, "reference": reference}
        _output(training, orm.Dict(metrics), "metrics")
    result = invoke("learn", "status", loop.pk)
    assert result.exit_code == 0, result.output
    assert "round 1: the test force error rose from 87.9 to 95.1 meV/Å: only 6 test structures" in result.output
