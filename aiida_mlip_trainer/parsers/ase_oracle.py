"""Parser of `AseOracleCalculation`: the labels the script wrote, checked."""

from __future__ import annotations

from aiida.engine import ExitCode

from ..calculations.ase_oracle import AseOracleCalculation as Calc
from ..data.labels import LabelError, labels_array
from .script import ScriptParser

__all__ = ("AseOracleParser",)


class AseOracleParser(ScriptParser):
    """Checks in order: killed or no exit status (ERROR_KILLED); non-zero status (ERROR_SCRIPT_FAILED, with the
    exception line); no ``labels.json`` (ERROR_OUTPUT_MISSING); labels that are not JSON, not finite, or not one
    force per atom (ERROR_OUTPUT_INVALID)."""

    def parse(self, **kwargs):
        result = self.read_json_output(Calc)
        if isinstance(result, ExitCode):
            return result
        try:
            labels = labels_array(
                result["energy"], result["forces"], result.get("stress"), natoms=len(self.node.inputs.structure.sites)
            )
        except (KeyError, TypeError, AttributeError, LabelError) as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(detail=f"{type(exc).__name__}: {exc}")
        self.out("labels", labels)
        return None
