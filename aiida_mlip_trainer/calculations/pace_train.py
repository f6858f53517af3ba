"""`PaceTrainCalculation`: fit an ACE potential with the real ``pacemaker`` executable."""

from __future__ import annotations

import yaml
from aiida import orm

from ..data.pace_potential import PacePotentialData
from ..formats.pacemaker_input import build_input_yaml, validate_parameters
from .pace_tool import PaceToolCalculation, check_previous_potential, check_training_sets, watchdog_lines

__all__ = ("PaceTrainCalculation",)


class PaceTrainCalculation(PaceToolCalculation):
    """Run ``pacemaker input.yaml [-p previous_potential.yaml]`` on a training set.

    The datasets are written as pacemaker's pandas ``pckl.gzip`` only here, in the calculation's input folder.
    With ``previous_potential`` the fit starts from that potential's coefficients (pacemaker's ``-p``): use it to
    continue an interrupted fit or to fine-tune on new data; the basis shape and elements must match.
    """

    INPUT_FILENAME = "input.yaml"
    TRAIN_FILENAME = "training_set.pckl.gzip"
    TEST_FILENAME = "test_set.pckl.gzip"
    PREVIOUS_FILENAME = "previous_potential.yaml"
    OUTPUT_POTENTIAL = "output_potential.yaml"
    LOG_FILENAME = "log.txt"
    PARSER_NAME = "mlip_trainer.pace_train"
    STDOUT_FILENAME = "pacemaker.out"
    STDERR_FILENAME = "pacemaker.err"
    EXIT_STATUS_FILENAME = "pacemaker.exit_status"
    # Written by the watchdog when it stops pacemaker at the soft walltime (so a stop of ours is told from others).
    SOFT_WALLTIME_FILENAME = "mlip_trainer.soft_walltime"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        cls.define_training_sets(spec)
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="Sections of pacemaker's input.yaml: potential, fit, backend, data options, cutoff, seed.",
        )
        spec.input(
            "previous_potential",
            valid_type=PacePotentialData,
            required=False,
            help="Start from this potential's coefficients (pacemaker -p): continue or fine-tune.",
        )

        spec.output("potential", valid_type=PacePotentialData, help="The fitted potential (interim one on walltime).")
        spec.output("metrics", valid_type=orm.Dict, help="Train/test errors (meV/atom, meV/Å), iterations, loss.")
        spec.output(
            "learning_curve",
            valid_type=orm.ArrayData,
            required=False,
            help="Loss and RMSE (meV/atom, meV/Å) per iteration, train and test.",
        )
        spec.default_output_node = "metrics"

        spec.exit_code(
            310,
            "ERROR_NO_LOG",
            invalidates_cache=True,
            message="pacemaker wrote no log.txt: it did not start. {detail}",
        )
        spec.exit_code(
            311,
            "ERROR_UNREADABLE_INPUT",
            invalidates_cache=True,
            message="pacemaker could not read its input: {detail}",
        )
        spec.exit_code(
            312,
            "ERROR_PACEMAKER_FAILED",
            invalidates_cache=True,
            message="pacemaker exited with status {status}: {detail}",
        )
        spec.exit_code(
            313,
            "ERROR_NO_OUTPUT_POTENTIAL",
            invalidates_cache=True,
            message="pacemaker finished without writing output_potential.yaml nor any interim potential.",
        )
        spec.exit_code(
            314,
            "ERROR_INVALID_OUTPUT_POTENTIAL",
            invalidates_cache=True,
            message="the potential pacemaker wrote cannot be read: {detail}",
        )
        spec.exit_code(
            420,
            "ERROR_OUT_OF_WALLTIME",
            invalidates_cache=True,
            message="pacemaker was stopped before it finished ({reason}); the last interim potential "
            "({filename}, iteration {iteration}) is returned as `potential`.",
        )
        spec.exit_code(
            421,
            "ERROR_KILLED_BEFORE_INTERIM",
            invalidates_cache=True,
            message="pacemaker was stopped ({reason}) before it saved its first interim potential: there is nothing "
            "to continue from.",
        )
        spec.exit_code(
            430,
            "ERROR_NAN_LOSS",
            invalidates_cache=True,
            message="the loss became NaN or inf at iteration {iteration}.",
        )
        spec.exit_code(
            431,
            "ERROR_LOSS_DIVERGED",
            invalidates_cache=True,
            message="the loss diverged: from {initial:.4g} at the start to {final:.4g} at the end.",
        )

    @staticmethod
    def soft_walltime(max_wallclock_seconds: int | None) -> int | None:
        """Seconds after which the watchdog stops pacemaker: the walltime less 10 % (at least 10 s, at most
        5 minutes) for retrieval; None without a walltime."""
        if not max_wallclock_seconds:
            return None
        margin = min(300, max(10, int(0.1 * max_wallclock_seconds)))
        return max(1, int(max_wallclock_seconds) - margin)

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs, with a message that says what to change."""
        if "training_set" not in inputs or "parameters" not in inputs:
            return None  # the missing required port is reported by the port itself
        training_set = inputs["training_set"]
        baseline = training_set.base.attributes.get("baseline", None)
        test_set = inputs.get("test_set")
        message = check_training_sets(training_set, test_set, "pacemaker")
        if message:
            return message
        parameters = inputs["parameters"].get_dict()
        message = validate_parameters(
            parameters, elements=training_set.elements, has_test_set=test_set is not None, baseline=baseline
        )
        if message:
            return message
        previous = inputs.get("previous_potential")
        if previous is not None:
            elements = parameters["potential"].get("elements", training_set.elements)
            return check_previous_potential(previous, elements, baseline)
        return None

    def prepare_for_submission(self, folder):
        training_set = self.inputs.training_set
        test_set = self.inputs.get("test_set")
        training_set.write_pacemaker_pickle(folder.get_abs_path(self.TRAIN_FILENAME))
        if test_set is not None:
            test_set.write_pacemaker_pickle(folder.get_abs_path(self.TEST_FILENAME))

        previous = self.inputs.get("previous_potential")
        config = build_input_yaml(
            self.inputs.parameters.get_dict(),
            elements=training_set.elements,
            train_filename=self.TRAIN_FILENAME,
            test_filename=self.TEST_FILENAME if test_set is not None else None,
            baseline=training_set.base.attributes.get("baseline", None),
            previous_reference=None if previous is None else previous.reference_energy,
        )
        with folder.open(self.INPUT_FILENAME, "w", encoding="utf8") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)

        cmdline = [self.INPUT_FILENAME]
        if "previous_potential" in self.inputs:
            with folder.open(self.PREVIOUS_FILENAME, "w", encoding="utf8") as handle:
                handle.write(self.inputs.previous_potential.get_yaml())
            cmdline += ["-p", self.PREVIOUS_FILENAME]

        prepend, append = watchdog_lines(
            self.soft_walltime(self.node.get_option("max_wallclock_seconds")),
            self.INPUT_FILENAME,
            self.SOFT_WALLTIME_FILENAME,
        )
        retrieve = [
            self.INPUT_FILENAME,
            self.LOG_FILENAME,
            self.SOFT_WALLTIME_FILENAME,
            self.OUTPUT_POTENTIAL,
            "interim_potential_*.yaml",
            "metrics.txt",
            "test_metrics.txt",
            "cycle_metrics.txt",
            "test_cycle_metrics.txt",
        ]
        return self.tool_calcinfo(cmdline, retrieve=retrieve, prepend=prepend, append=append)
