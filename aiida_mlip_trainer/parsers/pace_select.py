"""Parser of `PaceSelectCalculation`: the picked pool positions, the subset, and an honest requested-vs-returned."""

from __future__ import annotations

import pathlib
import re

from aiida import orm

from ..calculations.pace_select import PaceSelectCalculation as Calc
from ..data.operations import subset_structures
from .pace_tools import PaceToolParser

__all__ = ("PaceSelectParser",)

_OVERALL = re.compile(r"Overall (\d+) structures selected")
DEFAULT_GAMMA_TOLERANCE = 1.01
SHORTFALL_HINT = (
    "for more, select in rounds (aiida_mlip_trainer.launch.select_structures) or use a selector basis with more "
    "functions"
)


class PaceSelectParser(PaceToolParser):
    """Read the indices of the picked structures from pace_select's output (a pandas pickle from the temporary
    retrieved folder, written by this job) and build ``selected`` from the pool node itself, so the structures and
    labels are exactly the pool's.

    Checks in order: killed or no exit status (ERROR_KILLED); MaxVol under-determined
    (ERROR_MAXVOL_UNDERDETERMINED); other non-zero status (ERROR_SELECT_FAILED); no output (ERROR_NO_SELECTION);
    output without valid pool positions (ERROR_INVALID_SELECTION); nothing picked (ERROR_NONE_SELECTED). Fewer
    structures than requested is not a failure: ``summary['shortfall']`` explains it and a warning is logged.
    """

    FAILED_EXIT_CODE = "ERROR_SELECT_FAILED"

    def parse(self, **kwargs):
        stderr, detail, failure = self._read_tool_run(Calc)
        if failure is not None:
            return failure

        temporary = kwargs.get("retrieved_temporary_folder")
        output = pathlib.Path(temporary) / Calc.OUTPUT_FILENAME if temporary else None
        if output is None or not output.is_file():
            return self.exit_codes.ERROR_NO_SELECTION.format(detail=detail)
        try:
            indices = self._read_indices(output)
        except ValueError as exc:
            return self.exit_codes.ERROR_INVALID_SELECTION.format(detail=str(exc))

        summary = self._summary(indices, stderr)
        self.out("indices", orm.List(indices))
        self.out("summary", orm.Dict(summary))
        if not indices:
            return self.exit_codes.ERROR_NONE_SELECTED.format(gamma=summary["options"]["gamma_tolerance"])
        self.out("selected", subset_structures(self.node.inputs.pool, indices))
        if summary["shortfall"]:
            # Said, not warned: fewer than asked is the tool's rule (one environment per basis function), not a fault.
            self.logger.report(
                f"pace_select returned {summary['returned']} of the {summary['requested']} structures requested: "
                f"{summary['shortfall']}" + (f"; {summary['hint']}" if summary["hint"] else "")
            )
        return None

    def _read_indices(self, path: pathlib.Path) -> list[int]:
        import pandas as pd

        pool_size = self.node.inputs.pool.num_structures
        try:
            # Our own job wrote this file from a DataFrame we built (see PaceSelectCalculation.prepare_for_submission).
            frame = pd.read_pickle(path, compression="gzip")
        except Exception as exc:  # gzip, pickle and pandas raise many types for a truncated or foreign file
            raise ValueError(f"{Calc.OUTPUT_FILENAME} is not a gzip-compressed pandas pickle: {exc}") from exc
        if Calc.INDEX_COLUMN not in getattr(frame, "columns", ()):
            raise ValueError(f"{Calc.OUTPUT_FILENAME} has no {Calc.INDEX_COLUMN!r} column")
        indices = [int(i) for i in frame[Calc.INDEX_COLUMN]]
        outside = [i for i in indices if not 0 <= i < pool_size]
        if outside:
            raise ValueError(f"pool positions {outside[:5]} are outside the pool of {pool_size} structures")
        if len(set(indices)) != len(indices):
            raise ValueError("a pool position appears twice")
        return indices

    def _summary(self, indices: list[int], stderr: str) -> dict:
        inputs = self.node.inputs
        parameters = inputs.parameters.get_dict() if "parameters" in inputs else {}
        use_active_set = "use_active_set" in inputs and bool(inputs.use_active_set.value)
        requested = inputs.max_structures.value
        pool_size = inputs.pool.num_structures
        returned = len(indices)
        match = _OVERALL.search(stderr)
        in_active_set = int(match.group(1)) if match else None
        layout = inputs.potential.basis_layout
        functions = {element: spec["num_functions"] for element, spec in layout.items()}
        shortfall = None
        if returned < requested:
            if returned == pool_size:
                shortfall = f"the whole pool ({pool_size} structures) was returned"
            else:
                shortfall = (
                    f"only {returned} structures of the pool contribute an atomic environment to the D-optimal "
                    f"(MaxVol) active set, which holds one environment per basis function and element "
                    f"({functions}); pace_select returns no others"
                )
                if use_active_set:
                    shortfall += "; the other candidates are already covered by the potential's active set"
        return {
            "requested": requested,
            "returned": returned,
            "pool_size": pool_size,
            "structures_in_active_set": in_active_set,
            "shortfall": shortfall,
            "hint": SHORTFALL_HINT if shortfall and returned < pool_size else None,
            "order": "most atoms in the active set first",
            "used_active_set": use_active_set,
            "basis_functions": functions,
            "options": {
                "gamma_tolerance": parameters.get("gamma_tolerance", DEFAULT_GAMMA_TOLERANCE),
                **{key: value for key, value in parameters.items() if key != "gamma_tolerance"},
            },
        }
