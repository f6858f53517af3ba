"""The ACE basis as pyace reads it: its layout per element, and the unfitted basis a fit starts from (no AiiDA)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = (
    "basis_layout_of",
    "reference_energies_of",
    "set_yace_reference_energies",
    "unfitted_basis",
    "unfitted_basis_layout",
)


def basis_layout_of(basis) -> dict[str, dict[str, int]]:
    """Per element of a pyace ``ACEBBasisSet``: ``num_functions`` (the size of its active set, one MaxVol row per
    function) and ``ndensity``: the layout an active set is checked against (:mod:`..tools.active_set`)."""
    from ..tools.active_set import basis_layout

    return basis_layout(basis)


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


def reference_energies_of(config, elements: Sequence[str]) -> dict[str, float]:
    """The E0 per element (eV/atom) that the fit of the pyace ``BBasisConfiguration`` ``config`` subtracted from its
    labels, read from the ``reference_energy`` pacemaker records in the potential's metadata; ``{}`` when the fit
    used none (the potential then predicts total energies as they were fitted).

    pacemaker records a JSON dictionary (per element, and ``shift`` for ``auto``) or the name of one of its presets
    of single-atom energies; both are turned into the energy to add back per atom. A value that is neither is
    refused (ValueError): the potential's energies could not be made total again."""
    from ..physics.reference_energy import ReferenceEnergyError, effective_reference_energies

    recorded = dict(config.metadata).get("reference_energy")
    if recorded is None:
        return {}
    if not isinstance(recorded, str) or len(recorded) > _MAX_REFERENCE_TEXT or _nesting_depth(recorded) > 1:
        # Parsed only when flat: a deeply nested JSON text makes json.loads raise RecursionError.
        raise ValueError(
            "the potential's metadata has a reference energy that is not a number, a flat dictionary of energies "
            f"per element or a preset name (at most {_MAX_REFERENCE_TEXT} characters): {str(recorded)[:64]!r}"
        )
    try:
        spec = json.loads(recorded)
    except (TypeError, ValueError):
        spec = recorded
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        spec = dict.fromkeys(elements, spec)  # pacemaker's constant option: the same E0 for every atom
    if isinstance(spec, str):
        from pyace.process_df import SINGLE_ATOM_ENERGY_DICT

        if spec not in SINGLE_ATOM_ENERGY_DICT:
            raise ValueError(f"the potential's metadata names an unknown reference energy {spec[:64]!r}")
        spec = {element: SINGLE_ATOM_ENERGY_DICT[spec][element] for element in elements}
    if not isinstance(spec, Mapping):
        raise ValueError(f"the potential's metadata has a reference energy that is not a dictionary: {spec!r:.64}")
    try:
        energies = effective_reference_energies(spec, list(elements))
    except ReferenceEnergyError as error:
        raise ValueError(f"the potential's metadata: {error}") from None
    return energies if any(energies.values()) else {}


# A flat dictionary of E0 per element (and `shift`) for up to the ~118 elements fits in far fewer characters.
_MAX_REFERENCE_TEXT = 10_000


def _nesting_depth(text: str) -> int:
    """How deep JSON brackets nest in ``text`` (outside strings): 1 for a flat object, 0 for a number or a name."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


_YACE_ELEMENTS = re.compile(r"^elements: \[(?P<names>[^\]\n]*)\]$", re.MULTILINE)
_YACE_E0 = re.compile(r"^E0: \[[^\]\n]*\]$", re.MULTILINE)


def set_yace_reference_energies(yace: str, reference_energies: Mapping[str, float]) -> str:
    """The ``.yace`` text with its top-level ``E0`` list set to ``reference_energies`` (eV/atom per element), which
    LAMMPS' ``pair_style pace`` (and pyace reading the ``.yace``) adds to every atom's energy. ``pace_yaml2yace``
    writes zeros there whatever the fit subtracted; without this the ``.yace`` and the ``.yaml`` of one potential
    would predict energies that differ by the reference. ValueError for a file without exactly one ``elements``
    and one ``E0`` line, or an element of the file without a reference energy."""
    elements_lines = _YACE_ELEMENTS.findall(yace)
    if len(elements_lines) != 1 or len(_YACE_E0.findall(yace)) != 1:
        raise ValueError("not a .yace file with one top-level `elements` and one `E0` line")
    elements = [name.strip() for name in elements_lines[0].split(",")]
    missing = [element for element in elements if element not in reference_energies]
    if missing and any(reference_energies.values()):
        raise ValueError(f"no reference energy for {missing} of the .yace file")
    values = ", ".join(repr(float(reference_energies.get(element, 0.0))) for element in elements)
    return _YACE_E0.sub(f"E0: [{values}]", yace, count=1)
