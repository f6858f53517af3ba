"""The ACE basis as pyace reads it: its layout per element, and the unfitted basis a fit starts from (no AiiDA)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ("basis_layout_of", "unfitted_basis", "unfitted_basis_layout")


def basis_layout_of(basis) -> dict[str, dict[str, int]]:
    """Per element of a pyace ``ACEBBasisSet``: ``num_functions`` (the size of its active set, one MaxVol row per
    function) and ``ndensity``."""
    from pyace.activelearning import compute_number_of_functions

    counts = compute_number_of_functions(basis)
    return {
        name: {
            "num_functions": int(counts[index]),
            "ndensity": int(basis.map_embedding_specifications[index].ndensity),
        }
        for index, name in enumerate(basis.elements_name)
    }


def unfitted_basis(parameters: Mapping[str, Any], elements: Sequence[str] | None = None):
    """The unfitted pyace ``BBasisConfiguration`` a fit with these training ``parameters`` starts from (see
    :func:`~aiida_mlip_trainer.workflows.functions.selection.unfitted_potential`), built in memory. Raises
    ValueError with what to change for invalid parameters."""
    from pyace.basisextension import construct_bbasisconfiguration

    from .pacemaker_input import build_input_yaml, validate_parameters

    element_list = sorted(elements) if elements is not None else None
    message = validate_parameters(parameters, elements=element_list)
    if message:
        raise ValueError(message)
    if element_list is None and "elements" not in parameters["potential"]:
        raise ValueError("give `elements` (e.g. the pool's) or potential.elements in the parameters")
    config = build_input_yaml(parameters, elements=element_list or [], train_filename="unused.pckl.gzip")
    return construct_bbasisconfiguration(config["potential"])


def unfitted_basis_layout(parameters: Mapping[str, Any], elements: Sequence[str] | None = None) -> dict:
    """:func:`basis_layout_of` of the unfitted basis of ``parameters``, without storing anything (for validators)."""
    from pyace import ACEBBasisSet

    return basis_layout_of(ACEBBasisSet(unfitted_basis(parameters, elements)))
