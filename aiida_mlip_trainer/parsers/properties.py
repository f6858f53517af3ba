"""Parser of `PropertyCalculation`: the properties, the plan and the geometries the script wrote, checked."""

from __future__ import annotations

import io
import math

from aiida import orm
from aiida.engine import ExitCode

from ..calculations.properties import PropertyCalculation as Calc
from ..data.training_set import TrainingSetData, TrainingSetError
from ..physics.property_geometries import plan_names
from ..tools.structures import StructureFileError, read_structures
from .script import ScriptParser

__all__ = ("PropertyParser",)


def _finite(value) -> bool:
    """Whether every number in the JSON ``value`` is finite (None allowed: a quantity not computed)."""
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


class PropertyParser(ScriptParser):
    """Checks in order: killed or no exit status (ERROR_KILLED); non-zero status (ERROR_SCRIPT_FAILED, with the
    exception line); no ``properties.json`` (ERROR_OUTPUT_MISSING); properties that are not JSON, not finite, a plan
    naming geometries the geometries file lacks, or geometries that are not valid structures (ERROR_OUTPUT_INVALID)."""

    def parse(self, **kwargs):
        result = self.read_json_output(Calc)
        if isinstance(result, ExitCode):
            return result
        try:
            properties, plan = result["properties"], result["plan"]
            if not isinstance(properties, dict) or not isinstance(plan, dict) or not _finite(properties):
                raise ValueError("properties and plan must be objects of finite numbers")
            content = self._read(Calc.GEOMETRIES_FILENAME, mode="rb")
            if content is None:
                raise ValueError(f"no {Calc.GEOMETRIES_FILENAME}")
            geometries = read_structures(io.BytesIO(content))
            names = [atoms.info["name"] for atoms in geometries]
            missing = sorted(set(plan_names(plan)) - set(names))
            if missing or len(set(names)) != len(names):
                raise ValueError(f"the plan's geometries {missing} are missing, or names repeat")
            geometries_node = TrainingSetData(geometries, labelled=False)
        except (KeyError, TypeError, ValueError, StructureFileError, TrainingSetError) as exc:
            return self.exit_codes.ERROR_OUTPUT_INVALID.format(detail=f"{type(exc).__name__}: {exc}")
        self.out("properties", orm.Dict(properties))
        self.out("plan", orm.Dict(plan))
        self.out("geometries", geometries_node)
        return None
