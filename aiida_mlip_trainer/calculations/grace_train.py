"""`GraceTrainCalculation`: fit a GRACE-FS potential, stress included, with the real ``gracemaker`` executable."""

from __future__ import annotations

import math
import pathlib
import shlex

import yaml
from aiida import orm

from ..data.grace_potential import CHECKPOINT_FILES, GraceFSPotentialData
from ..formats.grace_input import DEFAULT_SEED, build_grace_input, validate_grace_parameters
from ..physics.reference_energy import least_squares_reference_energies
from .pace_tool import (
    PaceToolCalculation,
    check_previous_potential,
    check_training_sets,
    number_argument,
    watchdog_lines,
)

__all__ = ("GraceTrainCalculation",)


class GraceTrainCalculation(PaceToolCalculation):
    """Run ``gracemaker input.yaml [-p previous_model.yaml -cn previous_checkpoint]`` on a training set, then export
    the fitted model to an FS YAML file (``grace_utils ... export -sf``) in the same job.

    The datasets are pacemaker's pickles (the same columns; stress with ASE's sign, eV/Å³). The job script copies
    the model gracemaker ends with (its best test checkpoint, else its last regular one) to ``model.yaml`` and
    ``checkpoint.*`` and exports exactly that checkpoint, so that the potential node holds the FS YAML and the
    checkpoint it came from: a later fit fine-tunes from it (``previous_potential``). At the soft walltime a watchdog
    stops gracemaker (SIGTERM); the last regular checkpoint is then exported all the same, and returned with
    ERROR_OUT_OF_WALLTIME, for a continued fit.
    """

    INPUT_FILENAME = "input.yaml"
    TRAIN_FILENAME = "training_set.pckl.gzip"
    TEST_FILENAME = "test_set.pckl.gzip"
    PREVIOUS_MODEL = "previous_model.yaml"
    PREVIOUS_CHECKPOINT = "previous_checkpoint"
    OUTPUT_POTENTIAL = "FS_model.yaml"
    MODEL_FILENAME = "model.yaml"
    LOG_FILENAME = "log.txt"
    TRAIN_METRICS = "train_metrics.yaml"
    TEST_METRICS = "test_metrics.yaml"
    EXPORT_STDERR = "grace_utils.err"
    EXPORT_EXIT_STATUS = "grace_utils.exit_status"
    PARSER_NAME = "mlip_trainer.grace_train"
    STDOUT_FILENAME = "gracemaker.out"
    STDERR_FILENAME = "gracemaker.err"
    EXIT_STATUS_FILENAME = "gracemaker.exit_status"
    SOFT_WALLTIME_FILENAME = "mlip_trainer.soft_walltime"
    # Seconds kept after the soft walltime for the FS export (about 20 s of TensorFlow start and 17 s of export).
    EXPORT_ALLOWANCE = 90

    @classmethod
    def define(cls, spec):
        super().define(spec)
        cls.define_training_sets(spec)
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help="Sections of gracemaker's input.yaml: cutoff, seed, potential (FS preset kwargs), fit (loss with "
            "energy, forces and stress weights, optimizer, maxiter, ...), data (test_size, reference_energy).",
        )
        spec.input(
            "previous_potential",
            valid_type=GraceFSPotentialData,
            required=False,
            help="Start from this GRACE-FS potential's checkpoint (gracemaker -p -cn): continue or fine-tune.",
        )

        spec.output("potential", valid_type=GraceFSPotentialData, help="The fitted GRACE-FS potential.")
        spec.output("metrics", valid_type=orm.Dict, help="Train/test errors (meV/atom, meV/Å, GPa), epochs.")
        spec.default_output_node = "metrics"

        spec.exit_code(
            360,
            "ERROR_GRACEMAKER_NO_LOG",
            invalidates_cache=True,
            message="gracemaker wrote no log.txt: it did not start. {detail}",
        )
        spec.exit_code(
            361,
            "ERROR_GRACEMAKER_UNREADABLE_INPUT",
            invalidates_cache=True,
            message="gracemaker stopped before fitting: {detail}",
        )
        spec.exit_code(
            362,
            "ERROR_GRACEMAKER_FAILED",
            invalidates_cache=True,
            message="gracemaker exited with status {status}: {detail}",
        )
        spec.exit_code(
            363,
            "ERROR_GRACE_EXPORT_FAILED",
            invalidates_cache=True,
            message="no FS_model.yaml: the export of the fitted model (grace_utils export -sf) failed: {detail}",
        )
        spec.exit_code(
            364,
            "ERROR_INVALID_GRACE_POTENTIAL",
            invalidates_cache=True,
            message="the exported GRACE-FS potential cannot be read: {detail}",
        )
        spec.exit_code(
            420,
            "ERROR_OUT_OF_WALLTIME",
            invalidates_cache=True,
            message="gracemaker was stopped before it finished ({reason}); the last checkpoint (epoch {iteration}) "
            "is returned as `potential`.",
        )
        spec.exit_code(
            421,
            "ERROR_KILLED_BEFORE_INTERIM",
            invalidates_cache=True,
            message="gracemaker was stopped ({reason}) before it saved its first checkpoint: there is nothing to "
            "continue from.",
        )
        spec.exit_code(
            430,
            "ERROR_NAN_LOSS",
            invalidates_cache=True,
            message="the loss became NaN or inf at epoch {iteration}.",
        )

    @classmethod
    def soft_walltime(cls, max_wallclock_seconds: int | None) -> int | None:
        """Seconds after which the watchdog stops gracemaker: the walltime less 10 % (at least 10 s, at most
        5 minutes) for retrieval and :attr:`EXPORT_ALLOWANCE` for the FS export; None without a walltime."""
        if not max_wallclock_seconds:
            return None
        margin = min(300, max(10, int(0.1 * max_wallclock_seconds))) + cls.EXPORT_ALLOWANCE
        return max(1, int(max_wallclock_seconds) - margin)

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs, with a message that says what to change."""
        if "training_set" not in inputs:
            return None
        training_set = inputs["training_set"]
        baseline = training_set.base.attributes.get("baseline", None)
        test_set = inputs.get("test_set")
        message = check_training_sets(training_set, test_set, "gracemaker")
        if message:
            return message
        if test_set is not None and test_set.has_stress != training_set.has_stress:
            return "the test_set and the training_set must both have stress labels, or both none"
        parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
        message = validate_grace_parameters(parameters, has_stress=bool(training_set.has_stress))
        if message:
            return message
        previous = inputs.get("previous_potential")
        if previous is not None:
            message = check_previous_potential(previous, training_set.elements, baseline)
            if message:
                return message
            if not previous.has_checkpoint:
                return "previous_potential has no gracemaker checkpoint (only its FS YAML): it cannot be fine-tuned"
        return None

    def _grace_utils(self) -> str:
        """``grace_utils`` beside the code's ``gracemaker`` (the same installation), quoted; else from PATH."""
        code = self.inputs.code
        if isinstance(code, orm.InstalledCode):
            return shlex.quote(str(pathlib.PurePosixPath(str(code.get_executable())).parent / "grace_utils"))
        return "grace_utils"

    def prepare_for_submission(self, folder):
        training_set = self.inputs.training_set
        test_set = self.inputs.get("test_set")
        training_set.write_pacemaker_pickle(folder.get_abs_path(self.TRAIN_FILENAME))
        if test_set is not None:
            test_set.write_pacemaker_pickle(folder.get_abs_path(self.TEST_FILENAME))
        parameters = self.inputs.parameters.get_dict() if "parameters" in self.inputs else {}
        previous = self.inputs.get("previous_potential")
        # E0 per element: a fine-tuned model keeps its predecessor's; else least squares on the training set.
        if previous is not None:
            reference = previous.reference_energy
        else:
            reference = least_squares_reference_energies(training_set.get_arrays())
        config = build_grace_input(
            parameters,
            elements=training_set.elements,
            train_filename=self.TRAIN_FILENAME,
            test_filename=self.TEST_FILENAME if test_set is not None else None,
            has_stress=bool(training_set.has_stress),
            reference_energy=reference,
        )
        fit = config["fit"]
        has_test = test_set is not None or "test_size" in config["data"]
        if not has_test:
            # Without test data the model gracemaker ends with is its last epoch: make it a regular checkpoint.
            fit["checkpoint_freq"] = math.gcd(int(fit["maxiter"]), int(fit["checkpoint_freq"]))
        cmdline = [self.INPUT_FILENAME]
        if previous is not None:
            files = previous.checkpoint_files()
            with folder.open(self.PREVIOUS_MODEL, "wb") as handle:
                handle.write(files.pop("model.yaml"))
            for name, content in files.items():
                with folder.open(name.replace("checkpoint", self.PREVIOUS_CHECKPOINT, 1), "wb") as handle:
                    handle.write(content)
            cmdline += ["-p", self.PREVIOUS_MODEL, "-cn", self.PREVIOUS_CHECKPOINT]
            fit.setdefault("reset_epoch_and_step", True)
            fit.setdefault("reset_optimizer", True)
        with folder.open(self.INPUT_FILENAME, "w", encoding="utf8") as handle:
            yaml.safe_dump(config, handle, sort_keys=False)

        # Only plugin-made text below: the seed is a checked integer, every file name a constant of this class.
        seed_dir = f"seed/{number_argument(int(config.get('seed', DEFAULT_SEED)), 'seed')}"
        prepend, append = watchdog_lines(
            self.soft_walltime(self.node.get_option("max_wallclock_seconds")),
            self.INPUT_FILENAME,
            self.SOFT_WALLTIME_FILENAME,
        )
        best = f"{seed_dir}/checkpoints/checkpoint.best_test_loss"
        last = f"{seed_dir}/checkpoints/checkpoint"
        append += [
            "# The model gracemaker ends with (its best test checkpoint when it finished, else its last regular one),",
            "# copied beside the job and exported to an FS YAML file for python-ace and LAMMPS.",
            f"MLIP_TRAINER_CHECKPOINT={last}",
            f'if [ "$(cat {self.EXIT_STATUS_FILENAME})" = 0 ] && [ -f {best}.index ]; then '
            f"MLIP_TRAINER_CHECKPOINT={best}; fi",
            f"cp {seed_dir}/{self.LOG_FILENAME} {seed_dir}/{self.TRAIN_METRICS} {seed_dir}/{self.TEST_METRICS} "
            ". 2>/dev/null",
            'if [ -f "$MLIP_TRAINER_CHECKPOINT.index" ]; then',
            f"  cp {seed_dir}/{self.MODEL_FILENAME} {self.MODEL_FILENAME}",
            '  cp "$MLIP_TRAINER_CHECKPOINT.index" checkpoint.index',
            '  cp "$MLIP_TRAINER_CHECKPOINT.data-00000-of-00001" checkpoint.data-00000-of-00001',
            f"  {self._grace_utils()} -p {self.MODEL_FILENAME} -c checkpoint export -n {self.OUTPUT_POTENTIAL} -sf "
            f"> grace_utils.out 2> {self.EXPORT_STDERR}",
            f"  echo $? > {self.EXPORT_EXIT_STATUS}",
            "fi",
        ]
        retrieve = [
            self.INPUT_FILENAME,
            self.LOG_FILENAME,
            self.TRAIN_METRICS,
            self.TEST_METRICS,
            self.SOFT_WALLTIME_FILENAME,
            self.OUTPUT_POTENTIAL,
            self.MODEL_FILENAME,
            *CHECKPOINT_FILES,
            self.EXPORT_STDERR,
            self.EXPORT_EXIT_STATUS,
        ]
        return self.tool_calcinfo(cmdline, retrieve=retrieve, prepend=prepend, append=append)
