"""`TrainingWorkChain`: labelled structures in, a validated, deployable ACE potential out, every step in the graph."""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida_shell import ShellJob
from aiida_shell.launch import prepare_shell_job_inputs

from ..baselines import missing_pairs
from ..calcfunctions import (
    assemble_potential,
    check_short_range,
    derive_baseline,
    generate_training_parameters,
    import_training_set,
    potential_file,
    split_training_set,
    subtract_baseline,
    validate_potential,
)
from ..calculations.pace_activeset import PaceActivesetCalculation
from ..calculations.pace_select import PaceSelectCalculation
from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from ..pacemaker_input import validate_parameters
from ..selection import (
    basis_layout,
    check_environments,
    gather_selection,
    merge_picks,
    take_structures,
    unfitted_potential,
)
from .pace_train_base import PaceTrainBaseWorkChain
from .protocols import get_preset_parameters, list_presets, merge

__all__ = ("TrainingWorkChain",)

# Rounds of pace_select, each on the rest of the pool, to reach max_structures.
MAX_SELECTION_ROUNDS = 5
# What a potential that is not repulsive below its training data does to the work chain: exit code 440 (all outputs
# attached), or a warning in the report only.
SHORT_RANGE_CHECKS = ("error", "warning")


def _validate_inputs(inputs, _):  # noqa: PLR0911 - one clear message per mistake
    """Refuse bad input before any job runs, with a message that says what to change."""
    from ..baselines import BaselineError, validate_baseline

    if ("training_set" in inputs) == ("structures_file" in inputs):
        return "give exactly one of `training_set` (a TrainingSetData) and `structures_file` (an extxyz/ASE db file)"
    training_set = inputs.get("training_set")
    structures_file = inputs.get("structures_file")
    if structures_file is not None and not structures_file.get_content(mode="rb").strip():
        return f"the structures_file {structures_file.filename!r} is empty: give labelled structures"
    if training_set is not None:
        if not training_set.labelled:
            return "the training_set has no labels (energies and forces): label the structures first"
        if training_set.base.attributes.get("baseline", None) is not None:
            return "give the original labels: the work chain subtracts `physics_baseline` itself"
    test_set = inputs.get("test_set")
    if test_set is not None and not test_set.labelled:
        return "the test_set has no labels (energies and forces)"
    fraction = inputs["test_fraction"].value
    if test_set is None and not 0 < fraction < 1:
        return f"test_fraction must be in (0, 1), got {fraction}"
    if test_set is None and training_set is not None and training_set.num_structures < 2:
        return "one structure cannot be split into training and test structures: give more, or a test_set"
    if "max_structures" in inputs and inputs["max_structures"].value <= 0:
        return f"max_structures must be a positive integer, got {inputs['max_structures'].value}"
    preset = inputs["preset"].value
    if preset not in list_presets():
        return f"unknown preset {preset!r}; known presets: {', '.join(list_presets())}"

    baseline = None
    if "physics_baseline" in inputs:
        try:
            baseline = validate_baseline(inputs["physics_baseline"].get_dict())
        except BaselineError as error:
            return f"physics_baseline: {error}"
    overrides = inputs["parameter_overrides"].get_dict() if "parameter_overrides" in inputs else {}
    elements = training_set.elements if training_set is not None else None
    message = validate_parameters(merge(get_preset_parameters(preset), overrides), elements=elements, baseline=baseline)
    if message:
        return f"preset {preset!r} with the overrides: {message}"

    previous = inputs.get("previous_potential")
    if previous is not None and baseline is not None and missing_pairs(baseline, previous.elements):
        return (
            "fine-tuning keeps the baseline: give physics_baseline=previous_potential.baseline, not windows to derive"
        )
    if previous is not None:
        if elements is not None and set(elements) - set(previous.elements):
            return (
                f"the training data contain {sorted(set(elements) - set(previous.elements))}, which the "
                f"previous_potential (elements {previous.elements}) lacks: fine-tuning cannot add elements"
            )
        if previous.baseline != baseline:
            return (
                f"the previous_potential was fitted on the baseline {previous.baseline}, but physics_baseline is "
                f"{baseline}: fine-tuning must keep the baseline"
            )
    if "selection_chunk_size" in inputs:
        if "max_structures" not in inputs:
            return "selection_chunk_size is for selection: give max_structures too"
        if inputs["selection_chunk_size"].value <= 0:
            return f"selection_chunk_size must be a positive integer, got {inputs['selection_chunk_size'].value}"
    if "max_structures" in inputs and "pace_select" not in inputs["codes"]:
        return "selection (max_structures) needs codes.pace_select"
    if inputs["short_range_check"].value not in SHORT_RANGE_CHECKS:
        return f"short_range_check must be one of {list(SHORT_RANGE_CHECKS)}, got {inputs['short_range_check'].value!r}"
    return None


class TrainingWorkChain(WorkChain):
    """Train an ACE potential from labelled structures: import → split off a test set → subtract the physical
    baseline → D-optimal selection → the exact pacemaker configuration → training with restarts → ``.yace``,
    active set and a validation with the baseline added back.

    With ``previous_potential`` the fit starts from its coefficients (fine-tuning), selection counts its active set
    as already covered, and the graph links the new potential to the previous one.
    """

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
            help="A potential not repulsive below its training data (dimer and fcc scans): 'error' (exit code 440, "
            "every output still attached) or 'warning' (reported, exit 0).",
        )
        spec.input(
            "max_structures",
            valid_type=orm.Int,
            required=False,
            serializer=orm.to_aiida_type,
            help="Select at most this many training structures by D-optimality (only if there are more).",
        )
        spec.input(
            "selection_chunk_size",
            valid_type=orm.Int,
            required=False,
            serializer=orm.to_aiida_type,
            help="Select from chunks of this many structures first (one pace_select job after the other), then over "
            "their picks: bounds the memory of selection from a large pool to that of one chunk.",
        )
        spec.input(
            "preset",
            valid_type=orm.Str,
            default=lambda: orm.Str("moderate"),
            serializer=orm.to_aiida_type,
            help=f"Named pacemaker settings: {', '.join(list_presets())}.",
        )
        spec.input(
            "parameter_overrides",
            valid_type=orm.Dict,
            required=False,
            serializer=orm.to_aiida_type,
            help="pacemaker settings merged into the preset, section by section (e.g. {'fit': {'maxiter': 50}}).",
        )
        spec.input("previous_potential", valid_type=PacePotentialData, required=False, help="Fine-tune from it.")
        spec.input_namespace("codes", help="The pacemaker tools as AiiDA codes.")
        spec.input("codes.pacemaker", valid_type=orm.AbstractCode)
        spec.input("codes.pace_activeset", valid_type=orm.AbstractCode)
        spec.input("codes.pace_yaml2yace", valid_type=orm.AbstractCode)
        spec.input("codes.pace_select", valid_type=orm.AbstractCode, required=False)
        spec.input(
            "options",
            valid_type=dict,
            non_db=True,
            required=False,
            help="Scheduler options of the training job (resources, max_wallclock_seconds, ...).",
        )
        spec.input("max_iterations", valid_type=orm.Int, default=lambda: orm.Int(5), serializer=orm.to_aiida_type)
        spec.inputs.validator = _validate_inputs

        spec.outline(
            cls.setup,
            cls.prepare_data,
            cls.generate_parameters,
            if_(cls.should_select)(
                cls.setup_selection,
                while_(cls.should_run_chunk)(cls.run_chunk, cls.inspect_chunk),
                while_(cls.should_select_more)(cls.run_selection, cls.inspect_selection),
                cls.finish_selection,
            ),
            cls.run_training,
            cls.inspect_training,
            cls.run_finalisation,
            cls.inspect_finalisation,
            cls.validate,
        )
        spec.output("potential", valid_type=PacePotentialData, help="The potential: .yaml, .yace, .asi, baseline.")
        spec.output("metrics", valid_type=orm.Dict, help="Test errors with the baseline added back (E, F, stress).")
        spec.output("training_metrics", valid_type=orm.Dict, help="pacemaker's own train/test metrics.")
        spec.output("parameters", valid_type=orm.Dict, help="The exact pacemaker settings of the fit.")
        spec.output("training_set", valid_type=TrainingSetData, help="What was fitted: selected, residual.")
        spec.output("test_set", valid_type=TrainingSetData, help="The held-out structures, original labels.")
        spec.output("parity_plot", valid_type=orm.SinglefileData, help="Parity plot of the validation (PNG).")
        spec.output("selection_summary", valid_type=orm.Dict, required=False)
        spec.output("short_range", valid_type=orm.Dict, help="Dimer/fcc scans below each pair's shortest distance.")
        spec.output("short_range_plot", valid_type=orm.SinglefileData, help="The short-range curves (PNG).")

        spec.exit_code(410, "ERROR_SELECTION_FAILED", message="the structure selection failed: {message}")
        spec.exit_code(420, "ERROR_TRAINING_FAILED", message="the training failed: {message}")
        spec.exit_code(430, "ERROR_FINALISATION_FAILED", message="the {step} step failed: {message}")
        spec.exit_code(
            440,
            "ERROR_SHORT_RANGE_NOT_REPULSIVE",
            message="the potential is not repulsive below the shortest training distance of {pairs} (see the "
            "short_range output; every output is attached): use a ZBL baseline with windows from the data "
            "(physics_baseline={{'type': 'zbl'}}), or accept it with short_range_check='warning'",
        )

    # ------------------------------------------------------------------------------------------------------ steps
    def setup(self):
        if "structures_file" in self.inputs:
            self.ctx.data = import_training_set(self.inputs.structures_file)
        else:
            self.ctx.data = self.inputs.training_set
        self.ctx.baseline = self.inputs.get("physics_baseline")

    def prepare_data(self):
        """Hold out the test set (original labels, for the final validation) and subtract the baseline."""
        if "test_set" in self.inputs:
            train, self.ctx.test = self.ctx.data, self.inputs.test_set
        else:
            split = split_training_set(self.ctx.data, self.inputs.test_fraction, self.inputs.seed)
            train, self.ctx.test = split["train"], split["test"]
        if self.ctx.baseline is not None:
            if missing_pairs(self.ctx.baseline.get_dict(), train.elements):  # windows left to the data
                self.ctx.baseline = derive_baseline(train, self.ctx.baseline)
                self.report(f"baseline derived from the training data: {self.ctx.baseline.get_dict()}")
            self.ctx.train = subtract_baseline(train, self.ctx.baseline)
            self.ctx.train_test = subtract_baseline(self.ctx.test, self.ctx.baseline)
        else:
            self.ctx.train, self.ctx.train_test = train, self.ctx.test

    def generate_parameters(self):
        overrides = self.inputs.get("parameter_overrides", orm.Dict({}))
        self.ctx.parameters = generate_training_parameters(self.inputs.preset, overrides)

    def should_select(self):
        return "max_structures" in self.inputs and self.ctx.train.num_structures > self.inputs.max_structures.value

    def setup_selection(self):
        """The selector: the previous potential (its active set counted as covered) or, for a first fit, the
        unfitted basis of the coming fit."""
        previous = self.inputs.get("previous_potential")
        if previous is not None:
            self.ctx.selector, self.ctx.use_active_set = previous, previous.has_active_set
        else:
            self.ctx.selector = unfitted_potential(self.ctx.parameters, orm.List(self.ctx.train.elements))
            self.ctx.use_active_set = False
        self.ctx.picked, self.ctx.rounds, self.ctx.stop_reason = [], {}, ""
        size = self.ctx.train.num_structures
        self.ctx.candidates, self.ctx.chunking = list(range(size)), None
        chunk_size = self.inputs.get("selection_chunk_size")
        self.ctx.chunk_starts = list(range(0, size, chunk_size.value)) if chunk_size and size > chunk_size else []
        if self.ctx.chunk_starts:
            self.ctx.chunking = {"chunk_size": chunk_size.value, "chunks": len(self.ctx.chunk_starts), "candidates": 0}
            self.ctx.candidates, self.ctx.chunk_parts = [], {}

    def should_run_chunk(self):
        return bool(self.ctx.chunk_starts)

    def _current_chunk(self) -> int:
        """The number of the chunk last taken from ``chunk_starts``."""
        return self.ctx.chunking["chunks"] - len(self.ctx.chunk_starts) - 1

    def run_chunk(self):
        """One chunk of the pool on its own: its D-optimal picks become candidates for the rounds."""
        pool, start = self.ctx.train, self.ctx.chunk_starts.pop(0)
        k = self._current_chunk()
        members = orm.List(list(range(start, min(start + self.inputs.selection_chunk_size.value, pool.num_structures))))
        chunk = take_structures(pool, members)
        if not self.ctx.use_active_set and check_environments(chunk, basis_layout(self.ctx.selector), role="pool"):
            self.ctx.chunk_parts[f"whole_{k}"] = members  # too few environments for MaxVol on its own: all goes on
            return None
        self.ctx.chunk_parts[f"map_{k}"] = members
        node = self.submit(
            PaceSelectCalculation,
            code=self.inputs.codes.pace_select,
            pool=chunk,
            potential=self.ctx.selector,
            max_structures=self.inputs.max_structures,
            use_active_set=orm.Bool(self.ctx.use_active_set),
        )
        self.report(f"selection, chunk from structure {start}: PaceSelectCalculation<{node.pk}>")
        return ToContext(chunk=node)

    def inspect_chunk(self):
        k = self._current_chunk()
        if f"map_{k}" in self.ctx.chunk_parts:  # this chunk was submitted (not passed on whole)
            node = self.ctx.chunk
            if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
                del self.ctx.chunk_parts[f"map_{k}"]  # nothing in this chunk extends the active set
            elif not node.is_finished_ok:
                return self.exit_codes.ERROR_SELECTION_FAILED.format(
                    message=f"a chunk: [{node.exit_status}] {node.exit_message}"
                )
            else:
                self.ctx.chunk_parts[f"indices_{k}"] = node.outputs.indices
        if not self.ctx.chunk_starts:
            if not self.ctx.chunk_parts:
                return self.exit_codes.ERROR_SELECTION_FAILED.format(message="no chunk selected any structure")
            self.ctx.candidates = merge_picks(**self.ctx.chunk_parts).get_list()
            self.ctx.chunking["candidates"] = len(self.ctx.candidates)
        return None

    def should_select_more(self):
        """One pace_select call returns at most about as many structures as the basis has functions: select in
        rounds, each on what is left of the pool, until ``max_structures`` are picked or the pool runs dry."""
        wanted = self.inputs.max_structures.value
        if self.ctx.stop_reason or len(self.ctx.picked) >= wanted:
            return False
        if not [i for i in self.ctx.candidates if i not in set(self.ctx.picked)]:
            self.ctx.stop_reason = f"all {len(self.ctx.candidates)} candidates from the chunks were selected"
            return False
        if len(self.ctx.rounds) // 3 >= MAX_SELECTION_ROUNDS:
            self.ctx.stop_reason = f"{MAX_SELECTION_ROUNDS} rounds of selection"
            return False
        return True

    def run_selection(self):
        pool = self.ctx.train
        remaining = [i for i in self.ctx.candidates if i not in set(self.ctx.picked)]
        round_pool = pool if len(remaining) == pool.num_structures else take_structures(pool, orm.List(remaining))
        if round_pool is not pool and not self.ctx.use_active_set:
            too_few = check_environments(round_pool, basis_layout(self.ctx.selector), role="pool")
            if too_few:
                self.ctx.stop_reason = f"the rest of the pool is too small for another round: {too_few}"
                return None
        self.ctx.remaining = remaining
        node = self.submit(
            PaceSelectCalculation,
            code=self.inputs.codes.pace_select,
            pool=round_pool,
            potential=self.ctx.selector,
            max_structures=orm.Int(self.inputs.max_structures.value - len(self.ctx.picked)),
            use_active_set=orm.Bool(self.ctx.use_active_set),
        )
        self.report(f"selection round {len(self.ctx.rounds) // 3 + 1}: PaceSelectCalculation<{node.pk}>")
        return ToContext(selection=node)

    def inspect_selection(self):
        if self.ctx.stop_reason:
            return None
        node = self.ctx.selection
        if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
            self.ctx.stop_reason = "no structure left in the pool extends the active set"
            return None
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        k = len(self.ctx.rounds) // 3
        self.ctx.rounds.update(
            {
                f"map_{k}": orm.List(self.ctx.remaining),
                f"indices_{k}": node.outputs.indices,
                f"summary_{k}": node.outputs.summary,
            }
        )
        self.ctx.picked += [self.ctx.remaining[i] for i in node.outputs.indices.get_list()]
        return None

    def finish_selection(self):
        if not self.ctx.rounds:
            return self.exit_codes.ERROR_SELECTION_FAILED.format(message=self.ctx.stop_reason or "nothing selected")
        chunking = {"chunking": orm.Dict(self.ctx.chunking)} if self.ctx.chunking else {}
        gathered = gather_selection(
            self.ctx.train, stop_reason=orm.Str(self.ctx.stop_reason), **chunking, **self.ctx.rounds
        )
        self.ctx.train = gathered["selected"]
        summary = gathered["summary"]
        self.out("selection_summary", summary)
        message = f"selected {self.ctx.train.num_structures} of {self.inputs.max_structures.value} structures requested"
        if summary["shortfall"]:
            message += f": {summary['shortfall']}"
        self.report(message)
        return None

    def run_training(self):
        inputs = {
            "code": self.inputs.codes.pacemaker,
            "training_set": self.ctx.train,
            "test_set": self.ctx.train_test,
            "parameters": self.ctx.parameters,
            "metadata": {"options": dict(self.inputs.get("options", {}))},
        }
        if "previous_potential" in self.inputs:
            inputs["previous_potential"] = self.inputs.previous_potential
        node = self.submit(PaceTrainBaseWorkChain, pace=inputs, max_iterations=self.inputs.max_iterations)
        self.report(f"training: PaceTrainBaseWorkChain<{node.pk}>")
        return ToContext(training=node)

    def inspect_training(self):
        node = self.ctx.training
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(message=f"[{node.exit_status}] {node.exit_message}")
        self.ctx.fitted = node.outputs.potential
        return None

    def run_finalisation(self):
        """The LAMMPS .yace (pace_yaml2yace, a ShellJob) and the active set (pace_activeset), side by side."""
        shell_inputs = prepare_shell_job_inputs(
            self.inputs.codes.pace_yaml2yace,
            arguments=["{potential}", "-o", "potential.yace"],
            nodes={"potential": potential_file(self.ctx.fitted)},
            outputs=["potential.yace"],
        )
        yace = self.submit(ShellJob, **shell_inputs)
        activeset = self.submit(
            PaceActivesetCalculation,
            code=self.inputs.codes.pace_activeset,
            potential=self.ctx.fitted,
            training_set=self.ctx.train,
        )
        self.report(f"finalising: ShellJob<{yace.pk}> (pace_yaml2yace), PaceActivesetCalculation<{activeset.pk}>")
        return ToContext(yace=yace, activeset=activeset)

    def inspect_finalisation(self):
        for step, node in (("pace_yaml2yace", self.ctx.yace), ("pace_activeset", self.ctx.activeset)):
            if not node.is_finished_ok:
                return self.exit_codes.ERROR_FINALISATION_FAILED.format(
                    step=step, message=f"[{node.exit_status}] {node.exit_message}"
                )
        self.ctx.potential = assemble_potential(
            self.ctx.fitted, self.ctx.yace.outputs.potential_yace, self.ctx.activeset.outputs.potential
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
        self.out("potential", self.ctx.potential)
        self.out("metrics", validation["metrics"])
        self.out("parity_plot", validation["parity_plot"])
        self.out("training_metrics", self.ctx.training.outputs.metrics)
        self.out("parameters", self.ctx.parameters)
        self.out("training_set", self.ctx.train)
        self.out("test_set", self.ctx.test)

        short_range = check_short_range(self.ctx.potential, self.ctx.train)
        self.out("short_range", short_range["report"])
        self.out("short_range_plot", short_range["plot"])
        failing = short_range["report"]["not_repulsive"]
        if not failing:
            self.report("short range: every element pair is repulsive below its shortest training distance")
            return None
        self.report(f"short range: NOT repulsive below the shortest training distance for {', '.join(failing)}")
        if self.inputs.short_range_check.value == "error":
            return self.exit_codes.ERROR_SHORT_RANGE_NOT_REPULSIVE.format(pairs=", ".join(failing))
        return None
