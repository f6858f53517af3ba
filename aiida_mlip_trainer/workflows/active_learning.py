"""`ActiveLearningWorkChain`: train → explore with the extrapolation grade → select → label → retrain, in the graph.

Every piece is a process of this plugin, composed the aiida-quantumespresso way: ``TrainingWorkChain`` (namespace
``training``), ``ExplorationCalculation`` (``exploration``), ``SelectionWorkChain`` (``selection``, the budget of each
round) and ``LabelingWorkChain`` (``labeling``: the oracle, any AiiDA process that labels a structure).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_

from ..calculations.explore import ExplorationCalculation
from ..calculations.untrusted import refuses_altered_nodes
from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from ..physics.generators import check_generator
from ..tools.explore import check_plan, check_settings
from .functions.learning_curve import learning_curve, oracle_calls
from .functions.parameters import with_maxiter
from .functions.potential import validation_gamma
from .functions.properties import properties_met
from .functions.selection import concatenate_structures, pick_spread
from .functions.training_set import (
    exploration_starts,
    generate_structures,
    pick_starting_structures,
    split_training_set,
)
from .labeling import LabelingWorkChain
from .protocols import (
    PROTOCOLS_DIRECTORY,
    ProtocolMixin,
    builder_inputs,
    load_codes,
    load_exploration_protocol,
    set_job,
)
from .selection import SelectionWorkChain
from .training import TrainingWorkChain
from .training import validate_inputs as validate_training_inputs

__all__ = ("ActiveLearningWorkChain",)


def _validate_training(inputs) -> str | None:
    """TrainingWorkChain's checks with the loop's first data and held-out set. The ``training`` namespace has been
    checked on its own by then (``expose_inputs`` carries TrainingWorkChain's validator over, which leaves the checks
    of the data to the loop: its training set is the loop's, every round)."""
    structures = inputs["structures"]
    if not structures.labelled:  # labelled by the loop first: checked when the first fit starts
        return None
    training = {**inputs["training"], "training_set": structures, "test_fraction": inputs["test_fraction"]}
    if "test_set" in inputs:
        training["test_set"] = inputs["test_set"]
    message = validate_training_inputs(training)
    return f"training: {message}" if message else None


def _validate_inputs(inputs, _):  # noqa: PLR0911 - one clear message per mistake
    """Refuse what cannot work, before any job."""
    structures = inputs.get("structures")
    if structures is None:
        return None
    if not structures.labelled and "labeling" not in inputs:
        return "the structures have no labels: give the oracle (labeling namespace) to label them first"
    test_set = inputs.get("test_set")
    if test_set is not None:
        if not test_set.labelled:
            return "the test_set has no labels: the learning curve needs a labelled held-out set"
        if set(test_set.elements) - set(structures.elements):
            return (
                f"the test_set contains {sorted(set(test_set.elements) - set(structures.elements))}, which the "
                "structures lack"
            )
    elif not 0 < inputs["test_fraction"].value < 1:
        return f"test_fraction must be in (0, 1), got {inputs['test_fraction'].value}"
    explore_from = inputs.get("explore_from")
    for role in ("explore_from", "validation_structures"):
        other = inputs.get(role)
        if other is not None and set(other.elements) - set(structures.elements):
            return (
                f"{role} contains {sorted(set(other.elements) - set(structures.elements))}, which the "
                "potential will not know: the structures must contain every element"
            )
    message = _validate_generators(inputs.get("generators"), set(structures.elements))
    if message:
        return message
    if inputs["max_rounds"].value < 1:
        return f"max_rounds must be at least 1, got {inputs['max_rounds'].value}"
    if "max_oracle_calls" in inputs and inputs["max_oracle_calls"].value < 1:
        return f"max_oracle_calls must be at least 1, got {inputs['max_oracle_calls'].value}"
    if inputs["max_rounds"].value > 1 and "labeling" not in inputs:
        return "more than one round needs an oracle to label what exploration finds: give the labeling namespace"
    if "fine_tune_maxiter" in inputs and inputs["fine_tune_maxiter"].value < 1:
        return f"fine_tune_maxiter must be at least 1, got {inputs['fine_tune_maxiter'].value}"
    if inputs["explore_count"].value < 1:
        return f"explore_count must be at least 1, got {inputs['explore_count'].value}"
    message = _validate_exploration_sizes(inputs, explore_from if explore_from is not None else structures)
    if message:
        return f"exploration: {message}"
    message = _validate_property_targets(inputs)
    if message:
        return message
    if "labeling" in inputs:
        # the oracle checked on the loop's structures (the namespace alone has no pool to check it on)
        message = LabelingWorkChain.validate_inputs({**inputs["labeling"], "pool": structures}, None)
        if message:
            return f"labeling: {message}"
    return _validate_training(inputs)


def _validate_property_targets(inputs) -> str | None:
    """Targets need the properties of each round with a reference, and each a relative error in (0, 10]."""
    targets = inputs.get("property_targets")
    if targets is None:
        return None
    properties = inputs.get("training", {}).get("properties", {})
    if "job" not in properties:
        return "property_targets need the properties of each round: give training.properties (PropertyWorkChain)"
    targets = targets.get_dict()
    if not targets:
        return "property_targets is empty: name at least one property (a0, B0, C44, ...)"
    for name, value in targets.items():
        if name == "md":
            if value is not True:
                return f"property_targets: 'md' must be true (MD stays physical), got {value!r}"
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10:
            return f"property_targets: {name!r} must be a relative error in (0, 10], got {value!r}"
    if set(targets) - {"md"} and "labeling" not in properties:
        return "property_targets compare with a reference: give training.properties.labeling (the oracle)"
    return None


def _validate_generators(generators, elements: set[str]) -> str | None:
    """Each generator of the exploration protocol checked (physics.generators.check_generator); a substitution or
    interstitial element must be one the potential learns."""
    if generators is None:
        return None
    for index, spec in enumerate(generators.get_list()):
        try:
            checked = check_generator(spec)
        except ValueError as exc:
            return f"generators[{index}]: {exc}"
        if checked.get("element") is not None and checked["element"] not in elements:
            return (
                f"generators[{index}]: element {checked['element']} is not in the structures (elements "
                f"{sorted(elements)}): the potential would not know it"
            )
    return None


def _validate_exploration_sizes(inputs, starts) -> str | None:
    """The exploration bounds that need its starting structures (atoms per structure, the trajectories they give),
    checked before the first fit rather than when the first exploration is launched. With ``explore_from`` the count
    is exact; drawn from the data, any structure may be drawn, and the ``explore_count`` drawn ones are counted as
    periodic in 3D (each runs at every pressure)."""
    parameters = inputs.get("exploration", {}).get("parameters")
    if parameters is None:
        return None
    if parameters.get("resume_trajectories") is not None:
        return (
            "exploration.parameters: resume_trajectories is the loop's to set (from each round's halted trajectories)"
        )
    try:
        settings = check_settings(parameters.get_dict())
        arrays = starts.get_arrays()
        sizes = arrays["natoms"].tolist()
        if "explore_from" in inputs:
            check_plan(settings, sizes, arrays["pbc"].all(axis=1).tolist())
        else:
            check_plan(settings, sizes, [])  # atoms per structure only
            count = min(inputs["explore_count"].value, len(sizes))
            check_plan(settings, [0] * count, [True] * count)  # the budget of the largest draw
    except ValueError as exc:  # TrainingSetError too: an altered node is refused, not a crash
        return str(exc)
    return None


class ActiveLearningWorkChain(ProtocolMixin, WorkChain):
    """Improve a potential where it is needed: train, run molecular dynamics with it and record the extrapolation
    grade γ, select the frames it extrapolates on (the current active set counted as covered), label them with an
    oracle (any AiiDA process: DFT through aiida-cp2k, an ASE calculator, ...), add them and retrain (fine-tuning from
    the previous potential), until the potential is converged or a budget is spent.

    Inputs: ``structures`` (labelled, or unlabelled with an oracle: labelled first), a fixed held-out ``test_set`` (or
    ``test_fraction`` of the labelled structures, split once, seeded), ``explore_from`` (starting structures of the
    exploration; default ``explore_count`` structures of the training data, seeded), the exposed namespaces
    ``training``, ``exploration`` (temperatures, steps, ``gamma_collect``, ``gamma_halt``: see
    ``ExplorationCalculation``; the seed changes every round), ``selection`` (the budget of each round, in structures
    or atoms), ``labeling`` (the oracle and ``max_concurrent``), and the budget of the loop: ``max_rounds`` (number of
    fits), ``max_oracle_calls``, ``target_force_rmse`` (meV/Å on the held-out set). ``fine_tune`` (default True)
    retrains each round from the previous potential, with ``fine_tune_maxiter`` BFGS iterations (gracemaker: epochs)
    when given.

    Converged: an exploration in which no frame reached ``gamma_collect`` and no trajectory halted (every frame is
    interpolation for the potential), or the held-out force error at or below ``target_force_rmse``. Otherwise the
    loop stops at ``max_rounds`` or when the next selection would exceed ``max_oracle_calls``, and says why.

    Outputs: ``potential`` (the last one), ``potentials.round_<k>`` (every round's), ``training_set`` (the final
    data, original labels), ``test_set``, ``learning_curve`` (ArrayData: cumulative oracle calls, held-out errors,
    largest γ, fraction of halted trajectories and candidates per round), ``learning_curve_plot`` and ``summary``.
    Start from :meth:`get_builder_from_protocol`, which fills every namespace from a protocol.
    """

    _protocol_file = PROTOCOLS_DIRECTORY / "active_learning.yaml"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structures", valid_type=TrainingSetData, help="Initial structures, labelled or not.")
        spec.input("test_set", valid_type=TrainingSetData, required=False, help="Fixed, labelled held-out set.")
        spec.input(
            "test_fraction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.1),
            serializer=orm.to_aiida_type,
            help="Without a test_set: the share of the labelled structures held out (once, seeded).",
        )
        spec.input("seed", valid_type=orm.Int, default=lambda: orm.Int(42), serializer=orm.to_aiida_type)
        spec.input(
            "explore_from",
            valid_type=TrainingSetData,
            required=False,
            help="Starting structures of the exploration (default: explore_count of the training data).",
        )
        spec.input(
            "generators",
            valid_type=orm.List,
            required=False,
            serializer=orm.to_aiida_type,
            help="Structure generators of the exploration protocol (strain, shear, vacancy, interstitial, slab, "
            "rattle, substitution; aiida_mlip_trainer.physics.generators): each makes starting structures from "
            "explore_from once, seeded, in the graph (generate_structures).",
        )
        spec.input(
            "validation_structures",
            valid_type=TrainingSetData,
            required=False,
            help="The structures you need the potential for (labels not needed): every round reports their γ with "
            "its potential, and the loop is not converged while any is at or above gamma_collect.",
        )
        spec.input("explore_count", valid_type=orm.Int, default=lambda: orm.Int(2), serializer=orm.to_aiida_type)
        spec.input("max_rounds", valid_type=orm.Int, default=lambda: orm.Int(5), serializer=orm.to_aiida_type)
        spec.input("max_oracle_calls", valid_type=orm.Int, required=False, serializer=orm.to_aiida_type)
        spec.input(
            "target_force_rmse",
            valid_type=orm.Float,
            required=False,
            serializer=orm.to_aiida_type,
            help="Converged when the held-out force RMSE (meV/Å) is at or below this.",
        )
        spec.input(
            "property_targets",
            valid_type=orm.Dict,
            required=False,
            serializer=orm.to_aiida_type,
            help="Converged when every named property of the round's table (a0, B0, C11, C44, vacancy, "
            "surface(111), ...: needs training.properties with an oracle) is within this relative error of the "
            "reference (0.02 is 2 %); 'md': true asks that MD stayed physical.",
        )
        spec.input(
            "fine_tune",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            serializer=orm.to_aiida_type,
            help="Retrain from the previous round's potential (else from scratch every round).",
        )
        spec.input(
            "fine_tune_maxiter",
            valid_type=orm.Int,
            required=False,
            serializer=orm.to_aiida_type,
            help="BFGS iterations (fit.maxiter) of each fine-tuning fit, every round after the first with fine_tune "
            "(the first fit, and every fit without fine_tune, keeps the training parameters' own). Left out: every "
            "fit uses those parameters' maxiter.",
        )
        spec.expose_inputs(
            TrainingWorkChain,
            namespace="training",
            exclude=(
                "training_set",
                "structures_file",
                "test_set",
                "test_fraction",
                "previous_potential",
            ),
            namespace_options={
                "help": "Every round's TrainingWorkChain: `trainer` pacemaker (ACE, `training.training`) or gracemaker "
                "(GRACE-FS with stress in the loss, `training.grace`); no selection there, usually."
            },
        )
        spec.expose_inputs(
            ExplorationCalculation,
            namespace="exploration",
            exclude=("potential", "structures"),
            namespace_options={"help": "The MD of each round: code, parameters (temperatures, gamma thresholds)."},
        )
        spec.expose_inputs(
            SelectionWorkChain,
            namespace="selection",
            exclude=("pool", "potential", "parameters", "covered"),
            namespace_options={"help": "What each round labels: the budget, strategy and pace_select job."},
        )
        spec.expose_inputs(
            LabelingWorkChain,
            namespace="labeling",
            exclude=("pool",),
            namespace_options={"required": False, "populate_defaults": False, "help": "The oracle."},
        )
        spec.inputs.validator = refuses_altered_nodes(_validate_inputs)

        spec.outline(
            cls.setup,
            if_(cls.needs_initial_labels)(cls.label_initial, cls.inspect_initial),
            cls.prepare_sets,
            while_(cls.should_train)(
                cls.train,
                cls.inspect_training,
                cls.explore,
                cls.inspect_exploration,
                if_(cls.should_label)(cls.select, cls.inspect_selection, cls.label, cls.inspect_labeling),
                cls.next_round,
            ),
            cls.results,
        )
        # PacePotentialData: an ACE potential, or a GraceFSPotentialData (its subclass) with trainer gracemaker
        spec.output("potential", valid_type=PacePotentialData, help="The last round's potential (ACE or GRACE-FS).")
        spec.output_namespace("potentials", valid_type=PacePotentialData, dynamic=True, help="Every round's.")
        spec.output("training_set", valid_type=TrainingSetData, help="The final training data (original labels).")
        spec.output("test_set", valid_type=TrainingSetData, help="The fixed held-out set of the learning curve.")
        spec.output("learning_curve", valid_type=orm.ArrayData, help="Oracle calls, errors, γ per round.")
        spec.output("learning_curve_plot", valid_type=orm.SinglefileData, help="The learning curve (PNG).")
        spec.output("summary", valid_type=orm.Dict, help="The rounds and why the loop stopped.")
        spec.exit_code(
            540, "ERROR_INITIAL_LABELING_FAILED", message="no initial structure could be labelled: {message}"
        )
        spec.exit_code(510, "ERROR_TRAINING_FAILED", message="round {round}: the training failed: {message}")
        spec.exit_code(530, "ERROR_EXPLORATION_FAILED", message="round {round}: the exploration failed: {message}")
        spec.exit_code(520, "ERROR_SELECTION_FAILED", message="round {round}: the selection failed: {message}")
        spec.exit_code(
            541, "ERROR_LABELING_FAILED", message="round {round}: no selected structure got a label: {message}"
        )
        spec.exit_code(
            642,
            "ERROR_POTENTIAL_WITHOUT_ACTIVE_SET",
            message="round {round}: the potential has no active set, so exploration has no extrapolation grade: the "
            "training data hold too few distinct environments for the basis (TrainingWorkChain's report says which "
            "element); give more varied structures or a smaller basis. Its potential is output as potentials.round_"
            "{round}.",
        )
        spec.exit_code(
            640,
            "ERROR_NOTHING_TO_LABEL",
            message="round {round}: exploration halted ({halted} trajectories) before any frame reached the collect "
            "band: lower the temperatures or gamma_collect. The outputs of the rounds so far are attached.",
        )

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: Mapping[str, orm.AbstractCode | str],
        structures: TrainingSetData,
        exploration: Mapping[str, Any] | None,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        exploration_protocol: str | pathlib.Path | None = None,
        oracle: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        trainer: str = "pacemaker",
        **inputs: Any,
    ):
        """A builder with every input filled from ``protocol`` (``fast``, ``moderate`` (default), ``precise``; see
        :meth:`get_available_protocols` and ``workflows/protocols/active_learning.yaml``): the ``training``
        namespace from :meth:`TrainingWorkChain.get_builder_from_protocol` (no selection inside the fit: the loop
        selects), ``selection`` (the budget of each round) from :meth:`SelectionWorkChain.get_builder_from_protocol`
        and, with an ``oracle`` (from :func:`~aiida_mlip_trainer.oracles.ase_oracle` or
        :func:`~aiida_mlip_trainer.oracles.cp2k_oracle`), ``labeling`` from
        :meth:`LabelingWorkChain.get_builder_from_protocol`, each with the same protocol; ``exploration`` are the
        parameters of ``ExplorationCalculation``. ``exploration_protocol`` (the name of a shipped one, ``copper``,
        ``cuni`` or ``silicon``, or the path of a YAML file; see
        :func:`~aiida_mlip_trainer.workflows.protocols.load_exploration_protocol`) gives the ``generators`` of the
        starting structures and the exploration's parameters (its ``conditions``), which ``exploration`` then overrides
        key by key.

        ``codes`` maps ``pacemaker``, ``pace_activeset``, ``pace_yaml2yace``, ``pace_select`` and ``explore`` (the
        ``mlip-trainer-explore`` script, plugin ``mlip_trainer.explore``) to codes or code labels. ``trainer``
        ``"gracemaker"`` fits every round with gracemaker (GRACE-FS, stress in the loss; ``training.trainer``): then
        ``codes`` maps ``gracemaker`` instead of ``pacemaker`` and ``pace_yaml2yace``, and the fit is the training
        protocol's ``grace`` section (overridden with ``{"training": {"grace": {"parameters": {...}}}}``); the
        exploration, the selection with the active set and the validation γ use the GRACE-FS potential. ``overrides`` is
        merged into the protocol key by key, its ``training``, ``selection`` and ``labeling`` sections into those of
        the inner protocols (e.g. ``{"selection": {"max_structures": 20}, "labeling": {"max_concurrent": 4},
        "training": {"training": {"pace": {"parameters": {"fit": {"maxiter": 50}}}}}}``). ``options`` are merged
        last into the ``metadata.options`` of every job of the plugin (fits, selection, exploration), whose
        ``resources`` default to one process in the form each code's scheduler takes; the oracle jobs keep the
        options of the oracle description (they run on the oracle's computer). Other keyword arguments
        (``test_set``, ``max_oracle_calls``, ``target_force_rmse``, ``explore_from``, ...) are set as they are."""
        missing = [name for name in ("pace_select", "explore") if name not in codes]
        if missing:
            raise ValueError(f"codes: give a code for {', '.join(missing)} (selection and exploration of each round)")
        codes = load_codes(codes)
        values = cls.get_protocol_inputs(protocol, overrides)
        training = TrainingWorkChain.get_builder_from_protocol(
            codes, structures, protocol, values["training"], options=options, trainer=trainer
        )
        exclude = ("training_set", "structures_file", "test_set", "test_fraction", "previous_potential")
        values["training"] = builder_inputs(training, exclude)
        values["selection"] = builder_inputs(
            SelectionWorkChain.get_builder_from_protocol(
                {name: codes[name] for name in ("pace_select", "pace_activeset") if name in codes},
                None,
                protocol,
                values["selection"],
                options=options,
            )
        )
        labeling = values.pop("labeling")
        if oracle is not None:
            labeling = LabelingWorkChain.get_builder_from_protocol(oracle, None, protocol, labeling)
            values["labeling"] = builder_inputs(labeling)
        parameters = dict(exploration or {})
        if exploration_protocol is not None:
            explored = load_exploration_protocol(exploration_protocol)
            parameters = {**explored["exploration"], **parameters}
            if explored["generators"] and "generators" not in inputs:
                values["generators"] = orm.List(explored["generators"])
        if not parameters:
            raise ValueError("give the exploration's parameters (temperatures, ...) or an exploration_protocol")
        values["exploration"]["parameters"] = parameters
        set_job(values["exploration"], codes["explore"], options)
        values["structures"] = structures
        return cls.builder_with(values, inputs)

    # ------------------------------------------------------------------------------------------------------ steps
    def setup(self):
        self.ctx.round = 0
        self.ctx.stop_reason = None
        self.ctx.halted_without_frames = None  # [round, halted trajectories]: the loop cannot go on
        self.ctx.curve_inputs = {}
        self.ctx.oracle_calls = 0
        self.ctx.potential = None
        self.ctx.baseline = None  # the first fit's `baseline` output (its windows explicit), kept by fine-tuning
        self.ctx.data = self.inputs.structures
        self.ctx.fitted_on = None  # the training set of the last fit: no new data, no new fit
        self.ctx.validation = None  # the validation γ of the current potential
        self.ctx.resume = None  # the resume frames of the last exploration's halted trajectories
        self.ctx.skip_labeling = False
        self.ctx.notes = []  # rounds that would have converged but for the validation structures
        self.ctx.properties_met = None  # why the round's properties meet their targets (None: they do not)

    def needs_initial_labels(self):
        return not self.inputs.structures.labelled

    def label_initial(self):
        inputs = AttributeDict(self.exposed_inputs(LabelingWorkChain, namespace="labeling"))
        inputs.pool = self.inputs.structures
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": "initial_labeling"}
        node = self.submit(LabelingWorkChain, **inputs)
        self.report(f"labelling the {self.inputs.structures.num_structures} initial structures: <{node.pk}>")
        return ToContext(initial_labeling=node)

    def inspect_initial(self):
        node = self.ctx.initial_labeling
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_INITIAL_LABELING_FAILED.format(message=node.exit_message)
        self.ctx.data = node.outputs.labelled
        self.ctx.curve_inputs["initial_labeling"] = node.outputs.failures
        self.ctx.oracle_calls += oracle_calls(node.outputs.failures)
        return None

    def prepare_sets(self):
        """The fixed held-out set, and the starting structures of the exploration."""
        if "test_set" in self.inputs:
            self.ctx.test = self.inputs.test_set
        else:
            split = split_training_set(self.ctx.data, self.inputs.test_fraction, self.inputs.seed)
            self.ctx.data, self.ctx.test = split["train"], split["test"]
        if "explore_from" in self.inputs:
            self.ctx.explore_from = self.inputs.explore_from
        else:
            count = orm.Int(min(self.inputs.explore_count.value, self.ctx.data.num_structures))
            self.ctx.explore_from = pick_starting_structures(self.ctx.data, count, self.inputs.seed)
        # the starting structures of every round: those given (or drawn) and each generator's, made once
        self.ctx.start_groups = {"given": self.ctx.explore_from}
        for index, generator in enumerate(self.inputs.generators.get_list() if "generators" in self.inputs else []):
            label = f"generated_{index:02d}_{generator['type']}"
            self.ctx.start_groups[label] = generate_structures(
                self.ctx.explore_from, orm.Dict(generator), metadata={"call_link_label": f"generator_{index}"}
            )

    def should_train(self):
        return self.ctx.stop_reason is None

    def train(self):
        if self.ctx.fitted_on is not None and self.ctx.fitted_on.pk == self.ctx.data.pk:
            self.report(f"round {self.ctx.round}: no new data since the last fit: its potential explores again")
            return None
        inputs = AttributeDict(self.exposed_inputs(TrainingWorkChain, namespace="training"))
        inputs.training_set = self.ctx.data
        inputs.test_set = self.ctx.test
        if self.ctx.potential is not None and self.inputs.fine_tune.value:
            inputs.previous_potential = self.ctx.potential
            if self.ctx.baseline is not None:
                # Fine-tuning keeps the basis and so the baseline: the windows the first fit derived from its data
                # (its `baseline` output), not windows derived anew from the grown set.
                inputs.physics_baseline = self.ctx.baseline
            if "fine_tune_maxiter" in self.inputs:
                # A fine-tune starts from a fitted potential: fewer iterations than a fit from scratch (the
                # protocol's value, measured in docs/benchmarks.md), set by a calcfunction, in the graph: pacemaker's
                # BFGS iterations, or gracemaker's epochs (both `fit.maxiter`).
                metadata = {"call_link_label": f"fine_tune_parameters_{self.ctx.round}"}
                if inputs.get("trainer") is not None and inputs.trainer.value == "gracemaker":
                    grace = AttributeDict(inputs.grace)
                    given = grace.get("parameters") or orm.Dict({})
                    grace.parameters = with_maxiter(given, self.inputs.fine_tune_maxiter, metadata=metadata)
                    inputs.grace = grace
                else:
                    training = AttributeDict(inputs.training)
                    pace = AttributeDict(training.pace)
                    pace.parameters = with_maxiter(pace.parameters, self.inputs.fine_tune_maxiter, metadata=metadata)
                    training.pace = pace
                    inputs.training = training
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": f"training_{self.ctx.round}"}
        node = self.submit(TrainingWorkChain, **inputs)
        self.report(
            f"round {self.ctx.round}: training on {self.ctx.data.num_structures} structures "
            f"({self.ctx.oracle_calls} oracle calls so far): <{node.pk}>"
        )
        return ToContext(training=node)

    def inspect_training(self):
        node, k = self.ctx.training, self.ctx.round
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(
                round=k, message=f"[{node.exit_status}] {node.exit_message}"
            )
        if self.ctx.fitted_on is None or self.ctx.fitted_on.pk != self.ctx.data.pk:
            self.ctx.potential = node.outputs.potential
            self.ctx.fitted_on = self.ctx.data
            if "validation_structures" in self.inputs:
                gamma_collect = check_settings(self.inputs.exploration.parameters.get_dict())["gamma_collect"]
                self.ctx.validation = validation_gamma(
                    self.ctx.potential,
                    self.inputs.validation_structures,
                    orm.Float(gamma_collect),
                    metadata={"call_link_label": f"validation_gamma_{k}"},
                )
        if self.ctx.validation is not None:
            validation = self.ctx.validation
            self.ctx.curve_inputs[f"validation_{k}"] = validation
            self.report(
                f"round {k}: validation structures: largest γ {validation['max_gamma']:.2f}, median "
                f"{validation['median_gamma']:.2f}, {len(validation['extrapolating'])} at or above gamma_collect"
            )
        self.out(f"potentials.round_{k}", self.ctx.potential)
        if self.ctx.baseline is None and "baseline" in node.outputs:
            self.ctx.baseline = node.outputs.baseline
        if not self.ctx.potential.has_active_set:
            return self.exit_codes.ERROR_POTENTIAL_WITHOUT_ACTIVE_SET.format(round=k)
        self._inspect_properties(node, k)
        metrics = node.outputs.metrics
        self.ctx.curve_inputs.update({f"metrics_{k}": metrics, f"training_set_{k}": self.ctx.data})
        self.report(
            f"round {k}: held-out errors E {metrics['energy_rmse']:.2f} meV/atom, F {metrics['force_rmse']:.1f} meV/Å "
            f"(reference RMS {metrics['reference']['force_component_rms']:.1f})"
            + (": not learned yet" if metrics.get_dict().get("learned") is False else "")
        )
        return None

    def _inspect_properties(self, node, k: int) -> None:
        """The round's property table (from its TrainingWorkChain's `properties`) into the learning curve, and
        whether it meets ``property_targets``."""
        self.ctx.properties_met = None
        if "property_table" not in node.outputs:
            return
        table = node.outputs.property_table
        self.ctx.curve_inputs[f"properties_{k}"] = table
        shown = []
        for row in table["rows"]:
            error = row.get("reference_relative_error", row.get("reference_relaxed_relative_error"))
            if not row["property"].startswith("nu(") and error is not None:
                shown.append(f"{row['property']} {100 * error:+.1f} %")
        self.report(f"round {k}: properties against the reference: {', '.join(shown) or 'no reference'}")
        if "property_targets" in self.inputs:
            met, reasons = properties_met(table.get_dict(), self.inputs.property_targets.get_dict())
            if met:
                names = ", ".join(sorted(self.inputs.property_targets.keys()))
                self.ctx.properties_met = f"properties within their targets ({names})"
            else:
                self.report(f"round {k}: properties not yet within their targets: {'; '.join(reasons)}")

    def explore(self):
        inputs = AttributeDict(self.exposed_inputs(ExplorationCalculation, namespace="exploration"))
        parameters = inputs.parameters.get_dict()
        # every round explores anew: another seed, recorded in the job's parameters
        parameters["seed"] = int(parameters.get("seed", 42)) + self.ctx.round
        groups = dict(self.ctx.start_groups)
        if self.ctx.resume is not None:  # halted last round: start again from their last frames below gamma_halt
            groups["resume"] = self.ctx.resume
        starts = exploration_starts(**groups, metadata={"call_link_label": f"exploration_starts_{self.ctx.round}"})
        if self.ctx.resume is not None:  # each resume frame (last in the starts) continues its own trajectory only
            first = len(starts["origins"]) - self.ctx.resume.num_structures
            records = self.ctx.exploration.outputs.summary["trajectories"]  # last round's: the resume frames' order
            continued = [record for record in records if record["resume_step"] is not None]
            parameters["resume_trajectories"] = [
                {"structure": first + index, **{key: record[key] for key in ("condition", "temperature", "pressure")}}
                for index, record in enumerate(continued)
            ]
        self.ctx.origins = starts["origins"]
        self.ctx.curve_inputs[f"starts_{self.ctx.round}"] = starts["origins"]
        arrays = starts["structures"].get_arrays()
        try:
            check_plan(check_settings(parameters), arrays["natoms"].tolist(), arrays["pbc"].all(axis=1).tolist())
        except ValueError as exc:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(round=self.ctx.round, message=str(exc))
        inputs.update(
            potential=self.ctx.potential,
            structures=starts["structures"],
            parameters=orm.Dict(parameters),
            metadata={**inputs.get("metadata", {}), "call_link_label": f"exploration_{self.ctx.round}"},
        )
        node = self.submit(ExplorationCalculation, **inputs)
        self.report(f"round {self.ctx.round}: exploration <{node.pk}>")
        return ToContext(exploration=node)

    def inspect_exploration(self):
        """Converged, stop, or go on to select and label."""
        node, k = self.ctx.exploration, self.ctx.round
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(
                round=k, message=f"[{node.exit_status}] {node.exit_message}"
            )
        summary = node.outputs.summary
        self.ctx.curve_inputs[f"exploration_{k}"] = summary
        self.ctx.resume = node.outputs.resume if "resume" in node.outputs else None
        halted, collected = summary["num_halted"], summary["num_candidates"]
        self.report(
            f"round {k}: exploration: largest γ {summary['max_gamma']:.2f}, {halted} of {summary['num_trajectories']} "
            f"trajectories halted, {collected} frames in the collect band"
            + (f", {summary['num_resume']} resume frames for the next round" if self.ctx.resume is not None else "")
        )
        metrics = self.ctx.training.outputs.metrics
        target = self.inputs.get("target_force_rmse")
        self.ctx.skip_labeling = not collected
        if not collected and not halted:
            self._converged("no frame reached gamma_collect and no trajectory halted")
        elif target is not None and metrics["force_rmse"] <= target.value:
            self._converged(f"held-out force RMSE {metrics['force_rmse']:.2f} meV/Å <= target {target.value}")
        elif self.ctx.properties_met is not None:
            self._converged(self.ctx.properties_met)
        if self.ctx.stop_reason is not None:
            return None
        if k + 1 >= self.inputs.max_rounds.value:
            self.ctx.stop_reason = f"max_rounds ({self.inputs.max_rounds.value}) reached"
        elif "max_oracle_calls" in self.inputs and self.ctx.oracle_calls >= self.inputs.max_oracle_calls.value:
            self.ctx.stop_reason = f"max_oracle_calls ({self.inputs.max_oracle_calls.value}) spent"
        elif not collected and halted:
            self.ctx.stop_reason = f"round {k}: exploration halted before any frame reached the collect band"
            self.ctx.halted_without_frames = [k, halted]
        return None

    def _converged(self, why: str) -> None:
        """Stop as converged, unless a validation structure still extrapolates: then say so and go on."""
        k, validation = self.ctx.round, self.ctx.validation
        if validation is not None and validation["extrapolating"]:
            note = (
                f"round {k}: not converged although {why}: {len(validation['extrapolating'])} validation "
                f"structure(s) at or above gamma_collect (largest γ {validation['max_gamma']:.2f})"
            )
            self.report(note)
            self.ctx.notes.append(note)
            return
        self.ctx.stop_reason = f"converged in round {k}: {why}"

    def should_label(self):
        return self.ctx.stop_reason is None and not self.ctx.skip_labeling

    def select(self):
        inputs = AttributeDict(self.exposed_inputs(SelectionWorkChain, namespace="selection"))
        inputs.update(
            pool=self.ctx.exploration.outputs.candidates,
            potential=self.ctx.potential,
            covered=self.ctx.data,
            metadata={**inputs.get("metadata", {}), "call_link_label": f"selection_{self.ctx.round}"},
        )
        if "max_oracle_calls" in self.inputs:
            left = self.inputs.max_oracle_calls.value - self.ctx.oracle_calls
            current = inputs["max_structures"].value if "max_structures" in inputs else left
            inputs.max_structures = orm.Int(min(current, left))
        node = self.submit(SelectionWorkChain, **inputs)
        self.report(f"round {self.ctx.round}: selecting from the frames: <{node.pk}>")
        return ToContext(selection=node)

    def inspect_selection(self):
        node, k = self.ctx.selection, self.ctx.round
        if node.exit_status == SelectionWorkChain.exit_codes.ERROR_NOTHING_SELECTED.status:
            self.ctx.skip_labeling = True
            self._converged(f"no frame extends the active set ({node.exit_message})")
            return None
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(
                round=k, message=f"[{node.exit_status}] {node.exit_message}"
            )
        self.ctx.curve_inputs[f"picks_{k}"] = pick_spread(
            node.outputs.indices,
            self.ctx.exploration.outputs.summary,
            self.ctx.origins,
            metadata={"call_link_label": f"pick_spread_{k}"},
        )
        return None

    def label(self):
        if self.ctx.stop_reason is not None or self.ctx.skip_labeling:
            return None
        inputs = AttributeDict(self.exposed_inputs(LabelingWorkChain, namespace="labeling"))
        inputs.pool = self.ctx.selection.outputs.selected
        inputs.metadata = {**inputs.get("metadata", {}), "call_link_label": f"labeling_{self.ctx.round}"}
        node = self.submit(LabelingWorkChain, **inputs)
        self.report(f"round {self.ctx.round}: labelling {inputs.pool.num_structures} structures: <{node.pk}>")
        return ToContext(labeling=node)

    def inspect_labeling(self):
        """Add the new labels (a calcfunction: every new structure links back to the job that labelled it)."""
        if self.ctx.stop_reason is not None or self.ctx.skip_labeling:
            return None
        node, k = self.ctx.labeling, self.ctx.round
        self.ctx.curve_inputs[f"labeling_{k}"] = node.outputs.failures
        self.ctx.oracle_calls += oracle_calls(node.outputs.failures)
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_LABELING_FAILED.format(round=k, message=node.exit_message)
        self.ctx.data = concatenate_structures(set_0=self.ctx.data, set_1=node.outputs.labelled)
        return None

    def next_round(self):
        if self.ctx.stop_reason is None:
            self.ctx.round += 1

    def results(self):
        curve = learning_curve(
            stop_reason=orm.Str(self.ctx.stop_reason or ""), notes=orm.List(self.ctx.notes), **self.ctx.curve_inputs
        )
        self.out("potential", self.ctx.potential)
        self.out("training_set", self.ctx.data)
        self.out("test_set", self.ctx.test)
        self.out("learning_curve", curve["curve"])
        self.out("learning_curve_plot", curve["plot"])
        self.out("summary", curve["summary"])
        self.report(
            f"stopped after {self.ctx.round + 1} rounds, {self.ctx.oracle_calls} oracle calls: {self.ctx.stop_reason}"
        )
        if self.ctx.halted_without_frames is not None:
            k, halted = self.ctx.halted_without_frames
            return self.exit_codes.ERROR_NOTHING_TO_LABEL.format(round=k, halted=halted)
        return None
