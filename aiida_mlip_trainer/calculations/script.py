"""What the calculations that run one of the plugin's own scripts share: the job's command, what it retrieves and
records, and the exit codes of a script that writes one JSON output."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aiida.common import datastructures
from aiida.engine import CalcJob

from ..data.grace_potential import GraceFSPotentialData
from .job_options import guard_environment_variables

__all__ = ("ScriptCalculation", "tool_calcinfo", "write_potential")


def tool_calcinfo(
    code_uuid: str, cmdline: Sequence[str], stdout: str, stderr: str, exit_status: str, retrieve: Sequence[str]
) -> datastructures.CalcInfo:
    """One command with fixed arguments (AiiDA quotes each for bash), its stdout and stderr in files, its exit status
    written by the job script (absent when the job was killed before), and the files to retrieve."""
    codeinfo = datastructures.CodeInfo()
    codeinfo.code_uuid = code_uuid
    codeinfo.cmdline_params = list(cmdline)
    codeinfo.stdout_name = stdout
    codeinfo.stderr_name = stderr

    calcinfo = datastructures.CalcInfo()
    calcinfo.codes_info = [codeinfo]
    calcinfo.append_text = f"echo $? > {exit_status}"
    calcinfo.retrieve_list = [*retrieve, stdout, stderr, exit_status]
    return calcinfo


def write_potential(folder, potential, potential_filename: str, baseline_filename: str) -> list[str]:
    """Write a potential node's YAML (and its baseline as JSON, when it has one) into the job's ``folder``; the
    script's arguments for them: ``--potential``, ``--model grace-fs`` for a GRACE-FS node (chosen by the node's
    class, not by a string read from it), ``--baseline``."""
    with folder.open(potential_filename, "w", encoding="utf8") as handle:
        handle.write(potential.get_yaml())
    arguments = ["--potential", potential_filename]
    if isinstance(potential, GraceFSPotentialData):
        arguments += ["--model", "grace-fs"]
    if potential.baseline is not None:
        with folder.open(baseline_filename, "w", encoding="utf8") as handle:
            json.dump(potential.baseline, handle)
        arguments += ["--baseline", baseline_filename]
    return arguments


class ScriptCalculation(CalcJob):
    """A calculation that runs ``SCRIPT`` (a console script of this plugin) and reads its ``OUTPUT_FILENAME`` (JSON).

    Subclasses set ``SCRIPT``, ``OUTPUT_FILENAME`` and the stem of the log files, and call :meth:`script_calcinfo`.
    Exit codes: ERROR_SCRIPT_FAILED (its exception line), ERROR_OUTPUT_MISSING, ERROR_OUTPUT_INVALID (output not
    usable), ERROR_KILLED (stopped from outside: no exit status recorded, or that of a kill).
    """

    SCRIPT = ""
    OUTPUT_FILENAME = ""
    STDOUT_FILENAME = ""
    STDERR_FILENAME = ""
    EXIT_STATUS_FILENAME = ""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        guard_environment_variables(spec.inputs)  # names must be identifiers: aiida-core exports them unescaped
        spec.exit_code(
            340,
            "ERROR_SCRIPT_FAILED",
            invalidates_cache=True,
            message=f"{cls.SCRIPT} exited with status {{status}}: {{detail}}",
        )
        spec.exit_code(
            341,
            "ERROR_OUTPUT_MISSING",
            invalidates_cache=True,
            message=f"{cls.SCRIPT} finished without writing {{filename}}. {{detail}}",
        )
        spec.exit_code(
            342,
            "ERROR_OUTPUT_INVALID",
            invalidates_cache=True,
            message=f"the output of {cls.SCRIPT} is not usable: {{detail}}",
        )
        spec.exit_code(
            410,
            "ERROR_KILLED",
            invalidates_cache=True,
            message=f"{cls.SCRIPT} was stopped from outside (exit status {{status}}): walltime or memory.",
        )

    def script_calcinfo(self, cmdline: Sequence[str], retrieve: Sequence[str]) -> datastructures.CalcInfo:
        return tool_calcinfo(
            self.inputs.code.uuid,
            cmdline,
            self.STDOUT_FILENAME,
            self.STDERR_FILENAME,
            self.EXIT_STATUS_FILENAME,
            retrieve,
        )
