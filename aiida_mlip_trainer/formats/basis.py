"""The ACE basis as pyace reads it: its layout per element, the unfitted basis a fit starts from, and the core
repulsion of a fitted potential, measured and sized (no AiiDA)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = (
    "GIVE_BACK_POINTS",
    "MIN_SWITCH_WIDTH",
    "ONSET_DIP",
    "ONSET_POINTS",
    "basis_layout_of",
    "core_repulsion_of",
    "dimer_energy",
    "onset_dip",
    "reference_energies_of",
    "set_yace_reference_energies",
    "size_core_repulsion",
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


# Distances at which the ACE part's give-back is measured across a pair's switching window (a C-H window of 0.04 Å:
# a step of 0.0002 Å, far finer than any feature of the fitted radial functions).
GIVE_BACK_POINTS = 201


def _pair_of(block) -> str | None:
    """The element pair a bond block of a pyace configuration holds (``"C-H"`` for "C H" and "H C", ``"H-H"`` for the
    unary "H"), None for a many-element block."""
    from ..physics.baselines import pair_key

    elements = list(block.elements_vec)
    return pair_key(*elements) if len(elements) == 2 else None


def core_repulsion_of(config) -> dict[str, dict[str, float]]:
    """Per element pair of the pyace ``BBasisConfiguration`` ``config`` whose core repulsion is on: its ``prefactor``,
    ``decay`` (lambda), ``r_in`` and ``delta_in`` (Å), as pacemaker's ``core-repulsion: [prefactor, lambda]`` and
    inner cutoff of the pair's bond block."""
    cores = {}
    for block in config.funcspecs_blocks:
        pair = _pair_of(block)
        prefactor, decay = (float(value) for value in block.core_rep_parameters)
        if pair is not None and prefactor > 0:
            cores[pair] = {"prefactor": prefactor, "decay": decay, "r_in": float(block.r_in),
                           "delta_in": float(block.delta_in)}  # fmt: skip
    return dict(sorted(cores.items()))


def _with_pairs(config, prefactors: Mapping[str, float] | None = None, widths: Mapping[str, float] | None = None):
    """A copy of ``config`` with, in every bond block of a pair, the core prefactor of ``prefactors`` and the inner
    switching width ``delta_in`` (Å) of ``widths`` (``r_in`` and the core's decay are kept)."""
    prefactors, widths = prefactors or {}, widths or {}
    config = config.copy()
    blocks = config.funcspecs_blocks
    for block in blocks:
        pair = _pair_of(block)
        if pair in prefactors:
            block.core_rep_parameters = [float(prefactors[pair]), float(block.core_rep_parameters[1])]
        if pair in widths:
            block.delta_in = float(widths[pair])
    config.funcspecs_blocks = blocks
    return config


def dimer_energy(config, a: str, b: str, distances: Sequence[float], *, core: bool = True):
    """Energies (eV, an array) of the dimer ``a``-``b`` under the ACE potential of the pyace ``BBasisConfiguration``
    ``config`` alone (no baseline) at ``distances`` (Å), relative to the two isolated atoms; with ``core=False`` every
    core repulsion is set to zero first: the fitted ACE part alone."""
    from pyace import PyACECalculator

    from ..physics.short_range import dimer_energies

    if not core:
        config = _with_pairs(config, dict.fromkeys(core_repulsion_of(config), 0.0))
    return dimer_energies(PyACECalculator(config), a, b, distances)


# The deepest fall inwards (eV) that the sum of the ACE part and the core may keep in a pair's switching window: a
# fifth of the check's tolerance for noise (short_range.WELL_TOLERANCE, 5 meV), below the energy error of any fit.
ONSET_DIP = 0.001
# Points across the switching window on which that sum is measured: the onset dip sits within a few hundredths of the
# window below r_in (measured: C-C 0.004 Å of a 0.07 Å window), so a step of a thousandth of it.
ONSET_POINTS = 1001
# Å: the narrowest switch the rule sets, five spline bins of the protocols' potentials (deltaSplineBins 0.001 Å), so
# that the splined radial functions and core still follow the switch's polynomial (the .yaml and the .yace then give
# the same dimer energies to 1e-14 eV).
MIN_SWITCH_WIDTH = 0.005
# How many times the switch is narrowed at most (each step aims at ONSET_DIP from the measured dip).
_SWITCH_STEPS = 6


def onset_dip(config, a: str, b: str) -> float:
    """The deepest fall inwards (eV, >= 0) of the dimer ``a``-``b`` under the ACE potential ``config`` (its ACE part
    and core, no baseline) across the pair's switching window ``[r_in - delta_in, r_in]``, on ``ONSET_POINTS``
    distances: what is left of ACE's own slope at ``r_in`` before the core, switched on with zero slope there, takes
    over. Below the window ACE is off and the core ``prefactor / r`` rises; above it the data are."""
    from ..physics.baselines import ace_give_back, pair_key

    core = core_repulsion_of(config)[pair_key(a, b)]
    window = np.linspace(core["r_in"] - core["delta_in"], core["r_in"], ONSET_POINTS)
    return ace_give_back(window, dimer_energy(config, a, b, window))


def _sized_core(config, ace_only, pair: str, floor: float, rank: int, delta_in: float) -> tuple[float, float]:
    """The prefactor by :func:`~aiida_mlip_trainer.physics.baselines.core_over_ace` for ``pair`` switched over
    ``delta_in`` (Å), and what the ACE part gives back across that window (eV)."""
    from ..physics.baselines import ace_give_back, core_over_ace

    core = core_repulsion_of(config)[pair]
    a, b = pair.split("-")
    window = np.linspace(core["r_in"] - delta_in, core["r_in"], GIVE_BACK_POINTS)
    give_back = ace_give_back(window, dimer_energy(_with_pairs(ace_only, widths={pair: delta_in}), a, b, window))
    return core_over_ace(give_back, core["r_in"], rank, float(floor), core["decay"]), give_back


def size_core_repulsion(config, floors: Mapping[str, float]) -> tuple[Any, dict[str, dict[str, float]]]:
    """Size the core repulsion of each pair of ``floors`` (``{"C-H": prefactor}``: the pairs whose core the plugin
    wrote, each with the prefactor :func:`~aiida_mlip_trainer.physics.baselines.core_repulsion` gave it from ZBL's
    climb) in the fitted potential ``config`` (a pyace ``BBasisConfiguration``), by the rule ``core_over_ace``:

    1. **How strong** (:func:`~aiida_mlip_trainer.physics.baselines.core_over_ace`): measure what the fitted ACE part
       gives back across the pair's switching window ``[r_in - delta_in, r_in]`` (``r_in`` = the pair's shortest
       training distance ``d``) and make the core's dimer energy at ``d`` at least the basis's largest rank times
       that, never below the floor. That out-climbs the fall that switching ACE off causes.
    2. **How sharp**: what no core size can beat is the slope the fitted ACE part has of its own at ``d``: the core is
       switched on with zero slope there (``10 t^3``), so the dimer first follows ACE down, by a dip that goes as
       ``delta_in^1.5`` and only as ``1 / sqrt(prefactor)``. So the core must take over within a narrower window:
       while the sum of ACE and core still falls inwards by more than ``ONSET_DIP`` (1 meV) across the window
       (:func:`onset_dip`), ``delta_in`` is narrowed to where that scaling puts the dip at 0.8 x ``ONSET_DIP``
       (never below ``MIN_SWITCH_WIDTH``), and step 1 is redone for the new window. ``r_in`` stays ``d``: nothing
       changes where the data are.

    Returns the new configuration and, per pair, ``old``/``new`` prefactor, ``distance`` (d, Å), ``give_back`` (eV,
    across the new window), ``rank``, ``old_delta_in``/``new_delta_in`` (Å) and ``onset_dip``/``new_onset_dip`` (eV,
    before and after: the first with the new prefactor on the old window). A pair of ``floors`` without a core in
    ``config`` is left alone and not reported."""
    cores = core_repulsion_of(config)
    ace_only = _with_pairs(config, dict.fromkeys(cores, 0.0))
    report, prefactors, widths = {}, {}, {}
    for pair, floor in sorted(floors.items()):
        if pair not in cores:
            continue
        core = cores[pair]
        a, b = pair.split("-")
        rank = max(int(block.rankmax) for block in config.funcspecs_blocks if list(block.elements_vec)[0] in (a, b))
        delta_in, dips = core["delta_in"], []
        for _ in range(_SWITCH_STEPS):
            prefactor, give_back = _sized_core(config, ace_only, pair, floor, rank, delta_in)
            dips.append(onset_dip(_with_pairs(config, {pair: prefactor}, {pair: delta_in}), a, b))
            if dips[-1] <= ONSET_DIP or delta_in <= MIN_SWITCH_WIDTH:
                break
            delta_in = max(MIN_SWITCH_WIDTH, round(delta_in * (0.8 * ONSET_DIP / dips[-1]) ** (2 / 3), 6))
        prefactors[pair], widths[pair] = prefactor, delta_in
        report[pair] = {"old": core["prefactor"], "new": prefactor, "distance": core["r_in"], "give_back": give_back,
                        "rank": rank, "old_delta_in": core["delta_in"], "new_delta_in": delta_in,
                        "onset_dip": dips[0], "new_onset_dip": dips[-1]}  # fmt: skip
    return _with_pairs(config, prefactors, widths), report
