"""What the parsers of pace_select and pace_activeset share: exit status, error lines, MaxVol failures."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiida.parsers import Parser

__all__ = ("KILLED_STATUSES", "PaceToolParser", "last_error_line", "read_exit_status", "under_determined_detail")

# Exit statuses of a process stopped from outside: coreutils timeout, SIGKILL (also the kernel's OOM killer), SIGTERM.
KILLED_STATUSES = (124, 137, 143)

_UNDER_DETERMINED = re.compile(
    r"Insufficient atomic environments to determine active set for species type (\d+).*?"
    r"projections shape=\((\d+), (\d+)\)"
)


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
    status the job script recorded (None when the job was killed before it could)."""

    def _read(self, filename: str, mode: str = "r"):
        try:
            return self.retrieved.base.repository.get_object_content(filename, mode=mode)
        except FileNotFoundError:
            return None

    def _stderr_and_status(self, calculation) -> tuple[str, str, int | None]:
        """``(stderr, its error line, exit status)`` of the tool run by ``calculation`` (the CalcJob class)."""
        stderr = self._read(calculation.STDERR_FILENAME) or ""
        return stderr, last_error_line(stderr), read_exit_status(self._read(calculation.EXIT_STATUS_FILENAME))
