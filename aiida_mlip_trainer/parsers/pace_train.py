"""Parser of `PaceTrainCalculation`: reads only the retrieved files, maps failures to exit codes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import ClassVar

import numpy as np
from aiida import orm

from ..calculations.pace_train import PaceTrainCalculation as Calc
from ..data.pace_potential import PacePotentialData
from ..formats.pacemaker_output import (
    final_error_tables,
    first_non_finite,
    learning_curve,
    log_wall_time,
    read_metrics_table,
)
from .pace_tools import PaceToolParser, finite_or_string

__all__ = ("PaceTrainParser",)

# A final loss this many times the initial one means the fit ran away.
DIVERGENCE_FACTOR = 10.0
_INTERIM = re.compile(r"^interim_potential_(\d+)\.yaml$")


@dataclasses.dataclass
class _Run:
    """What the failure table of `PaceTrainParser` reads of one run."""

    files: set[str]
    exit_status: int | None
    killed: bool
    log: str | None
    interim: str | None  # the name of the last interim potential, if any
    rows: list = dataclasses.field(default_factory=list)
    non_finite: dict | None = None


class PaceTrainParser(PaceToolParser):
    """Turn a pacemaker working directory into a `PacePotentialData` and a metrics `Dict`.

    The table, from the first check to the last: no ``log.txt`` (ERROR_NO_LOG; ERROR_KILLED_BEFORE_INTERIM when
    the job was killed that early); pacemaker stopped before fitting with a non-zero status
    (ERROR_UNREADABLE_INPUT); NaN or inf loss (ERROR_NAN_LOSS); stopped from outside, e.g. by the walltime
    (ERROR_OUT_OF_WALLTIME, the last interim potential is still returned; ERROR_KILLED_BEFORE_INTERIM when there was
    none yet, so that nothing can be continued); other non-zero status (ERROR_PACEMAKER_FAILED); finished without a
    potential (ERROR_NO_OUTPUT_POTENTIAL); an unreadable potential (ERROR_INVALID_OUTPUT_POTENTIAL); a loss that
    grew (ERROR_LOSS_DIVERGED). What stopped a job is said in words (``metrics['stopped_by']``
    and the exit message): the plugin's soft walltime, SIGKILL, SIGTERM, or the scheduler.
    """

    _versions: dict | None = None

    # Ordered failure table (aiida-quantumespresso's error map): the first row whose condition holds on the run
    # names the exit code. A run that no row matches goes on to the checks of its potential
    # (ERROR_INVALID_OUTPUT_POTENTIAL, ERROR_LOSS_DIVERGED); the walltime row (ERROR_OUT_OF_WALLTIME) also returns
    # the last interim potential, so that a restart can continue from it.
    ERROR_TABLE: ClassVar[tuple[tuple[Callable[[_Run], bool], str], ...]] = (
        (lambda run: run.log is None and run.killed, "ERROR_KILLED_BEFORE_INTERIM"),
        (lambda run: run.log is None, "ERROR_NO_LOG"),
        (lambda run: run.exit_status not in (0, None) and not run.killed and not run.rows, "ERROR_UNREADABLE_INPUT"),
        (lambda run: run.non_finite is not None, "ERROR_NAN_LOSS"),
        (lambda run: run.killed and run.interim is None, "ERROR_KILLED_BEFORE_INTERIM"),
        (lambda run: run.killed, "ERROR_OUT_OF_WALLTIME"),
        (lambda run: run.exit_status != 0, "ERROR_PACEMAKER_FAILED"),
        (lambda run: Calc.OUTPUT_POTENTIAL not in run.files, "ERROR_NO_OUTPUT_POTENTIAL"),
    )

    def parse(self, **kwargs):
        files = set(self.retrieved.base.repository.list_object_names())
        detail, exit_status, killed, reason = self._fit_stop(Calc, files)
        log = self._read(Calc.LOG_FILENAME)
        self._versions = self._output_versions(log)
        interim = sorted((int(m.group(1)), name) for name in files if (m := _INTERIM.match(name)) is not None)
        run = _Run(files, exit_status, killed, log, interim[-1][1] if interim else None)

        if log is None:
            metrics = {"exit_status": exit_status, "iterations": 0, "stopped_by": reason} if killed else None
        else:
            run.rows = read_metrics_table(self._read("metrics.txt") or "")
            test_rows = read_metrics_table(self._read("test_metrics.txt") or "")
            run.non_finite = first_non_finite(run.rows)
            metrics = self._metrics(log, run.rows, test_rows, exit_status)
            self._output_learning_curve(run.rows, test_rows)
        name = next((name for condition, name in self.ERROR_TABLE if condition(run)), None)
        if log is not None and killed and name != "ERROR_NAN_LOSS":
            metrics["stopped_by"] = reason
        if name == "ERROR_OUT_OF_WALLTIME":  # the last interim potential is still returned, for a restart
            metrics.update(interim=True, potential_file=run.interim)
        if metrics is not None:
            self.out("metrics", orm.Dict(metrics))
        if name is not None and name != "ERROR_OUT_OF_WALLTIME":
            iteration = int(run.non_finite.get("iter_num", -1)) if run.non_finite is not None else None
            return getattr(self.exit_codes, name).format(
                reason=reason, detail=detail, iteration=iteration, status=exit_status
            )

        failure = self._output_potential(run.interim if name else Calc.OUTPUT_POTENTIAL)
        if failure is not None:
            return failure
        if name == "ERROR_OUT_OF_WALLTIME":
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(
                reason=reason, filename=run.interim, iteration=metrics["iterations"]
            )
        initial, final = metrics.get("initial_loss"), metrics.get("final_loss")
        if initial is not None and final is not None and final > DIVERGENCE_FACTOR * initial:
            return self.exit_codes.ERROR_LOSS_DIVERGED.format(initial=initial, final=final)
        return None

    def _output_potential(self, filename: str):
        content = self.retrieved.base.repository.get_object_content(filename, mode="rb")
        # A residual training set (see subtract_baseline) records the baseline that predictions must add back.
        baseline = self.node.inputs.training_set.base.attributes.get("baseline", None)
        try:
            potential = PacePotentialData(content, baseline=baseline, fitted_with=self._versions)
        except ValueError as exc:
            return self.exit_codes.ERROR_INVALID_OUTPUT_POTENTIAL.format(detail=str(exc))
        self.out("potential", potential)
        return None

    def _metrics(self, log: str, rows: list, test_rows: list, exit_status: int | None) -> dict:
        tables = final_error_tables(log)
        metrics: dict = {
            "units": {"energy": "meV/atom", "force": "meV/Å per component", "wall_time": "s"},
            "exit_status": exit_status,
            "interim": False,
            "potential_file": Calc.OUTPUT_POTENTIAL,
            "wall_time": log_wall_time(log),
            "reference": self._reference_spread(),
        }
        for label in ("train", "test"):
            if label in tables:
                metrics[label] = tables[label]
        if rows:
            metrics["iterations"] = int(rows[-1]["iter_num"])
            metrics["initial_loss"] = rows[0]["loss"]
            metrics["final_loss"] = rows[-1]["loss"]
            metrics["num_functions"] = int(rows[-1]["nfuncs"])
        else:
            metrics["iterations"] = 0
        if test_rows:
            metrics["final_test_loss"] = test_rows[-1]["loss"]
        # JSON has no NaN: store non-finite numbers as strings so the node can still be stored and read.
        return finite_or_string(metrics)

    def _reference_spread(self) -> dict:
        """The spread of the reference data, to read every error against: energy-per-atom standard deviation
        (meV/atom) and force-component RMS (meV/Å). Without a test_set, pacemaker's split comes from the
        training set, whose spread is then reported for both."""
        inputs = self.node.inputs
        training_set = inputs.training_set
        test_set = inputs.test_set if "test_set" in inputs else training_set
        spread = {}
        for label, node in (("train", training_set), ("test", test_set)):
            spread[label] = {
                "energy_per_atom_std": 1000.0 * node.base.attributes.get("energy_per_atom_std"),
                "force_component_rms": 1000.0 * node.base.attributes.get("force_component_rms"),
            }
        return spread

    def _output_learning_curve(self, rows: list, test_rows: list) -> None:
        curve = learning_curve(rows, test_rows)
        if not curve["train"]:
            return
        node = orm.ArrayData()
        for prefix, points in curve.items():
            if points:
                node.set_array(f"{prefix}_iteration", np.array([p["iteration"] for p in points], dtype=int))
                for quantity in ("loss", "energy_rmse", "force_rmse"):
                    node.set_array(f"{prefix}_{quantity}", np.array([p[quantity] for p in points]))
        self.out("learning_curve", node)
