"""Parser of `AseOracleCalculation`: the labels the script wrote, checked."""

from __future__ import annotations

import json

from ..calculations.ase_oracle import AseOracleCalculation as Calc
from ..oracles import LabelError, labels_array
from .pace_tools import KILLED_STATUSES, PaceToolParser

__all__ = ("AseOracleParser",)


class AseOracleParser(PaceToolParser):
    """Checks in order: killed or no exit status (400); non-zero status (300, with the exception line); no
    ``labels.json`` (301); labels that are not JSON, not finite, or not one force per atom (302)."""

    def parse(self, **kwargs):
        _, detail, exit_status = self._stderr_and_status(Calc)
        if exit_status is None or exit_status in KILLED_STATUSES:
            return self.exit_codes.ERROR_KILLED.format(status=exit_status)
        if exit_status != 0:
            return self.exit_codes.ERROR_SCRIPT_FAILED.format(status=exit_status, detail=detail)
        content = self._read(Calc.OUTPUT_FILENAME)
        if content is None:
            return self.exit_codes.ERROR_OUTPUT_MISSING.format(filename=Calc.OUTPUT_FILENAME, detail=detail)
        try:
            result = json.loads(content)
            labels = labels_array(
                result["energy"], result["forces"], result.get("stress"), natoms=len(self.node.inputs.structure.sites)
            )
        except (ValueError, KeyError, TypeError, LabelError) as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(detail=f"{type(exc).__name__}: {exc}")
        self.out("labels", labels)
        return None
