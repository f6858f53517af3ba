"""`PaceSelectCalculation`: pick the most informative structures of a pool with ``pace_select`` (D-optimality).

How ``pace_select`` works, read in python-ace 0.4.0rc1 (``pyace/aceselect.py``, ``pyace/activelearning.py``):
every atom of every candidate is turned into its vector of **linear B-projections**, the values of the ACE basis
functions on that atom's environment. For each element, MaxVol picks as many rows (atomic environments) as the
basis has functions for that element, maximising the volume spanned (the D-optimal design, to ``gamma_tolerance``).
Structures are then ranked by how many of their atoms entered this active set, and the top ``-m`` are returned
(so large structures are preferred). With ``-a potential.asi`` the rows of an existing active set are appended as
already chosen (their structure index is -1), so only candidates that extend it come back. Consequences:

- At most about as many structures come back as the basis has functions (one active-set row per function and
  element); asking for more is silently not met by the tool, so this plugin reports requested vs returned.
- The linear projections do **not** depend on the fitted coefficients of the basis functions (checked: zeroing
  them changes nothing), only on the basis specification and the radial coefficients ``crad``. An unfitted basis,
  as pacemaker builds it before fitting (coefficients zero, ``crad`` = delta_nk, i.e. the bare radial functions),
  is therefore a valid selector: it picks a D-optimal set in the space of the basis the fit will use, before any
  label exists. :func:`~aiida_mlip_trainer.workflows.functions.selection.unfitted_potential` builds it in Python
  with the function pacemaker itself calls (``construct_bbasisconfiguration``); its YAML is byte-identical to the
  ``target_potential.yaml`` of ``pacemaker -dr`` (checked), without needing a dataset file.
- Every element of the selector basis needs at least as many atomic environments in the pool as it has functions,
  otherwise MaxVol is under-determined (``Insufficient atomic environments``); an active set passed with ``-a``
  supplies them.
- The memory limit only decides whether the tools switch to batches; it is soft and the tools were seen to use
  about twice of it, so the plugin passes half of the limit the user gives. The tools ``eval()`` the limit string:
  the plugin accepts only a number of bytes or ``<number> MB|GB`` and passes a plain integer.
"""

from __future__ import annotations

from aiida import orm

from ..data.operations import check_environments
from ..data.pace_potential import ASI_FILENAME, PacePotentialData
from ..data.training_set import TrainingSetData
from .pace_tool import COMMON_PARAMETERS, PaceToolCalculation, tool_options, validate_tool_parameters

__all__ = ("PaceSelectCalculation",)


class PaceSelectCalculation(PaceToolCalculation):
    """Run ``pace_select -p potential.yaml [-a potential.asi] -m N -o selected.pkl.gz pool.pckl.gzip``.

    Pass a ``pool`` of candidates (labelled or not), a selector ``potential`` (a fitted one, or the unfitted basis of
    :func:`aiida_mlip_trainer.workflows.functions.selection.unfitted_potential` before the first fit) and
    ``max_structures``. With
    ``use_active_set`` the potential's active set (``.asi``, from :class:`PaceActivesetCalculation`) counts as
    already covered, so only structures that extend it are picked. You get ``selected`` (the picked structures,
    labels kept, best first), ``indices`` (their positions in the pool, same order) and ``summary`` (requested vs
    returned and, when fewer came back, why).

    ``pace_select`` returns at most about as many structures as the basis has functions; when fewer than
    ``max_structures`` come back the job still finishes OK, but ``summary['shortfall']`` says why and a warning is
    logged (``verdi process report``). ``parameters`` may set ``gamma_tolerance``, ``batch_size``, ``maxvol_iters``,
    ``maxvol_refinement`` and ``memory_limit`` (bytes or ``'2GB'``; half of it is passed, because the tool's limit
    is soft and was seen to be overshot about twofold).
    """

    POTENTIAL_FILENAME = "potential.yaml"
    # Written only when use_active_set is set: pace_select picks up `<potential>.asi` next to the YAML by itself.
    ACTIVE_SET_FILENAME = "potential.asi"
    POOL_FILENAME = "pool.pckl.gzip"
    # `.pkl.gz`, not `.pckl.gzip`: pandas infers gzip only from the former, and pace_select writes what pandas infers.
    OUTPUT_FILENAME = "selected.pkl.gz"
    INDEX_COLUMN = "pool_index"
    PARSER_NAME = "mlip_trainer.pace_select"
    STDOUT_FILENAME = "pace_select.out"
    STDERR_FILENAME = "pace_select.err"
    EXIT_STATUS_FILENAME = "pace_select.exit_status"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("pool", valid_type=TrainingSetData, help="Candidate structures, labelled or not.")
        spec.input(
            "potential",
            valid_type=PacePotentialData,
            help="The selector: a fitted potential, or the unfitted basis of the coming fit (unfitted_potential).",
        )
        spec.input(
            "max_structures",
            valid_type=orm.Int,
            serializer=orm.to_aiida_type,
            help="How many structures to select at most (> 0).",
        )
        spec.input(
            "use_active_set",
            valid_type=orm.Bool,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Bool(False),
            help="Count the potential's active set (.asi) as covered (pace_select -a); the potential must have one.",
        )
        cls.define_tool_parameters(spec, "pace_select", COMMON_PARAMETERS)

        spec.output(
            "selected",
            valid_type=TrainingSetData,
            required=False,
            help="The selected structures of the pool, best first, with the pool's labels if it had them.",
        )
        spec.output(
            "indices", valid_type=orm.List, help="Positions of the selected structures in the pool, best first."
        )
        spec.output("summary", valid_type=orm.Dict, help="Requested vs returned, the reason for a shortfall, options.")
        spec.default_output_node = "summary"

        spec.exit_code(
            320,
            "ERROR_SELECT_FAILED",
            invalidates_cache=True,
            message="pace_select exited with status {status}: {detail}",
        )
        spec.exit_code(
            321,
            "ERROR_NO_SELECTION",
            invalidates_cache=True,
            message="pace_select finished without writing selected.pkl.gz. {detail}",
        )
        spec.exit_code(
            322,
            "ERROR_INVALID_SELECTION",
            invalidates_cache=True,
            message="the selection pace_select wrote cannot be used: {detail}",
        )
        cls.define_maxvol_exit_codes(
            spec,
            killed_remedy="Give a memory_limit or batch_size, or more memory.",
            data="pool",
            environments_remedy="give a larger pool, a larger batch_size or memory_limit, or use_active_set.",
        )
        spec.exit_code(
            323,
            "ERROR_NONE_SELECTED",
            message="no structure of the pool extends the active set beyond gamma tolerance {gamma}: the potential "
            "already covers this pool (every candidate's extrapolation grade is below the tolerance).",
        )

    def parse(self, retrieved_temporary_folder=None, existing_exit_code=None):
        """CalcJob's parse, with ERROR_NONE_SELECTED said as a report in words instead of aiida's warning
        ``output parser returned exit code<...>``: nothing new to select is how a selection ends (SelectionWorkChain
        stops its rounds on it), not a problem to warn a user about. The exit status is the same."""
        expected = f"output parser returned exit code<{self.exit_codes.ERROR_NONE_SELECTED.status}>"

        def not_expected(record) -> bool:
            return not record.getMessage().startswith(expected)

        logger = getattr(self.logger, "logger", self.logger)  # the Logger under aiida's LoggerAdapter
        logger.addFilter(not_expected)
        try:
            exit_code = super().parse(retrieved_temporary_folder, existing_exit_code)
        finally:
            logger.removeFilter(not_expected)
        if getattr(exit_code, "status", None) == self.exit_codes.ERROR_NONE_SELECTED.status:
            self.report(f"nothing selected: {exit_code.message}")
        return exit_code

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs, with a message that says what to change."""
        max_structures = inputs.get("max_structures")
        if max_structures is not None and max_structures.value <= 0:
            return f"max_structures must be a positive integer, got {max_structures.value}"
        parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
        message = validate_tool_parameters(parameters, COMMON_PARAMETERS)
        if message:
            return message
        if "pool" not in inputs or "potential" not in inputs:
            return None  # the missing required port is reported by the port itself
        pool, potential = inputs["pool"], inputs["potential"]
        if pool.num_structures == 0:
            return "the pool is empty: give at least one candidate structure"
        absent = sorted(set(pool.elements) - set(potential.elements))
        if absent:
            return (
                f"the pool contains {absent}, which the potential (elements {potential.elements}) does not describe: "
                "select with a potential (or unfitted basis) for all elements of the pool"
            )
        use_active_set = bool(inputs["use_active_set"].value) if "use_active_set" in inputs else False
        if use_active_set and not potential.has_active_set:
            return (
                "use_active_set is set but the potential has no active set (.asi): compute one with "
                "PaceActivesetCalculation, or leave use_active_set out"
            )
        batch_size = parameters.get("batch_size")
        if batch_size is not None and batch_size > pool.num_structures:
            return f"batch_size {batch_size} is larger than the pool ({pool.num_structures} structures)"
        return check_environments(pool, potential.basis_layout, role="pool", with_active_set=use_active_set)

    def prepare_for_submission(self, folder):
        parameters = self.inputs.parameters.get_dict() if "parameters" in self.inputs else {}
        frame = self.inputs.pool.to_dataframe()
        # Only the geometry goes in, plus the row's position in the pool: pace_select keeps the columns of the rows
        # it picks (df.iloc), so the parser reads the pool positions back from this column.
        frame = frame[["name", "ase_atoms"]].assign(**{self.INDEX_COLUMN: range(len(frame))})
        frame.to_pickle(folder.get_abs_path(self.POOL_FILENAME), compression="gzip", protocol=4)

        potential = self.inputs.potential
        with folder.open(self.POTENTIAL_FILENAME, "w", encoding="utf8") as handle:
            handle.write(potential.get_yaml())
        cmdline = ["-p", self.POTENTIAL_FILENAME]
        if self.inputs.use_active_set.value:
            content = potential.read_file(ASI_FILENAME)
            with folder.open(self.ACTIVE_SET_FILENAME, "wb") as handle:
                handle.write(content)
            cmdline += ["-a", self.ACTIVE_SET_FILENAME]
        cmdline += ["-m", str(self.inputs.max_structures.value), "-o", self.OUTPUT_FILENAME]
        cmdline += tool_options(parameters, memory_flag="-mem")
        cmdline.append(self.POOL_FILENAME)

        # A pandas pickle is read once by the parser and never kept: the `indices` output says what was picked.
        return self.tool_calcinfo(cmdline, retrieve_temporary=[self.OUTPUT_FILENAME])
