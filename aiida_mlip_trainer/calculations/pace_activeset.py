"""`PaceActivesetCalculation`: the active set of a potential on its data (``pace_activeset``), for gamma."""

from __future__ import annotations

from aiida import orm

from ..data.operations import check_environments
from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from .pace_tool import (
    ACTIVESET_PARAMETERS,
    PaceToolCalculation,
    number_argument,
    tool_options,
    validate_tool_parameters,
)

__all__ = ("PaceActivesetCalculation",)


class PaceActivesetCalculation(PaceToolCalculation):
    """Run ``pace_activeset potential.yaml -d training_set.pckl.gzip``: the MaxVol active set of a potential over
    the atomic environments of the data it was fitted on.

    Pass the ``potential`` and the ``training_set`` it was fitted on. You get ``potential``: a new
    :class:`PacePotentialData` with the same YAML (and ``.yace``, and baseline) plus the active set (``.asi``), whose
    calculator reports the extrapolation grade per atom in ``calc.results['gamma']`` (about 1 inside the training
    domain, larger outside; pacemaker's docs use > 5 as "worth labelling", > 25 as "stop"), and ``summary``.

    ``parameters`` (all optional): ``gamma_tolerance`` (default 1.01), ``batch_size``, ``maxvol_iters`` (300),
    ``maxvol_refinement`` (5), ``memory_limit`` (bytes or ``'2GB'``; half is passed, the tool's limit is soft),
    ``full`` (MaxVol on the full non-linear design matrix, written as ``.asi.nonlinear``; only for potentials with
    ``ndensity`` > 1 for every element, because with one density the evaluators cannot tell a non-linear active set
    from a linear one by its shape and would read it as linear), ``all_atoms`` (use every atom; by default atoms
    whose force error is an outlier, above ``force_error_threshold`` eV/Å or Q3 + 1.5 IQR, are left out, which needs
    labels) and ``force_error_threshold``. Without ``all_atoms`` the ``training_set`` must be labelled and on the
    potential's baseline (the residual set the potential was fitted on); batch mode (``batch_size``) needs
    ``all_atoms``.
    """

    POTENTIAL_FILENAME = "potential.yaml"
    DATA_FILENAME = "training_set.pckl.gzip"
    ACTIVE_SET_FILENAME = "potential.asi"
    NONLINEAR_ACTIVE_SET_FILENAME = "potential.asi.nonlinear"
    PARSER_NAME = "mlip_trainer.pace_activeset"
    STDOUT_FILENAME = "pace_activeset.out"
    STDERR_FILENAME = "pace_activeset.err"
    EXIT_STATUS_FILENAME = "pace_activeset.exit_status"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("potential", valid_type=PacePotentialData, help="The fitted potential.")
        spec.input(
            "training_set",
            valid_type=TrainingSetData,
            help="The structures the potential was fitted on (labels needed unless all_atoms).",
        )
        cls.define_tool_parameters(spec, "pace_activeset", ACTIVESET_PARAMETERS)

        spec.output(
            "potential",
            valid_type=PacePotentialData,
            help="The same potential with its active set (.asi): gamma per atom in its calculator.",
        )
        spec.output("summary", valid_type=orm.Dict, help="Active set shape and gamma_max per element, atoms used.")
        spec.default_output_node = "summary"

        spec.exit_code(
            330,
            "ERROR_ACTIVESET_FAILED",
            invalidates_cache=True,
            message="pace_activeset exited with status {status}: {detail}",
        )
        spec.exit_code(
            331,
            "ERROR_NO_ACTIVE_SET",
            invalidates_cache=True,
            message="pace_activeset finished without writing {filename}. {detail}",
        )
        spec.exit_code(
            332,
            "ERROR_INVALID_ACTIVE_SET",
            invalidates_cache=True,
            message="the active set pace_activeset wrote cannot be used: {detail}",
        )
        cls.define_maxvol_exit_codes(
            spec,
            killed_remedy="Give a memory_limit (with all_atoms) or more memory.",
            data="data",
            environments_remedy="give more structures or a larger batch_size.",
        )
        spec.exit_code(
            411,
            "ERROR_BATCH_NEEDS_ALL_ATOMS",
            invalidates_cache=True,
            message="the memory limit sent pace_activeset into batch mode, which works only over all atoms: set "
            "all_atoms to true, or raise memory_limit.",
        )

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs, with a message that says what to change."""
        parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
        message = validate_tool_parameters(parameters, ACTIVESET_PARAMETERS)
        if message:
            return message
        all_atoms = parameters.get("all_atoms", False)
        if "batch_size" in parameters and not all_atoms:
            return (
                "batch_size (batch mode) works only with all_atoms: pace_activeset filters atoms by force error "
                "only in one shot"
            )
        if "force_error_threshold" in parameters and all_atoms:
            return "force_error_threshold has no effect with all_atoms: give one or the other"
        if "potential" not in inputs or "training_set" not in inputs:
            return None
        potential, training_set = inputs["potential"], inputs["training_set"]
        absent = sorted(set(training_set.elements) - set(potential.elements))
        if absent:
            return f"the training_set contains {absent}, which the potential (elements {potential.elements}) lacks"
        if not all_atoms:
            if not training_set.labelled:
                return (
                    "the training_set has no forces: pace_activeset leaves out atoms by force error, which needs "
                    "labels; pass a labelled set or set all_atoms to true"
                )
            baseline = training_set.base.attributes.get("baseline", None)
            if baseline != potential.baseline:
                return (
                    f"the training_set is on the baseline {baseline} but the potential on {potential.baseline}: pass "
                    "the (residual) set the potential was fitted on, or set all_atoms to true"
                )
        batch_size = parameters.get("batch_size")
        if batch_size is not None and batch_size > training_set.num_structures:
            return f"batch_size {batch_size} is larger than the training_set ({training_set.num_structures} structures)"
        layout = potential.basis_layout
        if parameters.get("full", False):
            single = sorted(element for element, spec in layout.items() if spec["ndensity"] == 1)
            if single:
                return (
                    f"full (non-linear) active sets need ndensity > 1, but {single} have ndensity 1: the evaluators "
                    "would read such an active set as a linear one; leave full out"
                )
        return check_environments(training_set, layout, role="training_set")

    def prepare_for_submission(self, folder):
        parameters = self.inputs.parameters.get_dict() if "parameters" in self.inputs else {}
        training_set = self.inputs.training_set
        frame = training_set.to_dataframe()
        # No `name` column: pace_activeset silently drops rows whose name starts with 'augmented'.
        frame = frame.drop(columns=["name"])
        if not training_set.labelled:
            frame = frame[["ase_atoms"]]
        frame.to_pickle(folder.get_abs_path(self.DATA_FILENAME), compression="gzip", protocol=4)
        with folder.open(self.POTENTIAL_FILENAME, "w", encoding="utf8") as handle:
            handle.write(self.inputs.potential.get_yaml())

        cmdline = [self.POTENTIAL_FILENAME, "-d", self.DATA_FILENAME]
        cmdline += tool_options(parameters, memory_flag="-m")
        if parameters.get("full", False):
            cmdline.append("-f")
        if parameters.get("all_atoms", False):
            cmdline.append("-a")
        if "force_error_threshold" in parameters:
            cmdline += ["-e", number_argument(parameters["force_error_threshold"], "force_error_threshold")]

        return self.tool_calcinfo(cmdline, retrieve=[self.ACTIVE_SET_FILENAME, self.NONLINEAR_ACTIVE_SET_FILENAME])
