"""What the parsers of pace_select and pace_activeset share: exit status, error lines, MaxVol failures."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import ClassVar

from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from ..calculations.versions import VERSIONS_FILENAME, read_versions

__all__ = (
    "KILLED_STATUSES",
    "PaceToolParser",
    "finite_or_string",
    "last_error_line",
    "read_exit_status",
    "stop_reason",
    "under_determined_detail",
)

# Exit statuses of a process stopped from outside: coreutils timeout, SIGKILL (also the kernel's OOM killer), SIGTERM.
KILLED_STATUSES = (124, 137, 143)
# What pacemaker's log.txt says about the versions, for a job whose executable could not be asked (a wrapper).
_LOG_VERSIONS = {
    "python-ace": re.compile(r"pacemaker/pyace version: (\S+)"),
    "tensorpotential": re.compile(r"tensorpot_version: (\S+)"),
}

_UNDER_DETERMINED = re.compile(
    r"Insufficient atomic environments to determine active set for species type (\d+).*?"
    r"projections shape=\((\d+), (\d+)\)"
)


def finite_or_string(value):
    """``value`` (nested dicts) with every non-finite float as a string: JSON has no NaN, and a metrics node with
    one could not be stored."""
    if isinstance(value, dict):
        return {key: finite_or_string(item) for key, item in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_exit_status(text: str | None) -> int | None:
    """The tool's exit status written by the job script, or None when the script never got that far."""
    if text is None or not text.strip().isdigit():
        return None
    return int(text.strip())


def last_error_line(stderr: str) -> str:
    """The exception line of a Python traceback, else the last non-empty line of stderr."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    if errors:
        return errors[-1]
    return lines[-1] if lines else "(nothing on stderr)"


def stop_reason(exit_status: int | None, *, soft_walltime: bool = False, scheduler_stderr: str = "") -> str:
    """What stopped a tool that did not finish by itself, in words: the plugin's own soft walltime, SIGKILL,
    SIGTERM, a timeout, or (no exit status recorded: the whole job was killed) the scheduler, as far as its stderr
    tells."""
    if soft_walltime:
        return "the soft walltime: the plugin stopped it with SIGTERM ahead of the scheduler's time limit"
    if exit_status == 137:
        return "killed with SIGKILL, exit status 137: kill -9, or the kernel's out-of-memory killer"
    if exit_status == 143:
        return "terminated with SIGTERM from outside, exit status 143: kill, scancel or the scheduler"
    if exit_status == 124:
        return "stopped by a timeout command, exit status 124"
    if "TIME LIMIT" in scheduler_stderr:
        return "killed by the scheduler at the job's time limit"
    if "CANCELLED" in scheduler_stderr:
        return "cancelled through the scheduler (e.g. scancel)"
    return (
        "the job was killed before it could record the exit status: the scheduler's time limit, a cancellation or "
        "a node failure"
    )


def under_determined_detail(stderr: str, elements: Sequence[str] = ()) -> str | None:
    """``'Ar: 32 atomic environments for 36 basis functions'`` when MaxVol stopped for lack of environments."""
    match = _UNDER_DETERMINED.search(stderr)
    if match is None:
        return None
    species, rows, functions = (int(group) for group in match.groups())
    name = elements[species] if species < len(elements) else f"species type {species}"
    return f"{name}: {rows} atomic environments for {functions} basis functions"


class PaceToolParser(Parser):
    """What every parser of a pacemaker tool starts from: the retrieved files only, the tool's stderr and the exit
    status the job script recorded (None when the job was killed before it could).

    A tool that failed is judged by a table, as aiida-quantumespresso's parsers do: ``ERROR_MAP`` maps what the
    tool writes on stderr to the name of an exit code (first match wins), then MaxVol's under-determined message
    gives ``ERROR_MAXVOL_UNDERDETERMINED``, and any other non-zero status ``FAILED_EXIT_CODE``."""

    # (text on the tool's stderr, exit code name), checked in order.
    ERROR_MAP: ClassVar[tuple[tuple[str, str], ...]] = ()
    FAILED_EXIT_CODE: ClassVar[str] = ""

    def _read_tool_run(self, calculation) -> tuple[str, str, ExitCode | None]:
        """``(stderr, its error line, the exit code of a failed run or None)`` of the pace_select / pace_activeset
        job ``calculation`` (the CalcJob class); outputs ``versions`` on the way, also for a failed run."""
        stderr, detail, exit_status = self._stderr_and_status(calculation)
        self._output_versions()
        return stderr, detail, self._tool_failure(stderr, detail, exit_status)

    def _tool_failure(self, stderr: str, detail: str, exit_status: int | None) -> ExitCode | None:
        """The exit code of a pace_select / pace_activeset run that did not finish with status 0, else None:
        killed or no exit status (``ERROR_KILLED``), then ``ERROR_MAP``, MaxVol under-determined, other failure."""
        if exit_status is None or exit_status in KILLED_STATUSES:
            return self.exit_codes.ERROR_KILLED.format(status=exit_status, detail=detail)
        if exit_status == 0:
            return None
        for marker, name in self.ERROR_MAP:
            if marker in stderr:
                return getattr(self.exit_codes, name)
        under_determined = under_determined_detail(stderr, sorted(self.node.inputs.potential.elements))
        if under_determined:
            return self.exit_codes.ERROR_MAXVOL_UNDERDETERMINED.format(detail=under_determined)
        return getattr(self.exit_codes, self.FAILED_EXIT_CODE).format(status=exit_status, detail=detail)

    def _read(self, filename: str, mode: str = "r"):
        try:
            return self.retrieved.base.repository.get_object_content(filename, mode=mode)
        except FileNotFoundError:
            return None

    def _stderr_and_status(self, calculation) -> tuple[str, str, int | None]:
        """``(stderr, its error line, exit status)`` of the tool run by ``calculation`` (the CalcJob class)."""
        stderr = self._read(calculation.STDERR_FILENAME) or ""
        return stderr, last_error_line(stderr), read_exit_status(self._read(calculation.EXIT_STATUS_FILENAME))

    def _fit_stop(self, calculation, files: set[str]) -> tuple[str, int | None, bool, str | None]:
        """``(error line, exit status, killed, what stopped it in words or None)`` of the fit run by
        ``calculation`` (the CalcJob class, with a ``SOFT_WALLTIME_FILENAME``) whose retrieved files are ``files``."""
        _, detail, exit_status = self._stderr_and_status(calculation)
        killed = exit_status is None or exit_status in KILLED_STATUSES
        reason = None
        if killed:
            reason = stop_reason(
                exit_status,
                soft_walltime=calculation.SOFT_WALLTIME_FILENAME in files,
                scheduler_stderr=self._scheduler_stderr(),
            )
        return detail, exit_status, killed, reason

    def _scheduler_stderr(self) -> str:
        return self._read(self.node.get_option("scheduler_stderr") or "_scheduler-stderr.txt") or ""

    def _output_versions(self, log: str | None = None) -> dict | None:
        """Output ``versions`` (a Dict) from the job's ``versions.json``, with python-ace and tensorpotential as
        pacemaker's own ``log`` names them when given (what really ran, also behind a wrapper script). Returns what
        was output, or None."""
        versions = read_versions(self._read(VERSIONS_FILENAME)) or {}
        for key, pattern in _LOG_VERSIONS.items():
            match = pattern.search(log or "")
            if match is not None:
                versions[key] = match.group(1)[:64]
        if not versions:
            return None
        self.out("versions", orm.Dict(versions))
        return versions
