"""Old import path of the selection helpers and calcfunctions, kept for code written against it.

The helpers now live by layer: pace tool options in :mod:`aiida_mlip_trainer.calculations.pace_tool`, subsets and
environment counts in :mod:`aiida_mlip_trainer.data.operations`, the unfitted basis in
:mod:`aiida_mlip_trainer.formats.basis`, and the calcfunctions next to their work chain in
:mod:`aiida_mlip_trainer.workflows.functions.selection`.
"""

from .calculations.pace_tool import (  # noqa: F401
    ACTIVESET_PARAMETERS,
    COMMON_PARAMETERS,
    MIN_MEMORY_LIMIT,
    parse_memory_limit,
    validate_tool_parameters,
)
from .data.operations import atoms_per_element, check_environments, subset_arrays, subset_structures  # noqa: F401
from .data.operations import concatenate as _concatenate  # noqa: F401
from .data.pace_potential import PacePotentialData
from .formats.basis import unfitted_basis, unfitted_basis_layout  # noqa: F401
from .workflows.functions.selection import (  # noqa: F401
    assemble_selection,
    concatenate_structures,
    merge_picks,
    take_structures,
    unfitted_potential,
)


def basis_layout(potential: PacePotentialData) -> dict[str, dict[str, int]]:
    """Per element of the potential: ``num_functions`` (the size of its active set) and ``ndensity``; the same as
    ``potential.basis_layout``."""
    return potential.basis_layout
