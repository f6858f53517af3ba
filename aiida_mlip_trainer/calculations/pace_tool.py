"""What the CalcJobs of the pacemaker tools share: the base class (code, resources, exit-status file, retrieval)
and the options of pace_select / pace_activeset, checked and turned into command-line numbers."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob

from ..data.training_set import TrainingSetData
from .job_options import guard_environment_variables
from .untrusted import refuses_altered_nodes
from .versions import VERSIONS_FILENAME, version_probe

__all__ = (
    "ACTIVESET_PARAMETERS",
    "COMMON_PARAMETERS",
    "PaceToolCalculation",
    "check_previous_potential",
    "check_training_sets",
    "number_argument",
    "parse_memory_limit",
    "tool_options",
    "validate_tool_parameters",
    "watchdog_lines",
)

# The tools' memory units are binary (pyace.aceselect.compute_mem_limit: GB = 2**30, MB = 2**20).
_MEMORY_UNITS = {"": 1, "B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
MIN_MEMORY_LIMIT = 2**20

# Keys of the `parameters` Dict of PaceSelectCalculation / PaceActivesetCalculation.
COMMON_PARAMETERS = ("gamma_tolerance", "batch_size", "maxvol_iters", "maxvol_refinement", "memory_limit")
ACTIVESET_PARAMETERS = (*COMMON_PARAMETERS, "full", "all_atoms", "force_error_threshold")


def parse_memory_limit(value: int | str) -> int:
    """The memory limit in bytes, from a number of bytes or a string such as ``"2GB"``/``"500 MB"`` (binary units,
    as the pace tools read them). Raises ValueError with what to write instead."""
    if isinstance(value, bool):
        raise ValueError(f"memory_limit must be a number of bytes or a string like '2GB', got {value!r}")
    if isinstance(value, numbers.Integral):
        limit = int(value)
    elif isinstance(value, str) and (match := _MEMORY.match(value)):
        limit = int(float(match.group(1)) * _MEMORY_UNITS[(match.group(2) or "").upper()])
    else:
        raise ValueError(f"memory_limit must be a number of bytes or a string like '2GB' or '500MB', got {value!r}")
    if limit < MIN_MEMORY_LIMIT:
        raise ValueError(f"memory_limit {value!r} is below 1 MB: give the memory the job may use, e.g. '2GB'")
    return limit


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0


def validate_tool_parameters(parameters: Mapping[str, Any], allowed: Sequence[str]) -> str | None:
    """Return a message saying what to change, or None when ``parameters`` are valid options of a pace tool."""
    unknown = sorted(set(parameters) - set(allowed))
    if unknown:
        return f"unknown parameter(s) {unknown}; allowed: {list(allowed)}"
    gamma = parameters.get("gamma_tolerance")
    if gamma is not None and not (isinstance(gamma, numbers.Real) and not isinstance(gamma, bool) and gamma >= 1.0):
        return f"gamma_tolerance must be a number >= 1 (MaxVol's tolerance, default 1.01), got {gamma!r}"
    for key in ("batch_size", "maxvol_iters", "maxvol_refinement"):
        if key in parameters and not _is_positive_int(parameters[key]):
            return f"{key} must be a positive integer, got {parameters[key]!r}"
    if "memory_limit" in parameters:
        try:
            parse_memory_limit(parameters["memory_limit"])
        except ValueError as exc:
            return str(exc)
    for key in ("full", "all_atoms"):
        if key in parameters and not isinstance(parameters[key], bool):
            return f"{key} must be true or false, got {parameters[key]!r}"
    threshold = parameters.get("force_error_threshold")
    if threshold is not None and not (
        isinstance(threshold, numbers.Real) and not isinstance(threshold, bool) and threshold >= 0
    ):
        return f"force_error_threshold must be a number >= 0 in eV/Å (0: automatic, Q3 + 1.5 IQR), got {threshold!r}"
    return None


def tool_options(parameters: dict, *, memory_flag: str) -> list[str]:
    """The command-line options of pace_select / pace_activeset for the options the user set (others: defaults).

    Every value is written by the plugin as a plain number: pace_select passes its memory limit to Python's
    ``eval``, so no string from the parameters may ever reach these arguments."""
    options = []
    for key, flag in (
        ("gamma_tolerance", "-g"),
        ("batch_size", "-b"),
        ("maxvol_iters", "-i"),
        ("maxvol_refinement", "-r"),
    ):
        if key in parameters:
            options += [flag, number_argument(parameters[key], key)]
    if "memory_limit" in parameters:
        # The tools' limit is soft (seen overshot about twofold): pass half, as a plain integer of bytes.
        options += [memory_flag, number_argument(parse_memory_limit(parameters["memory_limit"]) // 2, "memory_limit")]
    return options


def number_argument(value, name: str) -> str:
    """``value`` as a command-line number (``"100"``, ``"1.01"``), or ValueError when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return str(int(value)) if isinstance(value, numbers.Integral) else repr(float(value))


def check_training_sets(training_set, test_set, tool: str) -> str | None:
    """A message when the training set (and test set) of a fit cannot be fitted by ``tool``: unlabelled, a test set
    with other elements, or residuals on another baseline; else None."""
    baseline = training_set.base.attributes.get("baseline", None)
    if not training_set.labelled:
        return f"the training_set has no labels (energies and forces): {tool} cannot fit an unlabelled pool"
    if test_set is None:
        return None
    if not test_set.labelled:
        return "the test_set has no labels (energies and forces)"
    extra = sorted(set(test_set.elements) - set(training_set.elements))
    if extra:
        return f"the test_set contains {extra}, which the training_set lacks"
    if test_set.base.attributes.get("baseline", None) != baseline:
        return "the test_set and the training_set must be residuals on the same baseline (or both on none)"
    return None


def check_previous_potential(previous, elements, baseline) -> str | None:
    """A message when a fit for ``elements`` on ``baseline`` cannot start from the potential ``previous``."""
    expected = sorted(elements)
    if sorted(previous.elements) != expected:
        return (
            f"previous_potential has elements {previous.elements} but this fit is for {expected}: "
            "continuing or fine-tuning needs the same elements"
        )
    if previous.baseline != baseline:
        return (
            f"previous_potential was fitted on the baseline {previous.baseline} but this training_set is on "
            f"{baseline}: fine-tuning must keep the baseline"
        )
    return None


def watchdog_lines(soft_limit: int | None, input_filename: str, marker_filename: str) -> tuple[list[str], list[str]]:
    """``(prepend, append)`` job-script lines of the soft walltime: a fitting tool has no time limit of its own, so
    a watchdog stops it (SIGTERM) ``soft_limit`` seconds in, a margin before the scheduler would kill the whole job,
    so that its interim results and logs are retrieved and the fit can continue from them. It matches only the job
    script's own child started on ``input_filename``, and leaves ``marker_filename`` behind, so that the parser can
    tell its stop from a kill by someone else. ``([], [])`` without a limit. Plugin-made text only."""
    if soft_limit is None:
        return [], []
    limit = number_argument(int(soft_limit), "soft walltime")
    return (
        [
            f"( sleep {limit} && touch {marker_filename} && "
            f"pkill -TERM -P $$ -f {input_filename} ) &\nMLIP_TRAINER_WATCHDOG=$!"
        ],
        ['pkill -P "$MLIP_TRAINER_WATCHDOG" 2>/dev/null || true'],
    )


class PaceToolCalculation(CalcJob):
    """The base of the CalcJobs that run one pacemaker tool (``pacemaker``, ``pace_select``, ``pace_activeset``).

    A subclass names its files and parser and declares its own inputs, outputs and exit codes; this class gives
    what all of them share: one MPI process on one machine by default, the input validator behind the check for
    altered nodes (:func:`~aiida_mlip_trainer.calculations.untrusted.refuses_altered_nodes` around the subclass's
    ``validate_inputs``), the ``versions`` output, and the job script around the tool (:meth:`tool_calcinfo`):
    the versions probe before it, its exit status written to ``EXIT_STATUS_FILENAME`` right after it, and its
    stdout, stderr, exit status and versions always retrieved, so that a failed run keeps its logs.
    """

    PARSER_NAME: ClassVar[str]
    STDOUT_FILENAME: ClassVar[str]
    STDERR_FILENAME: ClassVar[str]
    # Written by the job script right after the tool returns; absent when the job was killed from outside.
    EXIT_STATUS_FILENAME: ClassVar[str]

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs.validator = refuses_altered_nodes(cls.validate_inputs)
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = cls.PARSER_NAME
        guard_environment_variables(spec.inputs)  # names must be identifiers: aiida-core exports them unescaped
        spec.output(
            "versions",
            valid_type=orm.Dict,
            required=False,
            help="Versions of python-ace, tensorpotential, TensorFlow, ... that ran, read on the machine of the job.",
        )

    @classmethod
    def define_training_sets(cls, spec) -> None:
        """The ``training_set`` and optional ``test_set`` inputs of a fit."""
        spec.input("training_set", valid_type=TrainingSetData, help="Labelled structures to fit.")
        spec.input(
            "test_set",
            valid_type=TrainingSetData,
            required=False,
            help="Labelled structures held out of the fit and reported as test errors.",
        )

    @classmethod
    def define_tool_parameters(cls, spec, tool: str, allowed: Sequence[str]) -> None:
        """The optional ``parameters`` input of pace_select / pace_activeset (checked by
        :func:`validate_tool_parameters` against ``allowed``)."""
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help=f"{tool} options: {', '.join(allowed)}.",
        )

    @classmethod
    def define_maxvol_exit_codes(cls, spec, *, killed_remedy: str, data: str, environments_remedy: str) -> None:
        """Exit codes ERROR_KILLED (the tool was killed from outside) and ERROR_MAXVOL_UNDERDETERMINED of pace_select
        and pace_activeset, with what the user of each tool can change."""
        tool = cls.STDOUT_FILENAME.rsplit(".", 1)[0]
        spec.exit_code(
            410,
            "ERROR_KILLED",
            invalidates_cache=True,
            message=f"{tool} was stopped from outside (exit status {{status}}): walltime or memory. {killed_remedy} "
            "{detail}",
        )
        spec.exit_code(
            350,
            "ERROR_MAXVOL_UNDERDETERMINED",
            invalidates_cache=True,
            message="MaxVol was under-determined: {detail}. Each element needs at least as many atomic environments "
            f"(in the {data}, or in each batch) as the basis has functions: {environments_remedy}",
        )

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs, with a message that says what to change (None: valid)."""
        return None

    def tool_calcinfo(
        self,
        cmdline: list[str],
        *,
        retrieve: Iterable[str] = (),
        retrieve_temporary: Iterable[str] = (),
        prepend: Iterable[str] = (),
        append: Iterable[str] = (),
    ) -> datastructures.CalcInfo:
        """The ``CalcInfo`` that runs this job's code with ``cmdline`` (a list: AiiDA quotes every argument for
        bash). ``retrieve`` adds files to the logs that are always retrieved, ``retrieve_temporary`` names files the
        parser reads once and does not keep; ``prepend`` and ``append`` are job-script lines before the tool (after
        the versions probe) and after it (after its exit status is written)."""
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = cmdline
        codeinfo.stdout_name = self.STDOUT_FILENAME
        codeinfo.stderr_name = self.STDERR_FILENAME

        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.prepend_text = "\n".join(line for line in (version_probe(self.inputs.code), *prepend) if line) or None
        # The exit status must be read first thing after the tool returns (a user's options.append_text comes
        # before ours in the job script and would overwrite $?: the parser then judges by the files alone).
        calcinfo.append_text = "\n".join((f"echo $? > {self.EXIT_STATUS_FILENAME}", *append))
        calcinfo.retrieve_list = [
            self.STDOUT_FILENAME,
            self.STDERR_FILENAME,
            self.EXIT_STATUS_FILENAME,
            VERSIONS_FILENAME,
            *retrieve,
        ]
        calcinfo.retrieve_temporary_list = list(retrieve_temporary)
        return calcinfo
