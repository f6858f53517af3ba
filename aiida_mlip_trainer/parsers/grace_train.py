"""Parser of `GraceTrainCalculation`: reads only the retrieved files, maps failures to exit codes."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import yaml
from aiida import orm

from ..calculations.grace_train import GraceTrainCalculation as Calc
from ..data.grace_potential import CHECKPOINT_FILES, MODEL_FILENAME, GraceFSPotentialData
from ..formats.grace_output import EV_PER_A3_TO_GPA, best_row, errors_in_plugin_units, read_metrics_rows
from ..physics.training_arrays import STRESS_KEY
from .pace_tools import (
    PaceToolParser,
    finite_or_string,
    last_error_line,
    read_exit_status,
)

__all__ = ("GraceTrainParser",)


@dataclasses.dataclass
class _Run:
    """What the failure table of `GraceTrainParser` reads of one run."""

    files: set[str]
    exit_status: int | None
    killed: bool
    log: str | None
    train_rows: list
    non_finite_epoch: int | None

    @property
    def has_checkpoint(self) -> bool:
        return MODEL_FILENAME in self.files and all(name in self.files for name in CHECKPOINT_FILES)


class GraceTrainParser(PaceToolParser):
    """Turn a gracemaker job into a `GraceFSPotentialData` (the FS YAML, its checkpoint) and a metrics `Dict`.

    The table, from the first check to the last: no ``log.txt`` (ERROR_GRACEMAKER_NO_LOG; ERROR_KILLED_BEFORE_INTERIM
    when the job was killed that early); a NaN or inf loss (ERROR_NAN_LOSS); gracemaker stopped before its first
    epoch with a non-zero status (ERROR_GRACEMAKER_UNREADABLE_INPUT); stopped from outside before its first
    checkpoint (ERROR_KILLED_BEFORE_INTERIM) or after (ERROR_OUT_OF_WALLTIME, the exported last checkpoint is still
    returned); another non-zero status (ERROR_GRACEMAKER_FAILED); no FS YAML (ERROR_GRACE_EXPORT_FAILED); an
    unreadable one (ERROR_INVALID_GRACE_POTENTIAL). Errors are in meV/atom, meV/Å and GPa (``metrics['units']``).
    """

    ERROR_TABLE: ClassVar[tuple[tuple[Callable[[_Run], bool], str], ...]] = (
        (lambda run: run.log is None and run.killed, "ERROR_KILLED_BEFORE_INTERIM"),
        (lambda run: run.log is None, "ERROR_GRACEMAKER_NO_LOG"),
        (lambda run: run.non_finite_epoch is not None, "ERROR_NAN_LOSS"),
        (
            lambda run: run.exit_status not in (0, None) and not run.killed and not run.train_rows,
            "ERROR_GRACEMAKER_UNREADABLE_INPUT",
        ),
        (lambda run: run.killed and not run.has_checkpoint, "ERROR_KILLED_BEFORE_INTERIM"),
        (lambda run: run.exit_status != 0 and not run.killed, "ERROR_GRACEMAKER_FAILED"),
        (lambda run: Calc.OUTPUT_POTENTIAL not in run.files, "ERROR_GRACE_EXPORT_FAILED"),
        (lambda run: run.killed, "ERROR_OUT_OF_WALLTIME"),
    )

    def parse(self, **kwargs):
        files = set(self.retrieved.base.repository.list_object_names())
        detail, exit_status, killed, reason = self._fit_stop(Calc, files)
        log = self._read(Calc.LOG_FILENAME)
        versions = self._output_versions()
        train_rows = read_metrics_rows(self._read(Calc.TRAIN_METRICS))
        test_rows = read_metrics_rows(self._read(Calc.TEST_METRICS))
        non_finite = next((row for row in train_rows if not math.isfinite(row.get("total_loss/train", 0.0))), None)
        run = _Run(
            files, exit_status, killed, log, train_rows, None if non_finite is None else int(non_finite["epoch"])
        )
        name = next((name for condition, name in self.ERROR_TABLE if condition(run)), None)

        metrics = self._metrics(train_rows, test_rows, exit_status) if log is not None or killed else None
        if metrics is not None:
            if killed:
                metrics["stopped_by"] = reason
            metrics["interim"] = name == "ERROR_OUT_OF_WALLTIME"
            self.out("metrics", orm.Dict(metrics))
        if name == "ERROR_GRACE_EXPORT_FAILED":
            export_stderr = self._read(Calc.EXPORT_STDERR) or ""
            status = read_exit_status(self._read(Calc.EXPORT_EXIT_STATUS))
            export_detail = (
                f"grace_utils exited with status {status}: {last_error_line(export_stderr)}"
                if Calc.EXPORT_EXIT_STATUS in files
                else "grace_utils did not run (no checkpoint to export)"
            )
            return self.exit_codes.ERROR_GRACE_EXPORT_FAILED.format(detail=export_detail)
        if name is not None and name != "ERROR_OUT_OF_WALLTIME":
            return getattr(self.exit_codes, name).format(
                reason=reason, detail=detail, iteration=run.non_finite_epoch, status=exit_status
            )

        failure = self._output_potential(files, versions)
        if failure is not None:
            return failure
        if name == "ERROR_OUT_OF_WALLTIME":
            return self.exit_codes.ERROR_OUT_OF_WALLTIME.format(reason=reason, iteration=metrics.get("epochs"))
        return None

    def _output_potential(self, files: set[str], versions: dict | None):
        content = self._read(Calc.OUTPUT_POTENTIAL, mode="rb")
        checkpoint = None
        if MODEL_FILENAME in files and all(name in files for name in CHECKPOINT_FILES):
            checkpoint = {name: self._read(name, mode="rb") for name in (MODEL_FILENAME, *CHECKPOINT_FILES)}
        baseline = self.node.inputs.training_set.base.attributes.get("baseline", None)
        try:
            potential = GraceFSPotentialData(
                content,
                checkpoint=checkpoint,
                reference_energy=self._reference_energy(),
                baseline=baseline,
                fitted_with=versions,
            )
        except ValueError as exc:
            return self.exit_codes.ERROR_INVALID_GRACE_POTENTIAL.format(detail=str(exc))
        self.out("potential", potential)
        return None

    def _reference_energy(self) -> dict[str, float]:
        """The E0 per element the plugin wrote into input.yaml (``{}`` for 0): gracemaker subtracted them, and its
        FS export leaves them out. ValueError for anything else."""
        config = yaml.safe_load(self._read(Calc.INPUT_FILENAME) or "{}") or {}
        value = (config.get("data") or {}).get("reference_energy", 0)
        if value == 0 and not isinstance(value, bool):
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"input.yaml data.reference_energy is {value!r}, not the E0 per element the plugin writes")
        return value

    def _metrics(self, train_rows: list, test_rows: list, exit_status: int | None) -> dict:
        """Errors of the model the fit ends with: the epoch of the best test loss when there are test data (the
        checkpoint gracemaker keeps and the job exports), else the last epoch."""
        metrics: dict = {
            "units": {"energy": "meV/atom", "force": "meV/Å per component", "stress": "GPa per component"},
            "exit_status": exit_status,
            "epochs": int(train_rows[-1]["epoch"]) if train_rows else 0,
            "reference": self._reference_spread(),
        }
        test = best_row(test_rows, "total_loss/test")
        epoch = test["epoch"] if test is not None else None
        train = next((row for row in train_rows if row.get("epoch") == epoch), train_rows[-1] if train_rows else None)
        if train is not None:
            metrics["train"] = errors_in_plugin_units(train)
            metrics["initial_loss"] = train_rows[0].get("total_loss/train")
            metrics["final_loss"] = train_rows[-1].get("total_loss/train")
        if test is not None:
            metrics["test"] = errors_in_plugin_units(test)
        return finite_or_string(metrics)

    def _reference_spread(self) -> dict:
        """The spread of the reference data to read every error against: energy-per-atom standard deviation
        (meV/atom), force-component RMS (meV/Å) and stress-component RMS (GPa, when there are stresses)."""
        inputs = self.node.inputs
        spread = {}
        for label in ("train", "test"):
            node = inputs.test_set if label == "test" and "test_set" in inputs else inputs.training_set
            spread[label] = {
                "energy_per_atom_std": 1000.0 * node.base.attributes.get("energy_per_atom_std"),
                "force_component_rms": 1000.0 * node.base.attributes.get("force_component_rms"),
            }
            if node.has_stress:
                stress = node.get_arrays()[STRESS_KEY]
                spread[label]["stress_component_rms"] = float(np.sqrt(np.mean(stress**2))) * EV_PER_A3_TO_GPA
        return spread
