"""Parser of `PaceActivesetCalculation`: the potential with its active set, and what the active set holds."""

from __future__ import annotations

import io
import re

import numpy as np
from aiida import orm

from ..calculations.pace_activeset import PaceActivesetCalculation as Calc
from ..tools.active_set import check_active_set
from .pace_tools import PaceToolParser

__all__ = ("PaceActivesetParser",)

_ELEMENT_LINE = re.compile(r"Element: (\w+), Active set inv\. shape: \((\d+), (\d+)\), gamma_max: ([-+.\deE]+|nan|inf)")
_KEPT_ATOMS = re.compile(r"Number/fraction of selected atoms: (\d+) \(([\d.]+)%\)")
_NUM_STRUCTURES = re.compile(r"Total number of structures: (\d+)")
_BATCH_SIZE = re.compile(r"Batch size: (\d+)")
_BATCH_NEEDS_ALL_ATOMS = "Error-based selection of atoms in batch mode is not implemented"


class PaceActivesetParser(PaceToolParser):
    """Check the active set pace_activeset wrote (one square, finite matrix per element of the potential, of the
    size its basis implies) and output the input potential with it attached.

    Checks in order: killed or no exit status (ERROR_KILLED); batch mode without all atoms
    (ERROR_BATCH_NEEDS_ALL_ATOMS); MaxVol under-determined (ERROR_MAXVOL_UNDERDETERMINED); other non-zero status
    (ERROR_ACTIVESET_FAILED); no active set file (ERROR_NO_ACTIVE_SET); a file that is not a valid active set
    (ERROR_INVALID_ACTIVE_SET).
    """

    ERROR_MAP = ((_BATCH_NEEDS_ALL_ATOMS, "ERROR_BATCH_NEEDS_ALL_ATOMS"),)
    FAILED_EXIT_CODE = "ERROR_ACTIVESET_FAILED"

    def parse(self, **kwargs):
        stderr, detail, failure = self._read_tool_run(Calc)
        if failure is not None:
            return failure
        potential = self.node.inputs.potential

        parameters = self.node.inputs.parameters.get_dict() if "parameters" in self.node.inputs else {}
        full = parameters.get("full", False)
        filename = Calc.NONLINEAR_ACTIVE_SET_FILENAME if full else Calc.ACTIVE_SET_FILENAME
        content = self._read(filename, mode="rb")
        if content is None:
            return self.exit_codes.ERROR_NO_ACTIVE_SET.format(filename=filename, detail=detail)
        layout = potential.basis_layout
        try:
            shapes = _check_active_set(content, layout, full=full)
        except ValueError as exc:
            return self.exit_codes.ERROR_INVALID_ACTIVE_SET.format(detail=str(exc))

        self.out("summary", orm.Dict(self._summary(stderr, shapes, full, parameters)))
        self.out("potential", potential.with_active_set(content))
        return None

    def _summary(self, stderr: str, shapes: dict, full: bool, parameters: dict) -> dict:
        elements = {}
        for match in _ELEMENT_LINE.finditer(stderr):
            gamma = float(match.group(4))
            elements[match.group(1)] = {
                "active_set_size": int(match.group(2)),
                "gamma_max": gamma if np.isfinite(gamma) else str(gamma),
            }
        for element, shape in shapes.items():
            elements.setdefault(element, {"active_set_size": shape[0], "gamma_max": None})
        kept = _KEPT_ATOMS.findall(stderr)
        structures = _NUM_STRUCTURES.search(stderr)
        batch = _BATCH_SIZE.search(stderr)
        training_set = self.node.inputs.training_set
        return {
            "kind": "nonlinear" if full else "linear",
            "elements": elements,
            "num_structures": int(structures.group(1)) if structures else training_set.num_structures,
            "num_atoms": training_set.num_atoms,
            # Per element, the atoms whose force error was below the threshold (absent with all_atoms / batches).
            "atoms_used": [int(count) for count, _ in kept] or None,
            "batch_size": int(batch.group(1)) if batch else None,
            "options": parameters,
        }


def _check_active_set(content: bytes, layout: dict, *, full: bool) -> dict[str, tuple[int, int]]:
    """The shape per element of an ``.asi`` (np.savez, one inverse matrix per element); ValueError when it is not
    one square, finite matrix per element of the right size."""
    try:
        archive = np.load(io.BytesIO(content), allow_pickle=False)
        matrices = {key: archive[key] for key in archive.files}
    except Exception as exc:  # zipfile and numpy raise several types for a damaged archive
        raise ValueError(f"not an .npz archive of matrices: {exc}") from exc
    if sorted(matrices) != sorted(layout):
        raise ValueError(f"it holds elements {sorted(matrices)}, the potential {sorted(layout)}")
    shapes = {}
    for element, matrix in matrices.items():
        size = layout[element]["num_functions"] * (layout[element]["ndensity"] if full else 1)
        if matrix.shape != (size, size):
            raise ValueError(f"{element}: shape {matrix.shape}, expected ({size}, {size})")
        if not np.isfinite(matrix).all():
            raise ValueError(f"{element}: the matrix contains NaN or inf")
        shapes[element] = matrix.shape
    check_active_set(content, layout)  # not singular either, as PacePotentialData and the exploration job require
    return shapes
