"""`PaceTrainBaseWorkChain`: run `PaceTrainCalculation` until it succeeds, fixing the failures that can be fixed."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ..calculations.pace_train import PaceTrainCalculation
from ..data.training_set import TrainingSetData
from .protocols import PROTOCOLS_DIRECTORY, ProtocolMixin, load_codes, set_job

__all__ = ("PaceTrainBaseWorkChain",)

Exit = PaceTrainCalculation.exit_codes
# Failures no restart can fix: the work chain stops with the same exit code (same number, same label).
UNRECOVERABLE = {
    label: Exit[label]
    for label in (
        "ERROR_NO_LOG",
        "ERROR_UNREADABLE_INPUT",
        "ERROR_NO_OUTPUT_POTENTIAL",
        "ERROR_INVALID_OUTPUT_POTENTIAL",
    )
}
# How many jobs in a row may be stopped before their first interim potential (restarted from the same start each
# time) before the work chain says that the time limit is too short.
MAX_RESTARTS_WITHOUT_PROGRESS = 2

# Safer fit settings for a restart after a NaN or diverging loss, applied one level per restart.
SAFER_FIT = (
    # 1: a bounded-memory quasi-Newton optimiser with a line search that rejects non-finite steps, 10x regularisation
    lambda fit: fit.update(optimizer="L-BFGS-B", loss={**fit.get("loss", {}), **_scaled_regularisation(fit, 10.0)}),
    # 2: energies weighted more (a smoother landscape than the force-dominated loss) and 100x regularisation
    lambda fit: fit.update(loss={**fit.get("loss", {}), **_scaled_regularisation(fit, 10.0), "kappa": 0.1}),
)


def _scaled_regularisation(fit: dict, factor: float) -> dict:
    loss = fit.get("loss", {})
    return {key: float(loss.get(key, 1e-8)) * factor for key in ("L1_coeffs", "L2_coeffs")}


class PaceTrainBaseWorkChain(ProtocolMixin, BaseRestartWorkChain):
    """Train with pacemaker and recover by itself.

    - Stopped from outside (walltime, scheduler, kill) after an interim potential: continue from it with the
      iterations left (a restart with progress).
    - Stopped before the first interim potential (the job's time went on starting Python and TensorFlow and building
      neighbour lists): restart from the same start, at most ``max_restarts_without_progress`` times in a row
      (default 2), then stop with ERROR_TIME_LIMIT_TOO_SHORT and say why. With ``max_walltime`` (seconds) the
      work chain may double the job's ``max_wallclock_seconds`` for such a restart, up to that limit, as it does when
      the iterations done per job are too few to finish within ``max_iterations``.
    - NaN or diverging loss: restart with safer fit settings; a crash: one retry with half the batch size (memory
      is the usual cause); input errors: stop at once with the calculation's exit code and message.
    """

    _process_class = PaceTrainCalculation
    _protocol_file = PROTOCOLS_DIRECTORY / "pace_train_base.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PaceTrainCalculation, namespace="pace")
        spec.input(
            "max_restarts_without_progress",
            valid_type=orm.Int,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Int(MAX_RESTARTS_WITHOUT_PROGRESS),
            validator=_non_negative,
            help="How many jobs in a row may be stopped before their first interim potential (each restarted from "
            "the same start) before the work chain stops and says the time limit is too short.",
        )
        spec.input(
            "max_walltime",
            valid_type=orm.Int,
            serializer=orm.to_aiida_type,
            required=False,
            validator=_positive,
            help="Allow the work chain to double pace.metadata.options.max_wallclock_seconds, up to this many "
            "seconds, when a job was too short to make progress (or to finish within max_iterations).",
        )
        spec.expose_outputs(PaceTrainCalculation)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        for label, code in UNRECOVERABLE.items():
            spec.exit_code(code.status, label, message="the pacemaker calculation failed: {message}")
        spec.exit_code(
            610, "ERROR_FIT_UNSTABLE", message="the loss stayed NaN or diverging even with the safest fit settings."
        )
        spec.exit_code(
            611,
            "ERROR_TIME_LIMIT_TOO_SHORT",
            message="the job's time limit is too short for pacemaker to make progress: {count} jobs in a row were "
            "stopped before pacemaker saved its first interim potential (last: {reason}). {advice}",
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode | str,
        training_set: TrainingSetData | None = None,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        **inputs: Any,
    ):
        """A builder with every input filled from ``protocol`` (``fast``, ``moderate`` (default), ``precise``; see
        :meth:`get_available_protocols` and ``workflows/protocols/pace_train_base.yaml``).

        ``code`` is the pacemaker code (or its label); ``training_set`` the labelled structures to fit (None when an
        outer work chain supplies them); ``overrides`` is merged into the protocol key by key (e.g.
        ``{"pace": {"parameters": {"fit": {"maxiter": 50}}}, "max_walltime": 7200}``); ``options`` (e.g.
        ``{"account": "x", "queue_name": "y"}``) are merged last into the job's ``metadata.options``, whose
        ``resources`` default to one process in the form the code's scheduler takes. Other keyword arguments are
        inputs of the work chain (``max_walltime=7200``, ``pace={"test_set": ...}``), set last."""
        code = load_codes({"pacemaker": code})["pacemaker"]
        values = cls.get_protocol_inputs(protocol, overrides)
        set_job(values.setdefault("pace", {}), code, options)
        if training_set is not None:
            values["pace"]["training_set"] = training_set
        return cls.builder_with(values, inputs)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(PaceTrainCalculation, "pace"))
        self.ctx.parameters = self.ctx.inputs.parameters.get_dict()
        self.ctx.maxiter = int(self.ctx.parameters.get("fit", {}).get("maxiter", 100))
        self.ctx.iterations_done = 0
        self.ctx.safer_level = 0
        self.ctx.crashes = 0
        self.ctx.restarts_with_progress = 0
        self.ctx.restarts_without_progress = 0  # in a row: a restart with progress resets it

    def _set_parameters(self, parameters: dict) -> None:
        self.ctx.parameters = parameters
        self.ctx.inputs.parameters = orm.Dict(parameters)

    def _walltime(self) -> int | None:
        return self.ctx.inputs.get("metadata", {}).get("options", {}).get("max_wallclock_seconds")

    def _raise_walltime(self) -> int | None:
        """Double the job's max_wallclock_seconds up to ``max_walltime``, when the user allowed it; return the new
        value, or None when it was not raised."""
        walltime, limit = self._walltime(), self.inputs.get("max_walltime")
        if walltime is None or limit is None or walltime >= limit.value:
            return None
        raised = min(2 * int(walltime), limit.value)
        metadata = dict(self.ctx.inputs.get("metadata", {}))
        metadata["options"] = {**metadata.get("options", {}), "max_wallclock_seconds": raised}
        self.ctx.inputs.metadata = metadata
        return raised

    @process_handler(
        priority=600,
        exit_codes=[UNRECOVERABLE[label] for label in UNRECOVERABLE],
    )
    def handle_unrecoverable(self, node):
        """Nothing a restart could change (no log, unreadable input, no or an unreadable potential): stop at once
        with the calculation's own exit code and its message."""
        self.report(f"{node.process_label}<{node.pk}> failed unrecoverably: {node.exit_message}")
        label = next(label for label, code in UNRECOVERABLE.items() if code.status == node.exit_status)
        return ProcessHandlerReport(True, self.exit_codes[label].format(message=node.exit_message))

    def _without_progress(self, node, reason: str) -> ProcessHandlerReport | None:
        """Count a job that made no progress; past ``max_restarts_without_progress`` in a row, the report that stops
        the work chain with ERROR_TIME_LIMIT_TOO_SHORT and says why, else None (and the walltime raised where the
        user allowed it)."""
        self.ctx.restarts_without_progress += 1
        count, limit = self.ctx.restarts_without_progress, self.inputs.max_restarts_without_progress.value
        if count > limit:
            walltime = self._walltime()
            advice = (
                f"Give the job more time than max_wallclock_seconds={walltime} s"
                if walltime
                else "Give the job more time (max_wallclock_seconds, or the scheduler's time limit)"
            ) + (
                ": pacemaker needs time to start Python and TensorFlow and to build the neighbour lists before its "
                "first iteration"
                + ("" if "max_walltime" in self.inputs else ", or let the work chain raise it with max_walltime")
                + "."
            )
            exit_code = self.exit_codes.ERROR_TIME_LIMIT_TOO_SHORT.format(count=count, reason=reason, advice=advice)
            self.report(exit_code.message)
            return ProcessHandlerReport(True, exit_code)
        raised = self._raise_walltime()
        self.report(
            f"{node.process_label}<{node.pk}> made no progress ({reason}): restart {count} of at most {limit} "
            "without progress" + (f", with max_wallclock_seconds raised to {raised} s" if raised else "")
        )
        return None

    @process_handler(priority=550, exit_codes=[Exit.ERROR_KILLED_BEFORE_INTERIM])
    def handle_killed_before_interim(self, node):
        """Stopped before the first interim potential: nothing to continue from, so run the same job again from
        its start; after ``max_restarts_without_progress`` such restarts in a row, stop and say why
        (ERROR_TIME_LIMIT_TOO_SHORT)."""
        metrics = node.outputs.metrics.get_dict() if "metrics" in node.outputs else {}
        reason = metrics.get("stopped_by") or "stopped from outside"
        stop = self._without_progress(node, f"stopped before its first interim potential: {reason}")
        return stop if stop is not None else ProcessHandlerReport(True)

    @process_handler(priority=500, exit_codes=[Exit.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, node):
        """Continue from the interim potential (pacemaker -p), with only the iterations still to do."""
        done = int(node.outputs.metrics["iterations"])
        reason = node.outputs.metrics.get("stopped_by", "stopped from outside")
        if done == 0:
            stop = self._without_progress(node, f"an interim potential but no iteration: {reason}")
            if stop is not None:
                return stop
        else:
            self.ctx.restarts_with_progress += 1
            self.ctx.restarts_without_progress = 0
        self.ctx.iterations_done += done
        left = max(1, self.ctx.maxiter - self.ctx.iterations_done)
        parameters = copy.deepcopy(self.ctx.parameters)
        parameters.setdefault("fit", {})["maxiter"] = left
        self._set_parameters(parameters)
        self.ctx.inputs.previous_potential = node.outputs.potential
        self.report(
            f"{node.process_label}<{node.pk}> was stopped after {done} iterations ({reason}); "
            f"{self.ctx.iterations_done} of {self.ctx.maxiter} done: continuing from its interim potential "
            f"(restart {self.ctx.restarts_with_progress} with progress)"
        )
        jobs_left = self.inputs.max_iterations.value - self.ctx.iteration
        if done > 0 and done * jobs_left < left:
            needed = math.ceil(left / done)
            raised = self._raise_walltime()
            self.report(
                f"at {done} iterations per job, the {left} iterations left need about {needed} more jobs but at most "
                f"{jobs_left} remain (max_iterations): "
                + (
                    f"max_wallclock_seconds raised to {raised} s"
                    if raised
                    else "give the jobs more time (max_wallclock_seconds), or raise max_iterations"
                )
            )
        return ProcessHandlerReport(True)

    @process_handler(priority=400, exit_codes=[Exit.ERROR_NAN_LOSS, Exit.ERROR_LOSS_DIVERGED])
    def handle_unstable_loss(self, node):
        """Restart from the same start with safer fit settings; give up when none is left."""
        if self.ctx.safer_level >= len(SAFER_FIT):
            self.report(f"{node.process_label}<{node.pk}>: {node.exit_message} No safer settings left.")
            return ProcessHandlerReport(True, self.exit_codes.ERROR_FIT_UNSTABLE)
        parameters = copy.deepcopy(self.ctx.parameters)
        SAFER_FIT[self.ctx.safer_level](parameters.setdefault("fit", {}))
        self.ctx.safer_level += 1
        self._set_parameters(parameters)
        self.report(
            f"{node.process_label}<{node.pk}>: {node.exit_message} Restarting with safer fit settings "
            f"(level {self.ctx.safer_level}): {parameters['fit']}"
        )
        return ProcessHandlerReport(True)

    @process_handler(priority=300, exit_codes=[Exit.ERROR_PACEMAKER_FAILED])
    def handle_crash(self, node):
        """pacemaker died during the fit: retry once with half the batch size (memory is the usual cause)."""
        if self.ctx.crashes >= 1:
            return None  # a second crash is left to BaseRestartWorkChain's unhandled-failure policy
        self.ctx.crashes += 1
        parameters = copy.deepcopy(self.ctx.parameters)
        backend = parameters.setdefault("backend", {})
        backend["batch_size"] = max(1, int(backend.get("batch_size", 100)) // 2)
        self._set_parameters(parameters)
        self.report(
            f"{node.process_label}<{node.pk}> crashed ({node.exit_message}); retrying once with batch_size "
            f"{backend['batch_size']}"
        )
        return ProcessHandlerReport(True)


def _non_negative(value, _):
    if value is not None and value.value < 0:
        return f"must be >= 0, got {value.value}"
    return None


def _positive(value, _):
    if value is not None and value.value <= 0:
        return f"must be a positive number of seconds, got {value.value}"
    return None
