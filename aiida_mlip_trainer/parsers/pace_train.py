"""Parser of `PaceTrainCalculation`: reads only the retrieved files, maps failures to exit codes."""

from __future__ import annotations

import re

import numpy as np
from aiida import orm

from ..calculations.pace_train import PaceTrainCalculation as Calc
from ..data.pace_potential import PacePotentialData
from ..pacemaker_output import (
    final_error_tables,
    first_non_finite,
    learning_curve,
    log_wall_time,
    read_metrics_table,
)
from .pace_tools import KILLED_STATUSES, PaceToolParser, stop_reason

__all__ = ("PaceTrainParser",)

# A final loss this many times the initial one means the fit ran away.
DIVERGENCE_FACTOR = 10.0
_INTERIM = re.compile(r"^interim_potential_(\d+)\.yaml$")


class PaceTrainParser(PaceToolParser):
    """Turn a pacemaker working directory into a `PacePotentialData` and a metrics `Dict`.

    The table, from the first check to the last: no ``log.txt`` (300; 405 when the job was killed that early);
    pacemaker stopped before fitting with a non-zero status (310, unreadable input); NaN or inf loss (410); stopped
    from outside, e.g. by the walltime (400, the last interim potential is still returned; 405 when there was none
    yet, so that nothing can be continued); other non-zero status (320); finished without a potential (330); an
    unreadable potential (340); a loss that grew (420). What stopped a job is said in words (``metrics['stopped_by']``
    and the exit message): the plugin's soft walltime, SIGKILL, SIGTERM, or the scheduler.
    """

    _versions: dict | None = None

    def parse(self, **kwargs):
        files = set(self.retrieved.base.repository.list_object_names())
        stderr, detail, exit_status = self._stderr_and_status(Calc)
        killed = exit_status is None or exit_status in KILLED_STATUSES
        reason = (
            stop_reason(
                exit_status,
                soft_walltime=Calc.SOFT_WALLTIME_FILENAME in files,
                scheduler_stderr=self._scheduler_stderr(),
            )
            if killed
            else None
        )

        log = self._read(Calc.LOG_FILENAME)
        self._versions = self._output_versions(log)
        if log is None:
            if killed:  # stopped while Python and TensorFlow were still starting: a restart can fix that
                self.out("metrics", orm.Dict({"exit_status": exit_status, "iterations": 0, "stopped_by": reason}))
                return self.exit_codes.ERROR_KILLED_BEFORE_INTERIM.format(reason=reason)
            return self.exit_codes.ERROR_NO_LOG.format(detail=detail)

        rows = read_metrics_table(self._read("metrics.txt") or "")
        test_rows = read_metrics_table(self._read("test_metrics.txt") or "")
        metrics = self._metrics(log, rows, test_rows, exit_status)
        self._output_learning_curve(rows, test_rows)

        if exit_status not in (0, None) and not killed and not rows:
            self.out("metrics", orm.Dict(metrics))
            return self.exit_codes.ERROR_UNREADABLE_INPUT.format(detail=detail)

        non_finite = first_non_finite(rows)
        if non_finite is not None:
            self.out("metrics", orm.Dict(metrics))
            return self.exit_codes.ERROR_NAN_LOSS.format(iteration=int(non_finite.get("iter_num", -1)))

        if killed:
            metrics["stopped_by"] = reason
            interim = sorted((int(m.group(1)), name) for name in files if (m := _INTERIM.match(name)) is not None)
            if not interim:
                self.out("metrics", orm.Dict(metrics))
                return self.exit_codes.ERROR_KILLED_BEFORE_INTERIM.format(reason=reason)
            filename = interim[-1][1]
            metrics["interim"] = True
            metrics["potential_file"] = filename
            self.out("metrics", orm.Dict(metrics))
            failure = self._output_potential(filename)
            if failure is not None:
                return failure
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(
                reason=reason, filename=filename, iteration=metrics["iterations"]
            )

        self.out("metrics", orm.Dict(metrics))
        if exit_status != 0:
            return self.exit_codes.ERROR_PACEMAKER_FAILED.format(status=exit_status, detail=detail)
        if Calc.OUTPUT_POTENTIAL not in files:
            return self.exit_codes.ERROR_NO_OUTPUT_POTENTIAL
        failure = self._output_potential(Calc.OUTPUT_POTENTIAL)
        if failure is not None:
            return failure
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
        return _finite_or_string(metrics)

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


def _finite_or_string(value):
    if isinstance(value, dict):
        return {key: _finite_or_string(item) for key, item in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value
