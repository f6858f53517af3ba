"""What the parsers of the plugin's own scripts share: exit status first, then the JSON output."""

from __future__ import annotations

import json

from aiida.engine import ExitCode

from .pace_tools import KILLED_STATUSES, PaceToolParser

__all__ = ("ScriptParser",)


class ScriptParser(PaceToolParser):
    """Reads what a :class:`~aiida_mlip_trainer.calculations.script.ScriptCalculation` retrieved."""

    def read_json_output(self, calculation) -> dict | ExitCode:
        """The script's JSON output, or the exit code that says why there is none: killed or no exit status
        (ERROR_KILLED), non-zero status (ERROR_SCRIPT_FAILED, with the exception line), no output file
        (ERROR_OUTPUT_MISSING), not JSON (ERROR_OUTPUT_INVALID)."""
        _, detail, exit_status = self._stderr_and_status(calculation)
        if exit_status is None or exit_status in KILLED_STATUSES:
            return self.exit_codes.ERROR_KILLED.format(status=exit_status)
        if exit_status != 0:
            return self.exit_codes.ERROR_SCRIPT_FAILED.format(status=exit_status, detail=detail)
        content = self._read(calculation.OUTPUT_FILENAME)
        if content is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=calculation.OUTPUT_FILENAME, detail=detail)
        try:
            return json.loads(content)
        except ValueError as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(detail=f"not JSON: {exc}")
