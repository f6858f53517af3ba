"""`TrainingWorkChain`: labelled structures in, a validated, deployable ACE potential out, every step in the graph.

It composes the plugin's smaller processes the aiida-quantumespresso way: ``SelectionWorkChain`` (namespace
``selection``), ``PaceTrainBaseWorkChain`` (``training``), ``PaceActivesetCalculation`` (``activeset``) and the
``pace_yaml2yace`` ``ShellJob`` (``yace``), each exposed, so that every job's code, parameters and
``metadata.options`` (queue, account, walltime) can be set from the top. ``get_builder_from_protocol`` fills them
all from a protocol (``fast``, ``moderate``, ``precise``).

``trainer`` picks the fit: ``pacemaker`` (ACE, the default) or ``gracemaker`` (GRACE-FS, energies, forces and
stresses in the loss: ``GraceTrainCalculation``, namespace ``grace``). A GRACE-FS potential goes through the same
active set, delta learning, short-range check and validation; it has no ``.yace`` (LAMMPS reads its FS YAML with
``pair_style grace/fs``) and no ACE core repulsion to size (``fit_core_repulsion`` edits an ACE basis).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida_shell import ShellJob
from aiida_shell.launch import prepare_shell_job_inputs

from ..calculations.grace_train import GraceTrainCalculation
from ..calculations.job_options import guard_environment_variables
from ..calculations.pace_activeset import PaceActivesetCalculation
from ..calculations.untrusted import refuses_altered_nodes
from ..data.grace_potential import GraceFSPotentialData
from ..data.operations import check_environments
from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from ..formats.basis import unfitted_basis_layout
from ..formats.grace_input import DEFAULT_FIT, validate_grace_parameters
from ..formats.pacemaker_input import validate_parameters
from ..physics.baselines import missing_pairs
from .functions.baseline import check_short_range, derive_baseline, subtract_baseline
from .functions.potential import (
    assemble_potential,
    fit_core_repulsion,
    not_learned_message,
    potential_file,
    validate_potential,
)
from .functions.training_set import import_training_set, split_training_set
from .pace_train_base import PaceTrainBaseWorkChain
from .properties import PropertyWorkChain
from .protocols import (
    PROTOCOLS_DIRECTORY,
    ProtocolMixin,
    builder_inputs,
    load_codes,
    set_job,
)
from .selection import SelectionWorkChain

__all__ = ("TRAINERS", "TrainingWorkChain", "validate_inputs")

LOGGER = logging.getLogger("aiida.mlip_trainer.training")

# What a potential that is not repulsive below its training data does to the work chain:
# ERROR_SHORT_RANGE_NOT_REPULSIVE (all outputs attached), or a warning in the report only.
SHORT_RANGE_CHECKS = ("error", "warning")
# The fits TrainingWorkChain runs (input `trainer`): pacemaker (ACE, PaceTrainBaseWorkChain, namespace `training`)
# and gracemaker (GRACE-FS with stress in the loss, GraceTrainCalculation, namespace `grace`).
TRAINERS = ("pacemaker", "gracemaker")
# A gracemaker fit stopped at its walltime (ERROR_OUT_OF_WALLTIME, its last checkpoint returned) is continued from
# that checkpoint for the epochs left, at most this many times in a row.
GRACE_CONTINUATIONS = 3


def _optional(help_text: str) -> dict:
    """The options of an exposed namespace that may be left out (that trainer's, or no selection)."""
    return {"required": False, "populate_defaults": False, "help": help_text}


def validate_trainer(trainer: orm.Str | None, _=None) -> str | None:
    """The ``trainer`` port's own check: one of :data:`TRAINERS`."""
    if trainer is not None and trainer.value not in TRAINERS:
        return f"trainer must be one of {list(TRAINERS)}, got {trainer.value!r}"
    return None


def _validate_grace(inputs: Mapping[str, Any], training_set, baseline) -> str | None:  # noqa: PLR0911
    """The checks of a gracemaker fit (trainer ``gracemaker``) before any job."""
    for namespace in ("training", "yace"):
        if inputs.get(namespace):
            return f"trainer gracemaker fits in the `grace` namespace: leave `{namespace}` (pacemaker's) out"
    if inputs.get("selection"):
        return (
            "selection with trainer gracemaker is not supported (D-optimal selection uses an ACE basis): leave "
            "`selection` out, or select with pacemaker's basis first (launch.select_structures)"
        )
    grace = inputs.get("grace") or {}
    if "code" not in grace:
        return "give the code of grace.code (gracemaker)"
    if "code" not in inputs["activeset"]:
        return "give the code of activeset.code"
    parameters = grace["parameters"].get_dict() if "parameters" in grace else {}
    has_stress = bool(training_set.has_stress) if training_set is not None else True
    message = validate_grace_parameters(parameters, has_stress=has_stress)
    if message:
        return f"grace parameters: {message}"
    previous = inputs.get("previous_potential")
    if previous is not None and not (isinstance(previous, GraceFSPotentialData) and previous.has_checkpoint):
        return "trainer gracemaker fine-tunes a GRACE-FS potential with its checkpoint: previous_potential is not one"
    return None


def validate_inputs(inputs: Mapping[str, Any], ctx=None) -> str | None:  # noqa: PLR0911,PLR0912 - one message per mistake
    """Refuse bad input before any job runs, with a message that says what to change; None when it is fine.

    ``inputs`` are the inputs of a TrainingWorkChain; ``ctx`` is the port namespace they fill (None: all of this
    work chain's ports). A work chain that exposes this one without its data ports (``training_set``,
    ``structures_file``), as ActiveLearningWorkChain does, gets here the checks that need no data; it calls this
    function again with its own data for the rest."""
    from ..physics.baselines import BaselineError, validate_baseline

    with_data = ctx is None or "training_set" in ctx
    training_set = inputs.get("training_set")
    if with_data:
        if ("training_set" in inputs) == ("structures_file" in inputs):
            return (
                "give exactly one of `training_set` (a TrainingSetData) and `structures_file` (an extxyz/ASE db file)"
            )
        structures_file = inputs.get("structures_file")
        if structures_file is not None and not structures_file.get_content(mode="rb").strip():
            return "the structures_file is empty: give labelled structures"
        if training_set is not None:
            if not training_set.labelled:
                return "the training_set has no labels (energies and forces): label the structures first"
            if training_set.base.attributes.get("baseline", None) is not None:
                return "give the original labels: the work chain subtracts `physics_baseline` itself"
    elements = training_set.elements if training_set is not None else None
    trainer = inputs["trainer"].value if "trainer" in inputs else "pacemaker"
    test_set = inputs.get("test_set")
    if test_set is not None:
        if not test_set.labelled:
            return "the test_set has no labels (energies and forces)"
        if elements is not None and set(test_set.elements) - set(elements):
            return (
                f"the test_set contains {sorted(set(test_set.elements) - set(elements))}, which the training "
                f"data (elements {elements}) lack: the potential cannot predict them"
            )
    if with_data and test_set is None:
        fraction = inputs["test_fraction"].value
        if not 0 < fraction < 1:
            return f"test_fraction must be in (0, 1), got {fraction}"
        if training_set is not None and training_set.num_structures < 2:
            return "one structure cannot be split into training and test structures: give more, or a test_set"

    baseline = None
    if "physics_baseline" in inputs:
        try:
            baseline = validate_baseline(inputs["physics_baseline"].get_dict())
        except BaselineError as error:
            return f"physics_baseline: {error}"
    previous = inputs.get("previous_potential")
    if trainer == "gracemaker":
        message = _validate_grace(inputs, training_set, baseline)
        if message:
            return message
    elif "grace" in inputs and inputs["grace"]:
        return "the `grace` namespace is gracemaker's: set trainer='gracemaker', or leave it out"
    elif previous is not None and isinstance(previous, GraceFSPotentialData):
        return "previous_potential is a GRACE-FS potential: fine-tune it with trainer='gracemaker'"
    elif "pace" not in (inputs.get("training") or {}):
        return "give the fit: training.pace (code and parameters), or trainer='gracemaker' with `grace`"
    else:
        message = validate_parameters(
            inputs["training"]["pace"]["parameters"].get_dict(), elements=elements, baseline=baseline
        )
        if message:
            return f"training parameters: {message}"

    if previous is not None and baseline is not None and missing_pairs(baseline, previous.elements):
        return (
            "fine-tuning keeps the baseline: give physics_baseline=previous_potential.baseline, not windows to derive"
        )
    if previous is not None:
        if elements is not None and sorted(elements) != sorted(previous.elements):
            return (
                f"the training data have the elements {sorted(elements)} but the previous_potential has "
                f"{previous.elements}: fine-tuning keeps the basis, so the elements must be the same"
            )
        if previous.baseline != baseline:
            return (
                f"the previous_potential was fitted on the baseline {previous.baseline}, but physics_baseline is "
                f"{baseline}: fine-tuning must keep the baseline"
            )

    missing = [
        where
        for where, namespace in (
            ("training.pace.code", inputs.get("training", {}).get("pace", {})),
            ("activeset.code", inputs["activeset"]),
            ("yace.code", inputs.get("yace", {})),
        )
        if trainer == "pacemaker" and "code" not in namespace
    ]
    if missing:
        return f"give the code of {', '.join(missing)}"
    selection = inputs.get("selection") or {}
    if selection:
        if "max_structures" not in selection and "max_atoms" not in selection:
            return "selection needs a budget: selection.max_structures and/or selection.max_atoms"
        if "code" not in selection.get("pace_select", {}):
            return "selection needs the pace_select code: selection.pace_select.code"
        for key in ("max_structures", "max_atoms", "chunk_size"):
            if key in selection and selection[key].value <= 0:
                return f"{key} must be a positive integer, got {selection[key].value}"

    if training_set is not None and trainer == "pacemaker":
        # MaxVol (selection and the active set) needs one atomic environment per basis function and element
        parameters = inputs["training"]["pace"]["parameters"].get_dict()
        try:
            layout = previous.basis_layout if previous is not None else unfitted_basis_layout(parameters, elements)
        except ValueError as error:
            return f"training parameters: {error}"
        too_few = check_environments(training_set, layout, role="training data")
        if too_few:
            return too_few
    short_range_check = inputs.get("short_range_check")  # unset while a builder is filled: defaults come at launch
    if short_range_check is not None and short_range_check.value not in SHORT_RANGE_CHECKS:
        return f"short_range_check must be one of {list(SHORT_RANGE_CHECKS)}, got {short_range_check.value!r}"
    return None


class TrainingWorkChain(ProtocolMixin, WorkChain):
    """Train an ACE potential from labelled structures: import → split off a test set → subtract the physical
    baseline → D-optimal selection (``SelectionWorkChain``) → training with restarts (``PaceTrainBaseWorkChain``) →
    on a ZBL baseline, the light pairs' core repulsion sized to the fit (``fit_core_repulsion``) → ``.yace``
    (``pace_yaml2yace``) and active set (``pace_activeset``) → validation with the baseline added back.

    Start from :meth:`get_builder_from_protocol`, which fills every input from a protocol. With
    ``previous_potential`` the fit starts from its coefficients (fine-tuning), selection counts its active set as
    already covered, and the graph links the new potential to the previous one.
    """

    _protocol_file = PROTOCOLS_DIRECTORY / "training.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("training_set", valid_type=TrainingSetData, required=False, help="Labelled structures.")
        spec.input(
            "structures_file",
            valid_type=orm.SinglefileData,
            required=False,
            help="Labelled structures in a file ASE reads (extxyz, ASE db): imported by a calcfunction.",
        )
        spec.input("test_set", valid_type=TrainingSetData, required=False, help="Held-out labelled structures.")
        spec.input(
            "test_fraction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.1),
            serializer=orm.to_aiida_type,
            help="Without a test_set: the fraction of the data held out, at random (seeded), in (0, 1).",
        )
        spec.input("seed", valid_type=orm.Int, default=lambda: orm.Int(42), serializer=orm.to_aiida_type)
        spec.input(
            "physics_baseline",
            valid_type=orm.Dict,
            required=False,
            serializer=orm.to_aiida_type,
            help='Delta learning: e.g. {"type": "zbl"} (a window per element pair, derived from the training data), '
            '{"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}} or per pair with "ALL" as the default.',
        )
        spec.input(
            "short_range_check",
            valid_type=orm.Str,
            default=lambda: orm.Str("error"),
            serializer=orm.to_aiida_type,
            help="A potential not repulsive below its training data (dimer and fcc scans): 'error' "
            "(ERROR_SHORT_RANGE_NOT_REPULSIVE, every output still attached) or 'warning' (reported, exit 0).",
        )
        spec.input(
            "require_learned",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(False),
            serializer=orm.to_aiida_type,
            help="A potential whose held-out errors are at least half the spread of the data has not learned: False "
            "(default) reports it and flags it in `metrics` (exit 0), True ends with ERROR_NOT_LEARNED, every "
            "output still attached.",
        )
        spec.input(
            "trainer",
            valid_type=orm.Str,
            default=lambda: orm.Str("pacemaker"),
            serializer=orm.to_aiida_type,
            validator=validate_trainer,
            help="The fit: 'pacemaker' (ACE; namespaces `training` and `yace`) or 'gracemaker' (GRACE-FS with "
            "stress in the loss; namespace `grace`).",
        )
        spec.input(
            "previous_potential",
            valid_type=PacePotentialData,
            required=False,
            help="Fine-tune from it (with gracemaker: a GRACE-FS potential with its checkpoint).",
        )
        spec.expose_inputs(
            SelectionWorkChain,
            namespace="selection",
            exclude=("pool", "potential", "parameters", "covered"),
            namespace_options=_optional("D-optimal selection of the training structures (left out: no selection)."),
        )
        spec.expose_inputs(
            PaceTrainBaseWorkChain,
            namespace="training",
            exclude=("pace.training_set", "pace.test_set", "pace.previous_potential"),
            namespace_options=_optional("trainer pacemaker: the fit (code, parameters, options, restarts)."),
        )
        spec.expose_inputs(
            GraceTrainCalculation,
            namespace="grace",
            exclude=("training_set", "test_set", "previous_potential"),
            namespace_options=_optional("trainer gracemaker: the GRACE-FS fit (code, parameters, options)."),
        )
        spec.expose_inputs(
            PaceActivesetCalculation,
            namespace="activeset",
            exclude=("potential", "training_set"),
            namespace_options={"help": "The active set of the final potential (pace_activeset)."},
        )
        spec.expose_inputs(
            ShellJob,
            namespace="yace",
            include=("code", "metadata"),
            namespace_options=_optional("trainer pacemaker: the LAMMPS .yace conversion (pace_yaml2yace, a ShellJob)."),
        )
        guard_environment_variables(spec.inputs["yace"])  # aiida-shell's ShellJob does not check the names
        spec.expose_inputs(
            PropertyWorkChain,
            namespace="properties",
            exclude=("job.potential",),
            namespace_options=_optional(
                "Materials properties of the final potential (PropertyWorkChain: job.code, job.structure, "
                "job.parameters; labeling for the oracle's reference). Left out: none computed."
            ),
        )
        spec.inputs.validator = refuses_altered_nodes(validate_inputs)

        spec.outline(
            cls.setup,
            if_(cls.has_structures_file)(cls.import_structures),
            cls.prepare_sets,
            if_(cls.should_select)(cls.run_selection, cls.inspect_selection),
            cls.check_training_set,
            while_(cls.should_fit)(cls.run_training, cls.inspect_training),
            if_(cls.has_zbl_baseline)(cls.size_core_repulsion),
            cls.run_finalisation,
            cls.inspect_finalisation,
            cls.validate,
            cls.inspect_learning,
            if_(cls.wants_properties)(cls.run_properties, cls.inspect_properties),
        )
        spec.output("potential", valid_type=PacePotentialData, help="The potential: .yaml, .yace, .asi, baseline.")
        spec.output(
            "metrics",
            valid_type=orm.Dict,
            help="Test errors with the baseline added back (E, F, stress); `learned`: False when they are at least "
            "half the spread of the data.",
        )
        spec.output("training_metrics", valid_type=orm.Dict, help="pacemaker's own train/test metrics.")
        spec.output(
            "parameters",
            valid_type=orm.Dict,
            required=False,
            help="The exact settings of the fit (pacemaker's; gracemaker's when given).",
        )
        spec.output("training_set", valid_type=TrainingSetData, help="What was fitted: selected, residual.")
        spec.output("test_set", valid_type=TrainingSetData, help="The held-out structures, original labels.")
        spec.output("parity_plot", valid_type=orm.SinglefileData, help="Parity plot of the validation (PNG).")
        spec.output("selection_summary", valid_type=orm.Dict, required=False)
        spec.output(
            "core_repulsion",
            valid_type=orm.Dict,
            required=False,
            help="On a ZBL baseline: per pair the core repulsion's prefactor and switching width before and after "
            "sizing them to the fitted ACE part (rule core_over_ace), the shortest training distance, what ACE gives "
            "back below it and the onset dip left.",
        )
        spec.output("short_range", valid_type=orm.Dict, help="Dimer/fcc scans below each pair's shortest distance.")
        spec.output("short_range_plot", valid_type=orm.SinglefileData, help="The short-range curves (PNG).")
        spec.output(
            "baseline",
            valid_type=orm.Dict,
            required=False,
            help="With a physics_baseline: the one subtracted, every window explicit (the output of derive_baseline "
            "when windows were left to the data, else the input itself). Fine-tuning passes it on unchanged.",
        )

        spec.output(
            "property_table",
            valid_type=orm.Dict,
            required=False,
            help="With `properties`: the final potential's materials properties next to the oracle's.",
        )
        spec.output("property_plot", valid_type=orm.SinglefileData, required=False, help="Their plot (PNG).")

        spec.exit_code(210, "ERROR_INVALID_STRUCTURES", message="the structures could not be used: {message}")
        spec.exit_code(
            211,
            "ERROR_TOO_FEW_ENVIRONMENTS",
            message="{message}. The active set of the potential (and selection) needs at least one atomic environment "
            "per basis function and element.",
        )
        spec.exit_code(520, "ERROR_SELECTION_FAILED", message="the structure selection failed: {message}")
        spec.exit_code(510, "ERROR_TRAINING_FAILED", message="the training failed: {message}")
        spec.exit_code(550, "ERROR_FINALISATION_FAILED", message="the {step} step failed: {message}")
        spec.exit_code(
            560,
            "ERROR_PROPERTIES_FAILED",
            message="the properties of the potential could not be computed (the potential and its validation are "
            "attached): {message}",
        )
        spec.exit_code(
            620,
            "ERROR_SHORT_RANGE_NOT_REPULSIVE",
            message="the potential is not repulsive below the shortest training distance of {pairs} (see the "
            "short_range output; every output is attached): use a ZBL baseline with windows from the data "
            "(physics_baseline={{'type': 'zbl'}}), or accept it with short_range_check='warning'",
        )
        spec.exit_code(
            621,
            "ERROR_NOT_LEARNED",
            message="{message} (every output is attached; require_learned=False accepts it with a warning)",
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: Mapping[str, orm.AbstractCode | str],
        structures: TrainingSetData | orm.SinglefileData,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        trainer: str | orm.Str = "pacemaker",
        **inputs: Any,
    ):
        """A builder with every input filled from ``protocol`` (``fast``, ``moderate`` (default), ``precise``; see
        :meth:`get_available_protocols` and ``workflows/protocols/training.yaml``): the fit from
        :meth:`PaceTrainBaseWorkChain.get_builder_from_protocol` and the selection from
        :meth:`SelectionWorkChain.get_builder_from_protocol`, with the same protocol and ``options``.

        ``codes`` maps ``pacemaker``, ``pace_activeset``, ``pace_yaml2yace`` and (for selection) ``pace_select`` to
        codes or code labels; ``structures`` is a labelled :class:`TrainingSetData` or a file node; ``overrides`` is
        merged into the protocol key by key, its ``training`` and ``selection`` sections into those of the inner
        protocols (e.g. ``{"training": {"pace": {"parameters": {"fit": {"maxiter": 50}}}}}``, ``{"selection":
        {"max_atoms": 5000}}``, or ``{"selection": None}`` for no selection); ``options`` (e.g. ``{"account": "x",
        "queue_name": "y"}``) are merged last into every job's ``metadata.options``, whose ``resources`` default to
        one process in the form each code's scheduler takes. Other keyword arguments (``physics_baseline``,
        ``previous_potential``, ``test_set``) are set as they are.

        ``trainer="gracemaker"`` fits GRACE-FS instead: ``codes`` then maps ``gracemaker`` and ``pace_activeset``,
        the fit is the protocol's ``grace`` section (its ``overrides`` the same, e.g. ``{"grace": {"parameters":
        {"fit": {"maxiter": 100}}}}``), and there is no selection, ``.yace`` or ``training`` namespace.
        """
        trainer = trainer.value if isinstance(trainer, orm.Str) else trainer
        if trainer not in TRAINERS:
            raise ValueError(f"trainer must be one of {list(TRAINERS)}, got {trainer!r}")
        if trainer == "gracemaker":
            return cls._grace_builder(codes, structures, protocol, overrides, options, inputs)
        missing = [name for name in ("pacemaker", "pace_activeset", "pace_yaml2yace") if name not in codes]
        if missing:
            raise ValueError(f"codes: give a code for {', '.join(missing)} (the fit, its active set and its .yace)")
        codes = load_codes(codes)
        values = cls.get_protocol_inputs(protocol, overrides)
        values.pop("grace")
        training = PaceTrainBaseWorkChain.get_builder_from_protocol(
            codes["pacemaker"], None, protocol, values["training"], options=options
        )
        values["training"] = builder_inputs(training)
        selection = values.pop("selection")
        if selection is not None:
            if "pace_select" not in codes:
                raise ValueError("the protocol selects structures: give codes['pace_select'] (or selection: None)")
            selection_codes = {name: codes[name] for name in ("pace_select", "pace_activeset")}
            selection = SelectionWorkChain.get_builder_from_protocol(
                selection_codes, None, protocol, selection, options=options
            )
            values["selection"] = builder_inputs(selection)
        set_job(values["activeset"], codes["pace_activeset"], options)
        set_job(values["yace"], codes["pace_yaml2yace"], options)
        cls._set_structures(values, structures)
        return cls.builder_with(values, inputs)

    @classmethod
    def _grace_builder(cls, codes, structures, protocol, overrides, options, inputs):
        """:meth:`get_builder_from_protocol` for trainer gracemaker: the ``grace`` fit and the active set."""
        missing = [name for name in ("gracemaker", "pace_activeset") if name not in codes]
        if missing:
            raise ValueError(f"codes: give a code for {', '.join(missing)} (the GRACE-FS fit and its active set)")
        codes = load_codes(codes)
        values = cls.get_protocol_inputs(protocol, overrides)
        for namespace in ("training", "yace", "selection"):  # pacemaker's
            values.pop(namespace)
        values["trainer"] = "gracemaker"
        set_job(values["grace"], codes["gracemaker"], options)
        set_job(values["activeset"], codes["pace_activeset"], options)
        cls._set_structures(values, structures)
        return cls.builder_with(values, inputs)

    @staticmethod
    def _set_structures(values: dict, structures: TrainingSetData | orm.SinglefileData) -> None:
        if isinstance(structures, TrainingSetData):
            values["training_set"] = structures
        else:
            values["structures_file"] = structures

    # ------------------------------------------------------------------------------------------------------ steps
    def setup(self):
        if self._grace():
            self.ctx.parameters = self.inputs.grace.get("parameters")
        else:
            self.ctx.parameters = self.inputs.training.pace.parameters
        self.ctx.baseline = self.inputs.get("physics_baseline")
        self.ctx.data = self.inputs.get("training_set")
        self.ctx.fitted = None
        self.ctx.continue_from = None  # gracemaker: the checkpoint of a fit stopped at its walltime, and epochs left
        self.ctx.continuations = 0

    def _grace(self) -> bool:
        """Is the fit gracemaker's (trainer gracemaker)?"""
        return self.inputs.trainer.value == "gracemaker"

    def has_structures_file(self):
        return "structures_file" in self.inputs

    def import_structures(self):
        """The file becomes a TrainingSetData through a calcfunction; a file that is not usable ends the work chain
        with the reason (the calcfunction records it), before any job."""
        result, node = import_training_set.run_get_node(self.inputs.structures_file)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_INVALID_STRUCTURES.format(message=node.exit_message)
        self.ctx.data = result
        return None

    def prepare_sets(self):
        """Hold out the test set (original labels, for the final validation) and subtract the baseline."""
        if "test_set" in self.inputs:
            train, self.ctx.test = self.ctx.data, self.inputs.test_set
        else:
            if self.ctx.data.num_structures < 2:
                return self.exit_codes.ERROR_INVALID_STRUCTURES.format(
                    message="one structure cannot be split into training and test structures: give more, or a test_set"
                )
            split = split_training_set(self.ctx.data, self.inputs.test_fraction, self.inputs.seed)
            train, self.ctx.test = split["train"], split["test"]
        if self.ctx.baseline is not None:
            if missing_pairs(self.ctx.baseline.get_dict(), train.elements):  # windows left to the data
                self.ctx.baseline = derive_baseline(train, self.ctx.baseline)
                self.report(f"baseline derived from the training data: {self.ctx.baseline.get_dict()}")
            self.out("baseline", self.ctx.baseline)
            for name, structures in (("train", train), ("train_test", self.ctx.test)):
                result, node = subtract_baseline.run_get_node(structures, self.ctx.baseline)
                if not node.is_finished_ok:
                    return self.exit_codes.ERROR_INVALID_STRUCTURES.format(message=node.exit_message)
                self.ctx[name] = result
        else:
            self.ctx.train, self.ctx.train_test = train, self.ctx.test
        layout = self._layout()
        too_few = layout is not None and check_environments(self.ctx.train, layout, role="training data")
        if too_few:
            return self.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.format(message=too_few)
        return None

    def _layout(self) -> dict | None:
        """Per element, the number of basis functions of the fit (the previous potential's, or the unfitted basis
        of the parameters), without storing anything; None for a GRACE-FS fit, whose functions are known only
        once it is exported (its active set says then, ERROR_INVALID_ACTIVE_SET, if the data are too few)."""
        if self._grace():
            return None
        if "previous_potential" in self.inputs:
            return self.inputs.previous_potential.basis_layout
        return unfitted_basis_layout(self.ctx.parameters.get_dict(), self.ctx.train.elements)

    def should_select(self):
        return bool(self.inputs.get("selection"))

    def run_selection(self):
        """SelectionWorkChain on the training split: the unfitted basis of the coming fit selects, or, when
        fine-tuning, the previous potential with its active set counted as covered."""
        inputs = AttributeDict(self.exposed_inputs(SelectionWorkChain, namespace="selection"))
        inputs.pool = self.ctx.train
        if "previous_potential" in self.inputs:
            inputs.potential = self.inputs.previous_potential
        else:
            inputs.parameters = self.ctx.parameters
        node = self.submit(SelectionWorkChain, **inputs)
        self.report(f"selection: {node.process_label}<{node.pk}>")
        return ToContext(selection=node)

    def inspect_selection(self):
        node = self.ctx.selection
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        self.ctx.train = node.outputs.selected
        self.out("selection_summary", node.outputs.summary)
        return None

    def check_training_set(self):
        """The active set of the final potential needs one atomic environment per function and element in what is
        fitted: say so before the fit, not after it."""
        layout = self._layout()
        too_few = layout is not None and check_environments(self.ctx.train, layout, role="selected training set")
        if too_few:
            return self.exit_codes.ERROR_TOO_FEW_ENVIRONMENTS.format(
                message=f"{too_few} (raise the selection budget, or use a smaller basis)"
            )
        return None

    def should_fit(self):
        """Until the fit has a potential (pacemaker's restarts are PaceTrainBaseWorkChain's; a gracemaker fit stopped
        at its walltime is continued here, see :meth:`inspect_training`)."""
        return self.ctx.fitted is None

    def run_training(self):
        if self._grace():
            return self._run_grace()
        inputs = AttributeDict(self.exposed_inputs(PaceTrainBaseWorkChain, namespace="training"))
        pace = AttributeDict(inputs.pace)
        pace.update(training_set=self.ctx.train, test_set=self.ctx.train_test, parameters=self.ctx.parameters)
        if "previous_potential" in self.inputs:
            pace.previous_potential = self.inputs.previous_potential
        inputs.pace = pace
        node = self.submit(PaceTrainBaseWorkChain, **inputs)
        self.report(f"training: {node.process_label}<{node.pk}>")
        return ToContext(training=node)

    def _run_grace(self):
        """trainer gracemaker: a GraceTrainCalculation; after one stopped at its walltime, the next continues from its
        checkpoint for the epochs left (:meth:`_continue_grace`). Any other failure ends the chain with
        ERROR_TRAINING_FAILED.

        The fit is not given the held-out structures: with test data gracemaker evaluates them at every iteration and
        ends with the checkpoint of its best loss on them, a choice made on the data :meth:`validate` then measures
        the potential's errors on. Without them it ends with its last iteration."""
        inputs = AttributeDict(self.exposed_inputs(GraceTrainCalculation, namespace="grace"))
        inputs.update(training_set=self.ctx.train)
        if "previous_potential" in self.inputs:
            inputs.previous_potential = self.inputs.previous_potential
        if self.ctx.continue_from is not None:  # the checkpoint of the fit stopped at its walltime, the epochs left
            potential, epochs_left = self.ctx.continue_from
            parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
            parameters["fit"] = {**parameters.get("fit", {}), "maxiter": epochs_left}
            inputs.update(previous_potential=potential, parameters=orm.Dict(parameters))
            inputs.metadata = {
                **inputs.get("metadata", {}),
                "call_link_label": f"continuation_{self.ctx.continuations}",
            }
        node = self.submit(GraceTrainCalculation, **inputs)
        self.report(f"training: {node.process_label}<{node.pk}>")
        return ToContext(training=node)

    def inspect_training(self):
        node = self.ctx.training
        if self._grace() and self._continue_grace(node):
            return None
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        self.ctx.fitted = node.outputs.potential
        return None

    def _continue_grace(self, node) -> bool:
        """A gracemaker fit stopped at its walltime with its last checkpoint (ERROR_OUT_OF_WALLTIME, a `potential`
        output): continue from it for the epochs left (fine-tuning from the checkpoint, epochs and optimizer reset),
        at most :data:`GRACE_CONTINUATIONS` times in a row. True when a continuation is due."""
        stopped = GraceTrainCalculation.exit_codes.ERROR_OUT_OF_WALLTIME.status
        if node.exit_status != stopped or "potential" not in node.outputs or "metrics" not in node.outputs:
            return False
        if self.ctx.continuations >= GRACE_CONTINUATIONS:
            self.report(f"gracemaker stopped at its walltime {self.ctx.continuations + 1} times in a row: giving up")
            return False
        parameters = self.inputs.grace["parameters"].get_dict() if "parameters" in self.inputs.grace else {}
        wanted = int(parameters.get("fit", {}).get("maxiter", DEFAULT_FIT["maxiter"]))
        done = int(node.outputs.metrics.get_dict().get("epochs") or 0)
        previous_left = self.ctx.continue_from[1] if self.ctx.continue_from is not None else wanted
        left = previous_left - done
        if done < 1 or left < 1:  # no progress (or nothing left to do): a continuation would not help
            return False
        self.ctx.continuations += 1
        self.ctx.continue_from = (node.outputs.potential, left)
        self.report(
            f"gracemaker {node.process_label}<{node.pk}> stopped at its walltime after {done} epochs: continuing from "
            f"its checkpoint for the {left} epochs left (continuation {self.ctx.continuations} of at most "
            f"{GRACE_CONTINUATIONS})"
        )
        return True

    def has_zbl_baseline(self):
        zbl = self.ctx.baseline is not None and self.ctx.baseline["type"] == "zbl"
        if zbl and self._grace():
            self.report(
                "core repulsion: not sized (fit_core_repulsion edits an ACE basis; a GRACE-FS potential keeps the ZBL "
                "baseline as derived); the short-range check below still tests it"
            )
            return False
        return zbl

    def size_core_repulsion(self):
        """The core repulsion of the light pairs sized to what the fit made of the ACE part (rule ``core_over_ace``,
        :func:`.functions.potential.fit_core_repulsion`), before the .yace and the active set are made from it."""
        sized = fit_core_repulsion(self.ctx.fitted)
        self.ctx.fitted = sized["potential"]
        self.out("core_repulsion", sized["report"])

    def run_finalisation(self):
        """The LAMMPS .yace (pace_yaml2yace, a ShellJob) and the active set (pace_activeset), side by side; a
        GRACE-FS potential has no .yace (LAMMPS reads its FS YAML), only the active set."""
        activeset_inputs = AttributeDict(self.exposed_inputs(PaceActivesetCalculation, namespace="activeset"))
        activeset_inputs.update(potential=self.ctx.fitted, training_set=self.ctx.train)
        if self._grace():
            activeset = self.submit(PaceActivesetCalculation, **activeset_inputs)
            self.report(f"finalising: PaceActivesetCalculation<{activeset.pk}>")
            return ToContext(activeset=activeset)
        given = self.exposed_inputs(ShellJob, namespace="yace")
        yace_inputs = prepare_shell_job_inputs(
            given["code"],
            arguments=["{potential}", "-o", "potential.yace"],
            nodes={"potential": potential_file(self.ctx.fitted)},
            outputs=["potential.yace"],
            metadata=given.get("metadata", {}),
        )
        yace = self.submit(ShellJob, **yace_inputs)
        activeset = self.submit(PaceActivesetCalculation, **activeset_inputs)
        self.report(f"finalising: ShellJob<{yace.pk}> (pace_yaml2yace), PaceActivesetCalculation<{activeset.pk}>")
        return ToContext(yace=yace, activeset=activeset)

    def inspect_finalisation(self):
        activeset = self.ctx.activeset
        # pace_activeset ran, but its matrix for some element is singular: the data hold too few distinct
        # environments of that element for the basis (a molecule's few kinds of carbon, say). The fit itself is
        # sound, so the potential is still returned, without an active set (no extrapolation grade), and said so.
        degenerate = activeset.exit_status == PaceActivesetCalculation.exit_codes.ERROR_INVALID_ACTIVE_SET.status
        steps = ([] if self._grace() else [("pace_yaml2yace", self.ctx.yace)]) + [("pace_activeset", activeset)]
        for step, node in steps:
            if not node.is_finished_ok and not (node is activeset and degenerate):
                return self.exit_codes.ERROR_FINALISATION_FAILED.format(
                    step=step, message=f"[{node.exit_status}] {node.exit_message}"
                )
        if degenerate:
            self.report(
                f"the potential has no active set, so no extrapolation grade: {activeset.exit_message} (the "
                "training data hold too few distinct environments of that element for the basis; exploration and "
                "selection by γ need more varied data or a smaller basis)"
            )
        if self._grace():  # the active set's output is the fitted GRACE-FS potential with its .asi
            self.ctx.potential = self.ctx.fitted if degenerate else activeset.outputs.potential
            return None
        self.ctx.potential = assemble_potential(
            self.ctx.fitted,
            self.ctx.yace.outputs.potential_yace,
            **({} if degenerate else {"active_set": activeset.outputs.potential}),
        )
        return None

    def validate(self):
        """Errors of the final potential (ACE + baseline) on the held-out set with its original labels."""
        validation = validate_potential(self.ctx.potential, self.ctx.test)
        metrics = validation["metrics"].get_dict()
        self.report(
            f"test errors with the baseline added back: E {metrics['energy_rmse']:.2f} meV/atom "
            f"(spread {metrics['reference']['energy_per_atom_std']:.2f}), F {metrics['force_rmse']:.1f} meV/Å "
            f"(RMS {metrics['reference']['force_component_rms']:.1f})"
            + (f", stress {metrics['stress_rmse']:.3f} GPa" if "stress_rmse" in metrics else "")
        )
        # Said here, next to the errors, and flagged in `metrics`: the chain goes on (a loop's early rounds may not
        # have learned yet), `inspect_learning` fails it only when the user asked for that (require_learned).
        if metrics.get("learned") is False:
            self.report(not_learned_message(metrics))
        self.out("potential", self.ctx.potential)
        self.out("metrics", validation["metrics"])
        self.out("parity_plot", validation["parity_plot"])
        self.out("training_metrics", self.ctx.training.outputs.metrics)
        if self.ctx.parameters is not None:
            self.out("parameters", self.ctx.parameters)
        self.out("training_set", self.ctx.train)
        self.out("test_set", self.ctx.test)

        short_range = check_short_range(self.ctx.potential, self.ctx.train)
        self.out("short_range", short_range["report"])
        self.out("short_range_plot", short_range["plot"])
        failing = short_range["report"]["not_repulsive"]
        compression = short_range["report"].get("compression_not_rising", [])
        if compression:
            self.report(
                f"short range, warning: compressed fcc {', '.join(compression)} does not rise at every step below the "
                "shortest training distance (the ACE embedding at densities far above the data; add compressed "
                "structures or set embeddings rho_core_cut/drho_core_cut)"
            )
        if short_range["report"]["all_repulsive"] is None:
            self.report(f"short range, warning: {short_range['report']['dimers_not_scanned']}")
            return None
        if not failing:
            self.report("short range: every element pair is repulsive below its shortest training distance")
            return None
        self.report(f"short range: NOT repulsive below the shortest training distance for {', '.join(failing)}")
        if self.inputs.short_range_check.value == "error":
            return self.exit_codes.ERROR_SHORT_RANGE_NOT_REPULSIVE.format(pairs=", ".join(failing))
        return None

    def inspect_learning(self):
        """With ``require_learned``: a potential that has not learned ends the chain with ERROR_NOT_LEARNED (its
        outputs are attached by then); otherwise `validate` has reported it and `metrics` flag it."""
        metrics = self.outputs["metrics"].get_dict()  # judged by validate_potential, recorded in the graph
        if metrics.get("learned") is False and self.inputs.require_learned.value:
            return self.exit_codes.ERROR_NOT_LEARNED.format(message=not_learned_message(metrics))
        return None

    def wants_properties(self):
        return "properties" in self.inputs and "job" in self.inputs.properties

    def run_properties(self):
        inputs = AttributeDict(self.exposed_inputs(PropertyWorkChain, namespace="properties"))
        inputs.job = {**inputs.job, "potential": self.ctx.potential}
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": "properties"}
        node = self.submit(PropertyWorkChain, **inputs)
        self.report(f"materials properties of the potential: <{node.pk}>")
        return ToContext(properties=node)

    def inspect_properties(self):
        node = self.ctx.properties
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_PROPERTIES_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        self.out("property_table", node.outputs.table)
        self.out("property_plot", node.outputs.plot)
        return None
