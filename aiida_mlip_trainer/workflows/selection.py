"""`SelectionWorkChain`: the one implementation of D-optimal structure selection, to a budget of structures or atoms.

Everything that selects (``TrainingWorkChain``, :func:`aiida_mlip_trainer.launch.select_structures`,
:func:`~aiida_mlip_trainer.launch.select_within_atoms`, the active-learning loop) runs this work chain; no other code
submits ``pace_select``. How ``pace_select`` itself works, and why an unfitted basis is a valid selector, is in the
docstring of :mod:`aiida_mlip_trainer.calculations.pace_select`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_

from ..calculations.pace_activeset import PaceActivesetCalculation
from ..calculations.pace_select import PaceSelectCalculation
from ..calculations.pace_tool import parse_memory_limit
from ..calculations.untrusted import refuses_altered_nodes
from ..data.operations import check_environments
from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from ..formats.basis import unfitted_basis_layout
from ..formats.pacemaker_input import validate_parameters
from .functions.selection import (
    assemble_selection,
    concatenate_structures,
    merge_picks,
    take_structures,
    unfitted_potential,
)
from .protocols import PROTOCOLS_DIRECTORY, ProtocolMixin, load_codes, set_job

__all__ = ("SelectionWorkChain", "chunk_size_for_memory")

STRATEGIES = ("dopt", "dopt+random")
ROUND_MODES = ("extend", "layers")
# Peak memory of one pace_select job (docs/benchmarks.md, "Memory of selection"; measured by
# benchmarks/selection_memory.py on pools of 10^3-5·10^4 copper cells of 32 atoms with 36 and 276 basis functions, rcut
# 5 and 6 Å): a fixed part (interpreter, pyace, the basis), and per atom of the pool its ASE and pandas share and
# atomic environment, plus about three float64 copies of its B-projections (one value per basis function of its
# element). The constants are the upper envelope of the measurements (no measured peak above the model; the least
# squares fit was up to 20 % below some), rounded up, so that chunks sized from them keep each job under its limit.
SELECT_BASE_BYTES = 151 * 2**20
SELECT_BYTES_PER_ATOM = 1028
SELECT_BYTES_PER_ATOM_FUNCTION = 25


def chunk_size_for_memory(memory_limit: int | str, mean_atoms: float, max_functions: int) -> int:
    """The number of pool structures one ``pace_select`` job may hold under ``memory_limit`` (bytes or ``'4GB'``),
    from the measured cost model above (``mean_atoms`` per structure, ``max_functions`` of the largest element
    block). At least 1."""
    limit = parse_memory_limit(memory_limit)
    per_structure = mean_atoms * (SELECT_BYTES_PER_ATOM + SELECT_BYTES_PER_ATOM_FUNCTION * max_functions)
    return max(1, int((limit - SELECT_BASE_BYTES) // per_structure))


def _value(inputs, key, default=None):
    node = inputs.get(key)
    return default if node is None else node.value


def validate_inputs(inputs, ctx):  # noqa: PLR0911,PLR0912 - one clear message per mistake
    """Refuse bad input before any job runs, with a message that says what to change.

    Exposed in another work chain without its pool and selector (``TrainingWorkChain``'s ``selection``), only the
    options are checked here; the outer work chain supplies and checks the rest."""
    if not inputs:
        return None
    exposed = "pool" not in ctx
    if not exposed and ("potential" in inputs) == ("parameters" in inputs):
        return (
            "give either a `potential` (a fitted selector) or the training `parameters` (to select with the unfitted "
            "basis of the coming fit), not both and not neither"
        )
    max_structures, max_atoms = _value(inputs, "max_structures"), _value(inputs, "max_atoms")
    if max_structures is None and max_atoms is None:
        return "give the budget: max_structures and/or max_atoms"
    for name, value in (("max_structures", max_structures), ("max_atoms", max_atoms)):
        if value is not None and value <= 0:
            return f"{name} must be a positive integer, got {value}"
    strategy = _value(inputs, "strategy", "dopt")
    if strategy not in STRATEGIES:
        return f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}"
    fraction = _value(inputs, "random_fraction", 0.5)
    if not 0.0 <= fraction <= 1.0:
        return f"random_fraction must be between 0 and 1, got {fraction}"
    if _value(inputs, "rounds", "extend") not in ROUND_MODES:
        return f"rounds must be one of {list(ROUND_MODES)}, got {_value(inputs, 'rounds')!r}"
    if _value(inputs, "max_rounds", 10) < 1:
        return f"max_rounds must be at least 1, got {_value(inputs, 'max_rounds')}"
    chunk_size = _value(inputs, "chunk_size")
    if chunk_size is not None and chunk_size < 1:
        return f"chunk_size must be a positive integer, got {chunk_size}"
    if "memory_limit" in inputs:
        if chunk_size is not None:
            return "give either chunk_size or memory_limit (from which the chunk size is derived), not both"
        try:
            parse_memory_limit(inputs["memory_limit"].value)
        except ValueError as error:
            return f"memory_limit: {error}"

    if "code" not in inputs.get("pace_select", {}):
        return "give pace_select.code (the pace_select code)"
    pool = inputs.get("pool")
    if exposed or pool is None:
        return None
    potential, covered = inputs.get("potential"), inputs.get("covered")
    if potential is not None:
        elements, layout = potential.elements, potential.basis_layout
    else:
        parameters = inputs["parameters"].get_dict()
        message = validate_parameters(parameters, elements=pool.elements)
        if message:
            return f"parameters: {message}"
        elements = parameters["potential"].get("elements", pool.elements)
        try:
            layout = unfitted_basis_layout(parameters, pool.elements)
        except ValueError as error:
            return f"parameters: {error}"
    for role, structures in (("pool", pool), ("covered", covered)):
        if structures is not None and set(structures.elements) - set(elements):
            return (
                f"the {role} contains {sorted(set(structures.elements) - set(elements))}, which the selector "
                f"(elements {sorted(elements)}) does not describe: select with a basis for all elements of the pool"
            )
    with_active_set = (
        bool(_value(inputs, "use_active_set", True)) and potential is not None and potential.has_active_set
    )
    if strategy == "dopt" or fraction < 1:
        known = [] if covered is None else [covered]
        too_few = check_environments(pool, layout, role="pool", with_active_set=with_active_set or bool(known))
        if too_few:
            return too_few
    needs_activeset = covered is not None or (_value(inputs, "rounds", "extend") == "extend" and not with_active_set)
    if needs_activeset and "code" not in inputs.get("pace_activeset", {}):
        return (
            "rounds='extend' (and `covered`) count what is already known through an active set: give "
            "pace_activeset.code, or rounds='layers'"
        )
    return None


def _nodes(pks: dict[str, int]) -> dict[str, orm.Data]:
    """The nodes of a context dictionary of pks (the context keeps pks, not nodes: see ``run_round``)."""
    return {key: orm.load_node(pk) for key, pk in pks.items()}


class SelectionWorkChain(ProtocolMixin, WorkChain):
    """Select the structures of a pool to label or fit next, by D-optimality (MaxVol, ``pace_select``), within a
    budget of structures and/or atoms.

    Pass the ``pool`` (a :class:`TrainingSetData`, labelled or not) and the selector: a fitted ``potential`` (its
    active set, when it has one and ``use_active_set`` is true, counts as covered) or, before the first fit, the
    training ``parameters``, whose unfitted basis is built by a calcfunction and used. ``covered`` are structures
    to treat as known (e.g. the current training set). The budget is ``max_structures`` and/or ``max_atoms`` (the
    labelling cost). ``strategy``:

    - ``"dopt"`` (default): D-optimal picks only, in rounds on the rest of the pool, because one ``pace_select``
      call returns at most about as many structures as the basis has functions. With ``rounds="extend"``
      (default) each round counts what earlier rounds picked as covered (an active set over them, by
      ``pace_activeset``), so it adds what extends them; ``"layers"`` keeps the same selector every round.
    - ``"dopt+random"``: a D-optimal share of ``1 - random_fraction`` of the budget, then a random share of the
      rest of the pool, seeded with ``seed``, to fill the budget (the pool's own distribution, e.g. its
      near-equilibrium structures, which D-optimal picks skip).

    ``chunk_size`` (or ``memory_limit``, from which it is derived with the measured cost per atom) bounds memory for
    large pools: chunks of the pool are selected one after the other, and the rounds run over their picks.
    ``pace_select`` and ``pace_activeset`` are the exposed inputs of those jobs (``code``, ``parameters``,
    ``metadata.options``). Outputs: ``selected`` (the picked structures: D-optimal share in the order picked, then the
    random share), ``indices`` (their positions in the pool), ``whole_pool`` (True when the pool fitted the budget
    and was taken as it is, with no job) and ``summary`` (requested against returned, in structures and atoms, the
    rounds, and why fewer came back). Every cut and merge is a calcfunction.
    Start from :meth:`get_builder_from_protocol`, which fills the budget and the jobs from a protocol.
    """

    _protocol_file = PROTOCOLS_DIRECTORY / "selection.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        codes: Mapping[str, orm.AbstractCode | str],
        pool: TrainingSetData | None = None,
        protocol: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        options: Mapping[str, Any] | None = None,
        **inputs: Any,
    ):
        """A builder with the budget, the strategy and the jobs filled from ``protocol`` (``fast``, ``moderate``
        (default), ``precise``; see :meth:`get_available_protocols` and ``workflows/protocols/selection.yaml``).

        ``codes`` maps ``pace_select`` and (for ``rounds="extend"`` and ``covered``) ``pace_activeset`` to codes or
        code labels; ``pool`` is the :class:`TrainingSetData` to select from (None when an outer work chain supplies
        it); ``overrides`` is merged into the protocol key by key (e.g. ``{"max_structures": None, "max_atoms":
        5000}``); ``options`` are merged last into every job's ``metadata.options``, whose ``resources`` default to
        one process in the form each code's scheduler takes. Other keyword arguments are inputs of the work chain
        (``potential``, ``parameters``, ``covered``, ...), set last."""
        if "pace_select" not in codes:
            raise ValueError("codes: give a code for pace_select (and pace_activeset, for rounds='extend')")
        codes = load_codes(codes)
        values = cls.get_protocol_inputs(protocol, overrides)
        set_job(values.setdefault("pace_select", {}), codes["pace_select"], options)
        if "pace_activeset" in codes:
            set_job(values.setdefault("pace_activeset", {}), codes["pace_activeset"], options)
        else:
            values.pop("pace_activeset", None)
        if pool is not None:
            values["pool"] = pool
        return cls.builder_with(values, inputs)

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("pool", valid_type=TrainingSetData, help="Candidate structures, labelled or not.")
        spec.input(
            "potential",
            valid_type=PacePotentialData,
            required=False,
            help="The selector: a fitted potential (its active set counts as covered with use_active_set).",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            required=False,
            serializer=orm.to_aiida_type,
            help="Training parameters (input.yaml sections): their unfitted basis is the selector, before any fit.",
        )
        spec.input(
            "use_active_set",
            valid_type=orm.Bool,
            default=lambda: orm.Bool(True),
            serializer=orm.to_aiida_type,
            help="Count the potential's active set (.asi), when it has one, as covered.",
        )
        spec.input(
            "covered",
            valid_type=TrainingSetData,
            required=False,
            help="Structures already known (e.g. the training set so far): only what extends them is picked.",
        )
        spec.input("max_structures", valid_type=orm.Int, required=False, serializer=orm.to_aiida_type)
        spec.input(
            "max_atoms",
            valid_type=orm.Int,
            required=False,
            serializer=orm.to_aiida_type,
            help="Budget in atoms (the labelling cost): structures are taken while their atoms fit.",
        )
        spec.input(
            "strategy",
            valid_type=orm.Str,
            default=lambda: orm.Str("dopt"),
            serializer=orm.to_aiida_type,
            help=f"One of {list(STRATEGIES)}.",
        )
        spec.input(
            "random_fraction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            serializer=orm.to_aiida_type,
            help="With strategy 'dopt+random': the share of the budget filled at random.",
        )
        spec.input("seed", valid_type=orm.Int, default=lambda: orm.Int(0), serializer=orm.to_aiida_type)
        spec.input(
            "rounds",
            valid_type=orm.Str,
            default=lambda: orm.Str("extend"),
            serializer=orm.to_aiida_type,
            help="'extend': each round counts the earlier picks as covered; 'layers': the same selector each round.",
        )
        spec.input("max_rounds", valid_type=orm.Int, default=lambda: orm.Int(10), serializer=orm.to_aiida_type)
        spec.input(
            "chunk_size",
            valid_type=orm.Int,
            required=False,
            serializer=orm.to_aiida_type,
            help="Select from chunks of this many structures first, then over their picks (bounded memory).",
        )
        spec.input(
            "memory_limit",
            valid_type=(orm.Str, orm.Int),
            required=False,
            serializer=orm.to_aiida_type,
            help="Memory one pace_select job may use (bytes or '4GB'): the chunk size is derived from it, and it is "
            "passed to the jobs unless their own parameters set one.",
        )
        spec.expose_inputs(
            PaceSelectCalculation,
            namespace="pace_select",
            exclude=("pool", "potential", "max_structures", "use_active_set"),
        )
        spec.expose_inputs(
            PaceActivesetCalculation,
            namespace="pace_activeset",
            exclude=("potential", "training_set"),
            namespace_options={"required": False, "populate_defaults": False},
        )
        spec.inputs.validator = refuses_altered_nodes(validate_inputs)

        spec.outline(
            cls.setup,
            while_(cls.should_run_chunk)(cls.run_chunk, cls.inspect_chunk),
            while_(cls.should_run_round)(
                if_(cls.round_needs_active_set)(cls.run_active_set, cls.inspect_active_set),
                if_(cls.round_is_possible)(cls.run_round, cls.inspect_round),
            ),
            cls.results,
        )
        spec.output("selected", valid_type=TrainingSetData, help="The picked structures, D-optimal share first.")
        spec.output("indices", valid_type=orm.List, help="Their positions in the pool, in the same order.")
        spec.output("summary", valid_type=orm.Dict, help="Requested vs returned (structures, atoms), rounds, why.")
        spec.output(
            "whole_pool",
            valid_type=orm.Bool,
            help="True when the pool fitted the budget and was taken whole, without selecting.",
        )
        spec.exit_code(
            521,
            "ERROR_SELECT_JOB_FAILED",
            message="a pace_select job failed: PaceSelectCalculation<{pk}> [{status}] {message}",
        )
        spec.exit_code(
            522,
            "ERROR_ACTIVESET_JOB_FAILED",
            message="the active set over the structures known so far failed: PaceActivesetCalculation<{pk}> "
            "[{status}] {message}",
        )
        spec.exit_code(630, "ERROR_NOTHING_SELECTED", message="nothing was selected: {reason}")

    # ------------------------------------------------------------------------------------------------------- setup
    def setup(self):
        pool = self.inputs.pool
        natoms = pool.get_arrays()["natoms"]
        self.ctx.budget = {
            "max_structures": _value(self.inputs, "max_structures"),
            "max_atoms": _value(self.inputs, "max_atoms"),
            "strategy": self.inputs.strategy.value,
            "random_fraction": self.inputs.random_fraction.value if self.inputs.strategy.value != "dopt" else 0.0,
            "seed": self.inputs.seed.value,
        }
        share = 1.0 - self.ctx.budget["random_fraction"]
        self.ctx.dopt_structures = (
            None if self.ctx.budget["max_structures"] is None else int(round(share * self.ctx.budget["max_structures"]))
        )
        self.ctx.dopt_atoms = None if self.ctx.budget["max_atoms"] is None else share * self.ctx.budget["max_atoms"]
        self.ctx.mean_atoms = float(natoms.mean())
        self.ctx.picked, self.ctx.picked_atoms = [], 0
        self.ctx.rounds, self.ctx.round = {}, 0
        self.ctx.stop_reason = None
        self.ctx.whole_pool = False  # the pool fits the budget: taken as it is, nothing selected
        self.ctx.candidates = list(range(pool.num_structures))
        self.ctx.chunks, self.ctx.chunk_parts, self.ctx.chunking = [], {}, None

        fits = (
            self.ctx.budget["max_structures"] is None or pool.num_structures <= self.ctx.budget["max_structures"]
        ) and (self.ctx.budget["max_atoms"] is None or pool.num_atoms <= self.ctx.budget["max_atoms"])
        if fits:
            self.ctx.whole_pool = True
            self.ctx.stop_reason = "the whole pool fits the budget: nothing to select"
            return
        if self.ctx.dopt_structures == 0 or (self.ctx.dopt_atoms is not None and self.ctx.dopt_atoms < natoms.min()):
            self.ctx.stop_reason = "the D-optimal share of the budget is empty (random_fraction)"
            return

        if "potential" in self.inputs:
            self.ctx.selector = self.inputs.potential
        else:
            self.ctx.selector = unfitted_potential(self.inputs.parameters, orm.List(pool.elements))
        self.ctx.use_asi = bool(self.inputs.use_active_set.value) and self.ctx.selector.has_active_set
        self.ctx.layout = self.ctx.selector.basis_layout

        chunk_size = _value(self.inputs, "chunk_size")
        if "memory_limit" in self.inputs:
            max_functions = max(spec["num_functions"] for spec in self.ctx.layout.values())
            chunk_size = chunk_size_for_memory(self.inputs.memory_limit.value, self.ctx.mean_atoms, max_functions)
        if chunk_size is not None and pool.num_structures > chunk_size:
            starts = range(0, pool.num_structures, chunk_size)
            self.ctx.chunks = [[start, min(start + chunk_size, pool.num_structures)] for start in starts]
            self.ctx.chunking = {"chunk_size": chunk_size, "chunks": len(self.ctx.chunks), "candidates": 0}
        self.report(
            f"selecting from {pool.num_structures} structures ({pool.num_atoms} atoms) with "
            f"{self.ctx.selector.__class__.__name__}<{self.ctx.selector.pk}>: budget {self._budget_text()}"
            + (f", in {len(self.ctx.chunks)} chunks of {chunk_size}" if self.ctx.chunks else "")
        )

    def _budget_text(self) -> str:
        budget = self.ctx.budget
        parts = [f"{budget['max_structures']} structures"] if budget["max_structures"] is not None else []
        parts += [f"{budget['max_atoms']} atoms"] if budget["max_atoms"] is not None else []
        text = " and ".join(parts)
        if budget["strategy"] == "dopt+random":
            text += f", {100 * budget['random_fraction']:.0f} % of it at random (seed {budget['seed']})"
        return text

    def _select_inputs(self, pool: TrainingSetData, requested: int, selector, use_active_set: bool) -> AttributeDict:
        inputs = AttributeDict(self.exposed_inputs(PaceSelectCalculation, namespace="pace_select"))
        inputs.update(
            pool=pool, potential=selector, max_structures=orm.Int(requested), use_active_set=orm.Bool(use_active_set)
        )
        if "memory_limit" in self.inputs:
            parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
            if "memory_limit" not in parameters:
                inputs["parameters"] = orm.Dict({**parameters, "memory_limit": self.inputs.memory_limit.value})
        return inputs

    # ------------------------------------------------------------------------------------------------------ chunks
    def should_run_chunk(self):
        return bool(self.ctx.chunks) and self.ctx.stop_reason is None

    def run_chunk(self):
        """One chunk of the pool on its own: its D-optimal picks become candidates for the rounds."""
        start, stop = self.ctx.chunks[0]
        k = self.ctx.chunking["chunks"] - len(self.ctx.chunks)
        members = orm.List(list(range(start, stop)))
        chunk = take_structures(self.inputs.pool, members)
        if not self.ctx.use_asi and check_environments(chunk, self.ctx.layout, role="pool"):
            self.ctx.chunk_parts[f"whole_{k}"] = members.pk  # too few environments for MaxVol on its own: all goes on
            return None
        self.ctx.chunk_parts[f"map_{k}"] = members.pk
        requested = self.ctx.dopt_structures or max(1, math.ceil(1.5 * self.ctx.dopt_atoms / self.ctx.mean_atoms))
        node = self.submit(
            PaceSelectCalculation, **self._select_inputs(chunk, requested, self.ctx.selector, self.ctx.use_asi)
        )
        chunks = self.ctx.chunking["chunks"]
        self.report(f"chunk {k + 1} of {chunks} (structures {start}-{stop - 1}): {node.process_label}<{node.pk}>")
        return ToContext(chunk=node)

    def inspect_chunk(self):
        self.ctx.chunks.pop(0)
        k = self.ctx.chunking["chunks"] - len(self.ctx.chunks) - 1
        if f"map_{k}" in self.ctx.chunk_parts:  # submitted, not passed on whole
            node = self.ctx.chunk
            if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
                del self.ctx.chunk_parts[f"map_{k}"]  # nothing in this chunk extends the active set
            elif not node.is_finished_ok:
                return self.exit_codes.ERROR_SELECT_JOB_FAILED.format(
                    pk=node.pk, status=node.exit_status, message=node.exit_message
                )
            else:
                self.ctx.chunk_parts[f"indices_{k}"] = node.outputs.indices.pk
        if not self.ctx.chunks:
            if not self.ctx.chunk_parts:
                self.ctx.candidates = []
                self.ctx.stop_reason = "no chunk of the pool extends the active set"
            else:
                self.ctx.candidates = merge_picks(**_nodes(self.ctx.chunk_parts)).get_list()
            self.ctx.chunking["candidates"] = len(self.ctx.candidates)
        return None

    # ------------------------------------------------------------------------------------------------------ rounds
    def _dopt_share_full(self) -> bool:
        if self.ctx.dopt_structures is not None and len(self.ctx.picked) >= self.ctx.dopt_structures:
            return True
        return self.ctx.dopt_atoms is not None and self.ctx.picked_atoms >= self.ctx.dopt_atoms

    def should_run_round(self):
        """Another round of pace_select on the rest of the candidates, until the D-optimal share of the budget is
        picked, the candidates run dry, nothing extends what is known, or ``max_rounds`` is reached."""
        if self.ctx.stop_reason is not None or self._dopt_share_full():
            return False
        picked = set(self.ctx.picked)
        self.ctx.remaining = [i for i in self.ctx.candidates if i not in picked]
        if not self.ctx.remaining:
            self.ctx.stop_reason = (
                f"all {len(self.ctx.candidates)} candidates from the chunks were selected"
                if self.ctx.chunking
                else f"the whole pool ({self.inputs.pool.num_structures} structures) was selected"
            )
            return False
        if self.ctx.round >= self.inputs.max_rounds.value:
            self.ctx.stop_reason = f"max_rounds ({self.inputs.max_rounds.value}) reached"
            return False
        return True

    def round_needs_active_set(self):
        """With rounds='extend', what is known (``covered`` and the earlier rounds' picks) is counted as covered
        through an active set over it, computed with the selector basis. When the selector's own active set is in
        use and no ``covered`` set is given, it cannot be merged with the picks: the rounds then keep it (layers)."""
        self.ctx.round_selector, self.ctx.round_use_asi = self.ctx.selector, self.ctx.use_asi
        covered = self.inputs.get("covered")
        if self.inputs.rounds.value != "extend" or (self.ctx.use_asi and covered is None):
            return False
        return bool(self.ctx.picked) or (covered is not None and not self.ctx.use_asi)

    def run_active_set(self):
        known = [self.inputs.covered] if "covered" in self.inputs else []
        if self.ctx.picked:
            known.append(take_structures(self.inputs.pool, orm.List(list(self.ctx.picked))))
        union = known[0] if len(known) == 1 else concatenate_structures(**{f"set_{i}": s for i, s in enumerate(known)})
        too_few = check_environments(union, self.ctx.layout, role="structures known so far")
        if too_few:
            self.ctx.stop_reason = (
                f"round {self.ctx.round + 1}: no active set can mark what is known as covered: {too_few}"
            )
            return None
        inputs = AttributeDict(self.exposed_inputs(PaceActivesetCalculation, namespace="pace_activeset"))
        parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
        parameters["all_atoms"] = True  # geometry only: the pool may be unlabelled, and every atom counts
        parameters.pop("force_error_threshold", None)
        if "memory_limit" in self.inputs and "memory_limit" not in parameters:
            parameters["memory_limit"] = self.inputs.memory_limit.value
        inputs.update(potential=self.ctx.selector, training_set=union, parameters=orm.Dict(parameters))
        node = self.submit(PaceActivesetCalculation, **inputs)
        self.report(f"round {self.ctx.round + 1}: active set over what is known, {node.process_label}<{node.pk}>")
        return ToContext(activeset=node)

    def inspect_active_set(self):
        if self.ctx.stop_reason is not None:
            return None
        node = self.ctx.activeset
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_ACTIVESET_JOB_FAILED.format(
                pk=node.pk, status=node.exit_status, message=node.exit_message
            )
        self.ctx.round_selector, self.ctx.round_use_asi = node.outputs.potential, True
        return None

    def round_is_possible(self):
        return self.ctx.stop_reason is None

    def run_round(self):
        pool, remaining = self.inputs.pool, self.ctx.remaining
        whole = len(remaining) == pool.num_structures
        mapping = orm.List(remaining)
        round_pool = pool if whole else take_structures(pool, mapping)
        if not whole and not self.ctx.round_use_asi:
            too_few = check_environments(round_pool, self.ctx.layout, role="rest of the pool")
            if too_few:
                self.ctx.stop_reason = f"round {self.ctx.round + 1}: too few environments for MaxVol: {too_few}"
                return None
        wanted = []
        if self.ctx.dopt_structures is not None:
            wanted.append(self.ctx.dopt_structures - len(self.ctx.picked))
        if self.ctx.dopt_atoms is not None:
            # D-optimal picks are larger than average: ask for 1.5 times what the average size would fill
            wanted.append(max(1, math.ceil(1.5 * (self.ctx.dopt_atoms - self.ctx.picked_atoms) / self.ctx.mean_atoms)))
        requested = max(1, min(min(wanted), len(remaining)))
        # The context holds the pk of the mapping node and the indices as a plain list: a List node in the context
        # is walked item by item (each item a database read) at every step, quadratic in the pool size.
        mapping.store()
        self.ctx.round_map, self.ctx.round_map_pk = list(remaining), mapping.pk
        inputs = self._select_inputs(round_pool, requested, self.ctx.round_selector, self.ctx.round_use_asi)
        node = self.submit(PaceSelectCalculation, **inputs)
        self.report(
            f"round {self.ctx.round + 1}: {requested} of {len(remaining)} structures requested, "
            f"{node.process_label}<{node.pk}>"
        )
        return ToContext(selection=node)

    def inspect_round(self):
        if self.ctx.stop_reason is not None:
            return None
        node = self.ctx.selection
        if node.exit_status == PaceSelectCalculation.exit_codes.ERROR_NONE_SELECTED.status:
            self.ctx.stop_reason = (
                f"round {self.ctx.round + 1}: no structure left in the pool extends the active set of what is known "
                "(the rest is interpolation for this basis, gamma within the tolerance)"
            )
            return None
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_SELECT_JOB_FAILED.format(
                pk=node.pk, status=node.exit_status, message=node.exit_message
            )
        k = self.ctx.round
        self.ctx.rounds.update(
            {
                f"map_{k}": self.ctx.round_map_pk,
                f"indices_{k}": node.outputs.indices.pk,
                f"summary_{k}": node.outputs.summary.pk,
            }
        )
        natoms = self.inputs.pool.get_arrays()["natoms"]
        picks = [self.ctx.round_map[i] for i in node.outputs.indices.get_list()]
        self.ctx.picked += picks
        self.ctx.picked_atoms += int(natoms[picks].sum())
        self.ctx.round += 1
        return None

    # ----------------------------------------------------------------------------------------------------- results
    def results(self):
        random_share = self.ctx.budget["strategy"] == "dopt+random" and self.ctx.budget["random_fraction"] > 0
        whole_pool = self.ctx.whole_pool
        if not self.ctx.rounds and not random_share and not whole_pool:
            return self.exit_codes.ERROR_NOTHING_SELECTED.format(reason=self.ctx.stop_reason or "no round ran")
        if not self.ctx.rounds and random_share and not whole_pool:
            self.report(f"no D-optimal pick ({self.ctx.stop_reason}): the whole budget is filled at random")
        extra = {"chunking": orm.Dict(self.ctx.chunking)} if self.ctx.chunking else {}
        outputs = assemble_selection(
            self.inputs.pool,
            budget=orm.Dict({**self.ctx.budget, "whole_pool": whole_pool}),
            stop_reason=orm.Str(self.ctx.stop_reason or ""),
            **extra,
            **_nodes(self.ctx.rounds),
        )
        summary = outputs["summary"].get_dict()
        if not summary["returned"]:
            return self.exit_codes.ERROR_NOTHING_SELECTED.format(reason=summary["shortfall"] or "no structure fits")
        self.out_many(outputs)
        message = f"selected {summary['returned']} structures ({summary['returned_atoms']} atoms)"
        if summary["shortfall"]:
            message += f", fewer than the budget: {summary['shortfall']}"
        self.report(message)
        return None
