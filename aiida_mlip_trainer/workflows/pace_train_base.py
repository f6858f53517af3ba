"""`PaceTrainBaseWorkChain`: run `PaceTrainCalculation` until it succeeds, fixing the failures that can be fixed."""

from __future__ import annotations

import copy

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from ..calculations.pace_train import PaceTrainCalculation

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


class PaceTrainBaseWorkChain(BaseRestartWorkChain):
    """Train with pacemaker and recover by itself: out of walltime → continue from the last interim potential with
    the iterations left; NaN or diverging loss → restart with safer fit settings; a crash → one retry with half
    the batch size (memory is the usual cause); input errors → stop at once with the calculation's exit code."""

    _process_class = PaceTrainCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(PaceTrainCalculation, namespace="pace")
        spec.expose_outputs(PaceTrainCalculation)
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        for label, code in UNRECOVERABLE.items():
            spec.exit_code(code.status, label, message=f"the pacemaker calculation failed: {code.message}")
        spec.exit_code(
            430, "ERROR_FIT_UNSTABLE", message="the loss stayed NaN or diverging even with the safest fit settings."
        )

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(PaceTrainCalculation, "pace"))
        self.ctx.parameters = self.ctx.inputs.parameters.get_dict()
        self.ctx.maxiter = int(self.ctx.parameters.get("fit", {}).get("maxiter", 100))
        self.ctx.iterations_done = 0
        self.ctx.safer_level = 0
        self.ctx.crashes = 0

    def _set_parameters(self, parameters: dict) -> None:
        self.ctx.parameters = parameters
        self.ctx.inputs.parameters = orm.Dict(parameters)

    @process_handler(
        priority=600,
        exit_codes=[UNRECOVERABLE[label] for label in UNRECOVERABLE],
    )
    def handle_unrecoverable(self, node):
        """Nothing a restart could change (no log, unreadable input, no or an unreadable potential): stop at once
        with the calculation's own exit code."""
        self.report(f"{node.process_label}<{node.pk}> failed unrecoverably: {node.exit_message}")
        label = next(label for label, code in UNRECOVERABLE.items() if code.status == node.exit_status)
        return ProcessHandlerReport(True, self.exit_codes[label])

    @process_handler(priority=500, exit_codes=[Exit.ERROR_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, node):
        """Continue from the interim potential (pacemaker -p), with only the iterations still to do."""
        done = int(node.outputs.metrics["iterations"])
        self.ctx.iterations_done += done
        left = max(1, self.ctx.maxiter - self.ctx.iterations_done)
        parameters = copy.deepcopy(self.ctx.parameters)
        parameters.setdefault("fit", {})["maxiter"] = left
        self._set_parameters(parameters)
        self.ctx.inputs.previous_potential = node.outputs.potential
        self.report(
            f"{node.process_label}<{node.pk}> stopped at the walltime after {done} iterations "
            f"({self.ctx.iterations_done} of {self.ctx.maxiter} done): continuing from its interim potential"
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
