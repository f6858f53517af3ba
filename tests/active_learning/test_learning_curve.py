"""The learning curve of a loop: its figure, and the reasons `learn status` gives for a rise of the test error."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from aiida_mlip_trainer.workflows.functions.learning_curve import CURVE_COLUMNS, learning_curve_figure


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
