"""The reader of pacemaker's log and metrics tables, on a real recorded log."""

import math

import pytest

from aiida_mlip_trainer.formats.pacemaker_output import (
    final_error_tables,
    first_non_finite,
    last_iteration,
    log_wall_time,
    read_metrics_table,
)
from tests.conftest import FIXTURES

RECORDED = FIXTURES / "pace_train_success"


def test_final_tables_of_a_real_log():
    tables = final_error_tables((RECORDED / "log.txt").read_text())
    # values printed in the last "Cycle last iteration" tables of the recorded log
    assert tables["train"] == {
        "iteration": 31,
        "energy_rmse": 0.65,
        "energy_mae": 0.55,
        "energy_max_ae": 1.24,
        "force_rmse": 5.08,
        "force_mae": 3.55,
        "force_max_ae": 37.56,
    }
    assert tables["test"]["force_rmse"] == 2.99 and tables["test"]["energy_rmse"] == 0.57


def test_tables_of_a_cut_log_fall_back_to_the_last_printed():
    lines = (RECORDED / "log.txt").read_text().splitlines()
    tables = final_error_tables("\n".join(lines[:150]))
    assert tables["train"]["iteration"] == 10
    assert tables["test"]["iteration"] == 10
    assert final_error_tables("nothing here") == {}


def test_metrics_table_agrees_with_the_log():
    rows = read_metrics_table((RECORDED / "metrics.txt").read_text())
    assert rows[0]["iter_num"] == 0 and rows[-1]["iter_num"] == 30
    # metrics.txt is in eV/Å per component; the log in meV/Å
    assert rows[-1]["rmse_f_comp"] * 1000 == pytest.approx(5.08, abs=0.005)
    assert first_non_finite(rows) is None
    rows[3]["loss"] = math.nan
    assert first_non_finite(rows)["iter_num"] == 3


def test_wall_time():
    assert log_wall_time((RECORDED / "log.txt").read_text()) == pytest.approx(17.127, abs=0.01)
    assert log_wall_time("") is None


def test_last_iteration_is_read_from_a_log_being_written():
    """What `train status` and `--run` show while a fit runs: the last iteration line of log.txt so far."""
    log = (RECORDED / "log.txt").read_text()
    assert last_iteration(log) == {"iteration": 29, "loss": 3.9434e-05, "energy_rmse": 0.77, "force_rmse": 5.11}
    partial = log[: log.index("Iteration   #5 ")]
    assert last_iteration(partial) == {"iteration": 4, "loss": 2.4455e-04, "energy_rmse": 9.68, "force_rmse": 11.48}
    start = log[: log.index("Iteration   #1 ")]  # only the initial state, and the test set's (not the fit's)
    assert last_iteration(start)["iteration"] == 0 and last_iteration(start)["loss"] == 6.4960e-03
    assert last_iteration(log[: log.index("Initial state")]) is None
