"""Physical pair-potential baselines for delta learning of ACE potentials.

In delta learning the ACE model is fitted to the *residual* ``label - baseline`` and the baseline is added back at
prediction time (in Python with :func:`baseline_calculator`, in LAMMPS with
:func:`~aiida_mlip_trainer.formats.lammps.lammps_pair_commands`).
pacemaker has no baseline of its own, so the baseline has to be evaluated here, and it must be exactly the same
function in Python and in LAMMPS: each baseline below implements, formula for formula, an existing LAMMPS pair style.

A baseline is a plain, JSON-serialisable dict (so that it can be stored in an AiiDA ``Dict``). Its parameters are
given either once for every element pair (the *flat* form)::

    {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}
    {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}

or *per element pair*, with ``ALL`` as the default for the pairs not named (pair keys are two element symbols
joined by ``-``, in any order; a pair entry may give only some parameters, the rest come from ``ALL``)::

    {"type": "zbl", "params": {"ALL": {"inner_cutoff": 1.4, "cutoff": 1.9},
                               "H-H": {"inner_cutoff": 1.1, "cutoff": 1.5}}}
    {"type": "lj", "params": {"ALL": {"epsilon": 0.01, "sigma": 3.4, "cutoff": 7.0}, "Kr-Ar": {"cutoff": 6.0}}}

A ZBL baseline may leave windows out: ``{"type": "zbl"}`` (no ``params``) or a per-pair dict without ``ALL``. The
missing windows are then derived from the training data by :func:`derive_baseline` (each pair's own shortest
distance, see there); evaluating such a baseline on a pair it has no window for raises :class:`BaselineError`.

Units: eV, Å, eV/Å; stress in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE sign convention
(``atoms.get_stress()``: negative under compression).

Every number is a finite number (a string is refused), and every cutoff (the LJ ``cutoff``, the ZBL
``inner_cutoff`` and ``cutoff``) is positive and at most :data:`MAX_BASELINE_CUTOFF` (20 Å), with ``inner_cutoff``
below ``cutoff``: a physical baseline is short-ranged, and its cost grows with the cube of the cutoff. Stored nodes
(a potential's or a residual training set's ``baseline`` attribute) are checked by the same rules when read.

``lj`` -- Lennard-Jones, shifted-force (LAMMPS ``pair_style lj/smooth/linear``)
    ``E(r) = V(r) - V(rc) - (r - rc) V'(rc)`` for ``r < rc`` (zero beyond), with ``V(r) = 4 eps [(s/r)^12 - (s/r)^6]``:
    energy *and* force go to zero continuously at ``rc``. In the flat form (and in ``ALL``), ``epsilon`` (eV, >= 0)
    and ``sigma`` (Å, > 0) are each

    - one number, used for every pair of elements;
    - a dict per element, ``{"Ar": 3.4, "Kr": 3.65}``: unlike pairs are mixed with the Lorentz-Berthelot rules,
      ``sigma_ij = (sigma_i + sigma_j) / 2`` and ``epsilon_ij = sqrt(epsilon_i epsilon_j)``;
    - a dict with pair keys ``"Ar-Kr"`` (order-insensitive), alone or together with element keys: a pair given
      explicitly overrides the mixing.

    ``cutoff`` (Å) is one number; per pair it is set in the per-pair form (LAMMPS: a per-pair ``pair_coeff`` cutoff).
``zbl`` -- Ziegler-Biersack-Littmark universal screened nuclear repulsion (LAMMPS ``pair_style zbl inner outer``)
    ``E_ZBL(r) = Zi Zj e^2/(4 pi eps0) / r * phi(r/a)``, ``a = 0.46850 / (Zi^0.23 + Zj^0.23)`` Å,
    ``phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}``,
    ``e^2/(4 pi eps0) = 14.399645`` eV Å (LAMMPS ``units metal``). Between ``inner_cutoff`` and ``cutoff`` a cubic
    polynomial in ``t = r - inner_cutoff`` is added to the force (a quartic to the energy) so that energy, force and
    its derivative all vanish at ``cutoff``; the whole curve is shifted by the constant that makes ``E(cutoff) = 0``.
    The nuclear charges come from the chemical symbols: any element works, no per-element parameter is needed.
    Per-pair windows become one ``zbl inner outer`` sub-style per distinct window in LAMMPS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Real

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers, chemical_symbols, covalent_radii
from ase.neighborlist import neighbor_list as ase_neighbor_list
from matscipy.neighbours import neighbour_list as matscipy_neighbour_list

from ..names import ELEMENTS

__all__ = [
    "BASELINE_TYPES",
    "DERIVED_INNER_FRACTION",
    "MAX_BASELINE_CUTOFF",
    "BaselineCalculator",
    "CORE_SWITCH_FRACTION",
    "ace_give_back",
    "core_over_ace",
    "SHORT_RANGE_WALL",
    "BaselineError",
    "baseline_calculator",
    "core_repulsion",
    "core_switch_width",
    "baseline_cutoff",
    "default_pair_distance",
    "derive_baseline",
    "element_symbol",
    "evaluable_baseline",
    "evaluate_baseline",
    "missing_pairs",
    "pair_key",
    "pair_min_distances",
    "pair_parameters",
    "validate_baseline",
    "zbl_window_rise",
]

BASELINE_TYPES = ("lj", "zbl")
_PARAM_KEYS = {"lj": ("epsilon", "sigma", "cutoff"), "zbl": ("inner_cutoff", "cutoff")}
DEFAULT_KEY = "ALL"

# A derived ZBL window is [DERIVED_INNER_FRACTION * d, d] for a pair whose shortest training distance is d (see
# derive_baseline for why); a pair absent from the data gets d = the sum of the two covalent radii.
DERIVED_INNER_FRACTION = 0.75
# The least a pair's repulsion must climb (eV per dimer) across its ZBL window, from the outer cutoff in to the inner
# one, where the fitted ACE part is switched off (see core_repulsion for why and how).
SHORT_RANGE_WALL = 20.0
# A pair that gets pacemaker's core repulsion has ACE switched off (and so the core switched on) over the last this
# fraction of d below d, not over its whole ZBL window (see core_switch_width for why).
CORE_SWITCH_FRACTION = 0.05
# Pairs farther apart than this everywhere in the data count as absent (pair_min_distances' default search radius).
MIN_DISTANCE_SEARCH_CUTOFF = 5.0
# Å: the longest cutoff a baseline may have (LJ cutoff, ZBL inner and outer cutoff). A physical baseline lives at
# short range (ZBL below ~2 Å, LJ to a few sigma, ~10 Å for the heaviest noble gas); the neighbour list, and so time
# and memory, grow with the cube of the cutoff (1000 Å ran out of memory), so a larger value is a mistake or an
# attack, and it is refused wherever a baseline is read: on validation and when a stored node is loaded.
MAX_BASELINE_CUTOFF = 20.0

# Constants of LAMMPS's pair_zbl (pair_zbl_const.h) and of its `units metal` (qqr2e * qelectron^2), so that the
# Python and LAMMPS curves are the same function to rounding.
_ZBL_E2 = 14.399645
_ZBL_A0 = 0.46850
_ZBL_POWER = 0.23
_ZBL_C = np.array([0.18175, 0.50986, 0.28022, 0.02817])
_ZBL_D = np.array([3.19980, 0.94229, 0.40290, 0.20162])


class BaselineError(ValueError):
    """A baseline spec is invalid, or does not cover the elements of a structure."""


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def _number(
    where: str, value, *, minimum: float = 0.0, allow_equal: bool = False, maximum: float | None = None
) -> float:
    """``value`` as a finite float ``> minimum`` (``>=`` with ``allow_equal``) and at most ``maximum``, else
    BaselineError naming ``where``."""
    # bool is a Real in Python; a True epsilon is certainly a mistake. A string ("7\nrm") is not a number either.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise BaselineError(f"{where} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise BaselineError(f"{where} must be finite, got {value!r}")
    if value < minimum or (value == minimum and not allow_equal):
        relation = ">=" if allow_equal else ">"
        raise BaselineError(f"{where} must be {relation} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise BaselineError(f"{where} must be at most {maximum:g} Å, got {value!r}")
    return value


def element_symbol(where: str, symbol) -> str:
    """``symbol`` (surrounding blanks stripped) when it is a chemical element symbol, else BaselineError naming
    ``where``."""
    if not isinstance(symbol, str) or symbol.strip() not in ELEMENTS:
        raise BaselineError(f"{where}: {symbol!r} is not a chemical element symbol")
    return symbol.strip()


def pair_key(a: str, b: str) -> str:
    """The canonical, order-insensitive key of an element pair: ``pair_key("Ni", "Cu") == "Cu-Ni"``."""
    return "-".join(sorted((a, b)))


def _parse_pair(where: str, key) -> str | None:
    """The canonical pair of a key like ``"Ni-Cu"``; None when the key is not two element symbols."""
    if not isinstance(key, str):
        return None
    parts = key.split("-")
    if len(parts) != 2:
        return None
    return pair_key(*(element_symbol(f"{where} key {key!r}", part) for part in parts))


def _lj_parameter(name: str, value, *, allow_zero: bool, where: str = "lj params") -> float | dict[str, float]:
    """Normalise one LJ parameter: a number, or a dict keyed by elements ("Ar") and/or pairs ("Ar-Kr")."""
    where = f"{where}['{name}']"
    if not isinstance(value, Mapping):
        return _number(where, value, allow_equal=allow_zero)
    if not value:
        raise BaselineError(f"{where} is an empty dict: give a number, or values per element or per pair")
    normalised: dict[str, float] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise BaselineError(f"{where}: key {key!r} is not an element symbol or a pair like 'Ar-Kr'")
        parts = key.split("-")
        if len(parts) == 1:
            canonical = element_symbol(f"{where} key {key!r}", parts[0])
        elif len(parts) == 2:
            canonical = pair_key(*(element_symbol(f"{where} key {key!r}", part) for part in parts))
        else:
            raise BaselineError(f"{where}: key {key!r} is not an element symbol or a pair like 'Ar-Kr'")
        if canonical in normalised:
            raise BaselineError(f"{where}: the pair {canonical} is given twice")
        normalised[canonical] = _number(f"{where}['{key}']", item, allow_equal=allow_zero)
    return normalised


def _flat_params(kind: str, params: Mapping, where: str, *, per_pair_values: bool = False) -> dict:
    """Check the parameters of one entry (the flat form, ``ALL``, or one pair with ``per_pair_values``: numbers only
    and any subset of the keys) and return them normalised."""
    unknown = sorted(set(params) - set(_PARAM_KEYS[kind]), key=str)
    if unknown:
        raise BaselineError(f"{where}: unknown params {unknown} (allowed: {list(_PARAM_KEYS[kind])})")
    if not per_pair_values:
        missing = [key for key in _PARAM_KEYS[kind] if key not in params]
        if missing:
            raise BaselineError(f"{where}: missing params {missing} (needs {list(_PARAM_KEYS[kind])})")
    normalised = {}
    for key in _PARAM_KEYS[kind]:
        if key not in params:
            continue
        if kind == "lj" and key in ("epsilon", "sigma") and not per_pair_values:
            normalised[key] = _lj_parameter(key, params[key], allow_zero=key == "epsilon", where=where)
        else:
            normalised[key] = _number(
                f"{where}['{key}']",
                params[key],
                allow_equal=kind == "lj" and key == "epsilon",
                maximum=MAX_BASELINE_CUTOFF if key in ("cutoff", "inner_cutoff") else None,
            )
    return normalised


def _check_window(where: str, params: Mapping) -> None:
    inner, outer = params["inner_cutoff"], params["cutoff"]
    # LAMMPS accepts inner == outer but then divides by zero when it builds the switching polynomial.
    if inner >= outer:
        raise BaselineError(f"{where}['inner_cutoff'] ({inner!r}) must be smaller than 'cutoff' ({outer!r})")


def _per_pair_params(kind: str, params: Mapping) -> dict:
    """Check and normalise the per-pair form ``{"ALL": {...}, "A-B": {...}}`` (``ALL`` optional)."""
    normalised: dict[str, dict] = {}
    if DEFAULT_KEY in params:
        if not isinstance(params[DEFAULT_KEY], Mapping):
            raise BaselineError(f"{kind} params['ALL'] must be a dict of {list(_PARAM_KEYS[kind])}")
        normalised[DEFAULT_KEY] = _flat_params(kind, params[DEFAULT_KEY], f"{kind} params['ALL']")
        if kind == "zbl":
            _check_window(f"{kind} params['ALL']", normalised[DEFAULT_KEY])
    pairs: dict[str, dict] = {}
    for key, entry in params.items():
        if key == DEFAULT_KEY:
            continue
        where = f"{kind} params"
        canonical = _parse_pair(where, key)
        if canonical is None:
            hint = f" (for one element write '{key}-{key}')" if isinstance(key, str) and key in ELEMENTS else ""
            raise BaselineError(
                f"{where}: key {key!r} is not one of {list(_PARAM_KEYS[kind])}, 'ALL' or a pair of two element "
                f"symbols like 'Cu-Ni'{hint}"
            )
        if canonical in pairs:
            raise BaselineError(f"{where}: the pair {canonical} is given twice")
        where = f"{kind} params['{key}']"
        if not isinstance(entry, Mapping) or not entry:
            raise BaselineError(f"{where} must be a non-empty dict of {list(_PARAM_KEYS[kind])}, got {entry!r}")
        values = _flat_params(kind, entry, where, per_pair_values=True)
        if DEFAULT_KEY not in normalised:
            missing = [name for name in _PARAM_KEYS[kind] if name not in values]
            if missing:
                raise BaselineError(f"{where} lacks {missing} and there is no 'ALL' entry to take them from")
        pairs[canonical] = values
    normalised.update(sorted(pairs.items()))
    spec = {"type": kind, "params": normalised}
    # Every given pair must make sense together with the defaults it inherits (e.g. inner < cutoff).
    for canonical in pairs:
        pair_parameters(spec, *canonical.split("-"))
    return normalised


def validate_baseline(spec: Mapping) -> dict:
    """Check a baseline spec and return a normalised copy.

    Pass a dict ``{"type": "lj" | "zbl", "params": {...}}`` in the flat or the per-pair form (see the module
    docstring); for ZBL ``params`` may be left out (windows derived from the data later, :func:`derive_baseline`).
    The copy has the type in lower case, every number as a float, pair keys in a canonical order ("Ar-Kr", never
    "Kr-Ar"; ``ALL`` first, then the pairs sorted) and, for ZBL without params, ``"params": {}``. Raises
    :class:`BaselineError` with a message naming the offending key.
    """
    if not isinstance(spec, Mapping):
        raise BaselineError(f"a baseline must be a dict like {{'type': 'lj', 'params': {{...}}}}, got {spec!r}")
    unknown = sorted(set(spec) - {"type", "params"}, key=str)
    if unknown:
        raise BaselineError(f"unknown baseline key(s) {unknown}: a baseline has only 'type' and 'params'")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind.strip().lower() not in BASELINE_TYPES:
        raise BaselineError(f"baseline 'type' is {kind!r}; known types: {', '.join(BASELINE_TYPES)}")
    kind = kind.strip().lower()
    params = spec.get("params")
    if kind == "zbl" and params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise BaselineError(
            f"baseline 'params' must be a dict with keys {list(_PARAM_KEYS[kind])} (or per pair, with 'ALL' as "
            f"the default), got {params!r}"
        )
    flat_keys = set(params) & set(_PARAM_KEYS[kind])
    if flat_keys or not params and kind == "lj":
        other = sorted(set(params) - set(_PARAM_KEYS[kind]), key=str)
        if any(key == DEFAULT_KEY or (isinstance(key, str) and key.count("-") == 1) for key in other):
            raise BaselineError(
                f"{kind} params mix the flat keys {sorted(flat_keys)} with per-pair keys {other}: put the defaults "
                "under 'ALL'"
            )
        normalised = _flat_params(kind, params, f"{kind} params")
        if kind == "zbl":
            _check_window(f"{kind} params", normalised)
    else:
        normalised = _per_pair_params(kind, params)
    return {"type": kind, "params": normalised}


def _is_per_pair(spec: Mapping) -> bool:
    """True for the per-pair form (and for a ZBL spec without params), False for the flat form."""
    return not set(spec["params"]) & set(_PARAM_KEYS[spec["type"]])


def pair_parameters(spec: Mapping, a: str, b: str) -> dict[str, float]:
    """The baseline's parameters for the element pair (a, b), as numbers: ``{"inner_cutoff", "cutoff"}`` for ZBL,
    ``{"epsilon", "sigma", "cutoff"}`` for LJ (mixing and per-pair entries applied). ``spec`` must be normalised
    (:func:`validate_baseline`). Raises :class:`BaselineError` when the spec has nothing for this pair."""
    kind, params = spec["type"], spec["params"]
    pair = pair_key(a, b)
    if not _is_per_pair(spec):
        base, entry = params, {}
    else:
        base, entry = params.get(DEFAULT_KEY), params.get(pair, {})
    resolved = {}
    if base is not None:
        resolved = {"cutoff": base["cutoff"]}
        if kind == "zbl":
            resolved["inner_cutoff"] = base["inner_cutoff"]
        else:
            for name in ("epsilon", "sigma"):
                if name not in entry:  # a pair value replaces the default: no need to resolve (or cover) it
                    resolved[name] = _lj_pair_value(name, base[name], a, b)
    resolved.update(entry)
    missing = [name for name in _PARAM_KEYS[kind] if name not in resolved]
    if missing:
        derive = " or derive the missing windows from the data (derive_baseline)" if kind == "zbl" else ""
        raise BaselineError(f"the {kind} baseline has no parameters for the pair {pair}: add {pair!r} or 'ALL'{derive}")
    if kind == "zbl":
        _check_window(f"zbl params['{pair}']", resolved)
    return {name: resolved[name] for name in _PARAM_KEYS[kind]}


def missing_pairs(spec: Mapping, elements: Iterable[str]) -> list[str]:
    """The element pairs of ``elements`` for which ``spec`` has no parameters (e.g. ZBL windows still to derive)."""
    spec = validate_baseline(spec)
    symbols = sorted(set(elements))
    missing = []
    for index, a in enumerate(symbols):
        for b in symbols[index:]:
            try:
                pair_parameters(spec, a, b)
            except BaselineError:
                missing.append(pair_key(a, b))
    return missing


def baseline_cutoff(spec: Mapping) -> float:
    """The largest distance (Å) at which the baseline of ``spec`` has a non-zero energy or force, over all pairs."""
    spec = validate_baseline(spec)
    params = spec["params"]
    entries = [params] if not _is_per_pair(spec) else list(params.values())
    cutoffs = [entry["cutoff"] for entry in entries if "cutoff" in entry]
    if not cutoffs:
        raise BaselineError(f"the {spec['type']} baseline has no cutoff yet: derive its windows (derive_baseline)")
    return max(cutoffs)


# --------------------------------------------------------------------------------------------------------------------
# Pair models: per-element-pair coefficient tables plus a vectorised pair function
# --------------------------------------------------------------------------------------------------------------------


class _PairModel:
    """A radial pair potential: ``tables`` gives per species-pair coefficients (among them ``rc``, the pair's cutoff),
    ``pair_terms`` phi and dphi/dr."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._cache: dict[tuple[int, ...], dict[str, np.ndarray]] = {}

    def tables(self, numbers: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Coefficient tables, shape (k, k), for the sorted distinct atomic numbers ``numbers`` of a structure."""
        if numbers not in self._cache:
            symbols = [chemical_symbols[z] for z in numbers]
            params = [[pair_parameters(self.spec, a, b) for b in symbols] for a in symbols]
            table = {name: np.array([[p[name] for p in row] for row in params]) for name in _PARAM_KEYS[self.kind]}
            self._cache[numbers] = {"rc": table["cutoff"], **self._tables(numbers, table)}
        return self._cache[numbers]

    kind = ""

    def _tables(self, numbers: tuple[int, ...], table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def pair_terms(self, r: np.ndarray, c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _lj_pair_value(name: str, value: float | dict[str, float], a: str, b: str) -> float:
    """epsilon or sigma for the element pair (a, b): explicit pair first, then Lorentz-Berthelot mixing."""
    if not isinstance(value, dict):
        return value
    pair = pair_key(a, b)
    if pair in value:
        return value[pair]
    if a == b and a in value:
        return value[a]  # exactly the given number (sqrt(e * e) may differ from e in the last bit)
    for element in (a, b):
        if element not in value:
            raise BaselineError(
                f"lj params['{name}'] does not cover element {element!r} (pair {pair}): "
                f"add {element!r} or {pair!r} to it"
            )
    if name == "sigma":
        return 0.5 * (value[a] + value[b])
    return math.sqrt(value[a] * value[b])


class _LennardJones(_PairModel):
    """Shifted-force LJ, the function of LAMMPS ``pair_style lj/smooth/linear``."""

    kind = "lj"

    def _tables(self, numbers, table):
        eps, sigma, rc = table["epsilon"], table["sigma"], table["cutoff"]
        a12 = 4.0 * eps * sigma**12
        a6 = 4.0 * eps * sigma**6
        return {
            "a12": a12,
            "a6": a6,
            "v_rc": a12 / rc**12 - a6 / rc**6,  # V(rc)
            "dv_rc": -12.0 * a12 / rc**13 + 6.0 * a6 / rc**7,  # V'(rc)
        }

    def pair_terms(self, r, c):
        inv6 = r**-6
        v = inv6 * (c["a12"] * inv6 - c["a6"])
        dv = inv6 * (-12.0 * c["a12"] * inv6 + 6.0 * c["a6"]) / r
        phi = v - c["v_rc"] - (r - c["rc"]) * c["dv_rc"]
        return phi, dv - c["dv_rc"]


def _zbl_raw(r: np.ndarray, zz: np.ndarray, ainv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unswitched ZBL energy and its first and second radial derivatives (broadcasting over all arguments)."""
    r = np.asarray(r, dtype=float)
    decay = np.multiply.outer(ainv, _ZBL_D)  # d_k / a, shape (..., 4)
    terms = _ZBL_C * np.exp(-decay * r[..., None])
    s0 = terms.sum(axis=-1)  # phi(r/a)
    s1 = (terms * decay).sum(axis=-1)  # -d phi / dr
    s2 = (terms * decay**2).sum(axis=-1)  # d2 phi / dr2
    e = zz * s0 / r
    de = -zz * (s1 + s0 / r) / r
    d2e = zz * (s2 + 2.0 * s1 / r + 2.0 * s0 / r**2) / r
    return e, de, d2e


class _ZBL(_PairModel):
    """ZBL with the switching of LAMMPS ``pair_style zbl inner outer`` (a window per pair)."""

    kind = "zbl"

    def _tables(self, numbers, table):
        z = np.asarray(numbers, dtype=float)
        zz = _ZBL_E2 * np.outer(z, z)
        ainv = np.add.outer(z**_ZBL_POWER, z**_ZBL_POWER) / _ZBL_A0
        # The force gets A t^2 + B t^3 (t = r - inner) added above `inner`, the energy its integral A/3 t^3 + B/4 t^4
        # plus a constant C everywhere. A, B, C make E, E' and E'' vanish at the outer cutoff (t = tc).
        inner, outer = table["inner_cutoff"], table["cutoff"]
        tc = outer - inner
        e_c, de_c, d2e_c = _zbl_raw(outer, zz, ainv)
        a = (-3.0 * de_c + tc * d2e_c) / tc**2
        b = (2.0 * de_c - tc * d2e_c) / tc**3
        shift = -e_c + tc / 2.0 * de_c - tc**2 / 12.0 * d2e_c
        return {"zz": zz, "ainv": ainv, "inner": inner, "sw_a": a, "sw_b": b, "shift": shift}

    def pair_terms(self, r, c):
        e, de, _ = _zbl_raw(r, c["zz"], c["ainv"])
        t = np.maximum(r - c["inner"], 0.0)  # the polynomial is 0 below inner, as in LAMMPS
        phi = e + c["shift"] + t**3 * (c["sw_a"] / 3.0 + c["sw_b"] / 4.0 * t)
        dphi = de + t**2 * (c["sw_a"] + c["sw_b"] * t)
        return phi, dphi


def _build_model(spec: dict) -> _PairModel:
    return {"lj": _LennardJones, "zbl": _ZBL}[spec["type"]](spec)


# --------------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------------


def _neighbours(atoms: Atoms, cutoff: float, quantities: str = "ijdD"):
    """Directed pairs (by default i, j, |D|, D with D = r_j - r_i (+ lattice shift)), both directions listed."""
    # matscipy is the fast one, but it inverts the cell: a molecule with no cell goes through ASE's list instead.
    if abs(np.linalg.det(atoms.cell.array)) > 1e-12:
        return matscipy_neighbour_list(quantities, atoms, cutoff)
    return ase_neighbor_list(quantities, atoms, cutoff)


def _is_3d_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def _evaluate(model: _PairModel, atoms: Atoms, with_stress: bool) -> dict:
    """Energy, forces and (with_stress) Voigt stress of one structure."""
    n = len(atoms)
    numbers = atoms.numbers
    species, index = np.unique(numbers, return_inverse=True)
    tables = model.tables(tuple(int(z) for z in species))

    # One neighbour list out to the largest cutoff of the pairs present, then each pair cut at its own cutoff.
    i, j, d, vec = _neighbours(atoms, float(tables["rc"].max()))
    flat = index[i] * len(species) + index[j]
    inside = d < tables["rc"].ravel()[flat]  # strict, like LAMMPS (rsq < cutsq); both functions are 0 there anyway
    i, j, d, vec, flat = i[inside], j[inside], d[inside], vec[inside], flat[inside]
    if d.size and d.min() < 1e-8:
        k = int(np.argmin(d))
        raise BaselineError(f"atoms {i[k]} and {j[k]} overlap (distance {d[k]:.3g} Å): the baseline diverges")

    coefficients = {name: table.ravel()[flat] for name, table in tables.items()}
    phi, dphi = model.pair_terms(d, coefficients)

    # Each pair is listed twice (i->j and j->i), hence the 1/2 in energy and virial; the force on i from j is
    # dphi/dr along D (towards j when the pair is attractive).
    energy = 0.5 * float(phi.sum())
    pair_force = (dphi / d)[:, None] * vec
    forces = np.stack([np.bincount(i, weights=pair_force[:, k], minlength=n) for k in range(3)], axis=1)
    result = {"energy": energy, "forces": forces}
    if with_stress:
        virial = 0.5 * pair_force.T @ vec  # dE/d(strain), symmetric
        sigma = virial / atoms.get_volume()
        result["stress"] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return result


def evaluable_baseline(spec: Mapping) -> dict:
    """The normalised spec, refused when it has no parameters at all (a ZBL spec whose windows are still to derive)."""
    spec = validate_baseline(spec)
    if not spec["params"]:
        raise BaselineError(
            "the zbl baseline has no windows yet: derive them from the training data (derive_baseline) or give "
            "params, e.g. {'inner_cutoff': 1.0, 'cutoff': 2.0}"
        )
    return spec


class BaselineCalculator(Calculator):
    """ASE calculator of a baseline: energy, free_energy (the same) and forces always, stress for 3D-periodic cells.

    For a structure that is not periodic in all three directions no stress is computed; asking for it
    (``atoms.get_stress()``) raises ASE's ``PropertyNotImplementedError``, as for any calculator without stress.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    name = "baseline"

    def __init__(self, spec: Mapping, **kwargs):
        """``spec``: a baseline dict (see :func:`validate_baseline`). ``kwargs`` go to ASE's ``Calculator``."""
        super().__init__(**kwargs)
        self.spec = evaluable_baseline(spec)
        self._model = _build_model(self.spec)

    def todict(self) -> dict:
        return {"spec": self.spec}

    def calculate(self, atoms: Atoms | None = None, properties=("energy",), system_changes=all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        result = _evaluate(self._model, self.atoms, with_stress=_is_3d_periodic(self.atoms))
        result["free_energy"] = result["energy"]
        self.results = result


def baseline_calculator(spec: Mapping) -> BaselineCalculator:
    """An ASE calculator for the baseline ``spec`` (``{"type": ..., "params": {...}}``).

    Raises :class:`BaselineError` at once for an invalid spec, and when a structure has an element pair that the
    spec does not cover (per-element LJ parameters without that element, per-pair params without that pair and
    without ``ALL``). Add it to an ACE calculator with ``ase.calculators.mixing.SumCalculator``.
    """
    return BaselineCalculator(spec)


def evaluate_baseline(spec: Mapping, structures: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """Baseline energies, forces and stresses of many structures, e.g. to subtract from the labels before a fit.

    Returns a dict of arrays: ``energy`` (n,) in eV; ``forces`` (total number of atoms, 3) in eV/Å, the structures'
    forces concatenated in order; ``stress`` (n, 6) in eV/Å³ (Voigt, ASE sign), a row of NaN for a structure that is
    not periodic in all three directions; ``natoms`` (n,), to split ``forces`` with ``np.cumsum(natoms)[:-1]``.
    """
    model = _build_model(evaluable_baseline(spec))
    n = len(structures)
    energy = np.empty(n)
    stress = np.full((n, 6), np.nan)
    natoms = np.array([len(atoms) for atoms in structures], dtype=int)
    forces = []
    for k, atoms in enumerate(structures):
        periodic = _is_3d_periodic(atoms)
        result = _evaluate(model, atoms, with_stress=periodic)
        energy[k] = result["energy"]
        forces.append(result["forces"])
        if periodic:
            stress[k] = result["stress"]
    return {
        "energy": energy,
        "forces": np.concatenate(forces) if forces else np.zeros((0, 3)),
        "stress": stress,
        "natoms": natoms,
    }


# --------------------------------------------------------------------------------------------------------------------
# Windows from the data
# --------------------------------------------------------------------------------------------------------------------


def pair_min_distances(structures: Iterable[Atoms], cutoff: float = MIN_DISTANCE_SEARCH_CUTOFF) -> dict[str, float]:
    """The shortest distance (Å) of every element pair in ``structures``, periodic images included.

    Returns ``{"Cu-Ni": 2.21, ...}`` with canonical pair keys (:func:`pair_key`), sorted. A pair whose atoms are
    nowhere closer than ``cutoff`` (Å) is left out. One neighbour list per structure (matscipy; ASE's for a
    structure without a cell), reduced per pair of atomic numbers with ``np.minimum.at``.
    """
    size = len(chemical_symbols)
    shortest = np.full((size, size), np.inf)
    for atoms in structures:
        if len(atoms) < 2 and not atoms.pbc.any():
            continue
        i, j, d = _neighbours(atoms, cutoff, "ijd")
        if d.size:
            zi, zj = atoms.numbers[i], atoms.numbers[j]
            np.minimum.at(shortest, (np.minimum(zi, zj), np.maximum(zi, zj)), d)
    low, high = np.nonzero(np.isfinite(shortest))
    found = {
        pair_key(chemical_symbols[a], chemical_symbols[b]): float(shortest[a, b])
        for a, b in zip(low, high, strict=True)
    }
    return dict(sorted(found.items()))


def default_pair_distance(a: str, b: str) -> float:
    """The stand-in for the shortest distance of a pair absent from the data: the sum of the covalent radii (Å,
    ``ase.data.covalent_radii``), a typical bond length."""
    return float(covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]])


def derive_baseline(
    spec: Mapping,
    min_distances: Mapping[str, float],
    elements: Iterable[str],
    *,
    inner_fraction: float = DERIVED_INNER_FRACTION,
) -> dict:
    """A ZBL baseline with a window for every pair of ``elements``: the given ones kept, the missing ones derived.

    ``spec``: a baseline dict; ``{"type": "zbl"}`` derives every window, a per-pair dict without ``ALL`` the pairs
    it does not name. A spec with nothing missing (flat, with ``ALL``, or LJ) comes back normalised and unchanged.
    ``min_distances``: each pair's shortest distance in the training data (:func:`pair_min_distances`).

    The rule, for a pair with shortest training distance ``d``: ``cutoff = d`` (floored to 0.001 Å) and
    ``inner_cutoff = inner_fraction * cutoff`` (0.75 by default). Why: the fitted ACE part is switched off over the
    same window (pacemaker ``r_in`` = ``cutoff``, ``delta_in`` = its width), so the outer end must not be above any
    training distance of the pair, or ACE could not fit those data; and it should be no lower, or ACE is left alone
    between the window and the data, where it has nothing to go by (what one window for all pairs did, at the
    shortest distance of any pair). Below ``inner_cutoff`` the pair is pure ZBL; a quarter of ``d`` gives the
    switching polynomial room to stay smooth (its force terms scale with 1/width²) while ZBL takes over well above
    the distances (around half of ``d``) that an MD step can reach from the data. A pair absent from the data (never
    closer than the search radius of :func:`pair_min_distances`) gets ``d`` = the sum of the two covalent radii
    (``ase.data.covalent_radii``), a typical bond length: nothing says the pair comes closer, and with no data
    nothing is lost by switching ACE off there. Returns a fully explicit per-pair spec (no ``ALL``) that validates.
    """
    spec = validate_baseline(spec)
    symbols = sorted(set(elements))
    for symbol in symbols:
        element_symbol("derive_baseline elements", symbol)
    missing = missing_pairs(spec, symbols)
    if not missing:
        return spec
    if not 0 < inner_fraction < 1:
        raise BaselineError(f"inner_fraction must be in (0, 1), got {inner_fraction!r}")
    distances = {}
    for key, value in min_distances.items():
        canonical = _parse_pair("min_distances", key)
        if canonical is None:
            raise BaselineError(f"min_distances: key {key!r} is not a pair of two element symbols like 'Cu-Ni'")
        distances[canonical] = _number(f"min_distances['{key}']", value)
    params = {}
    for index, a in enumerate(symbols):
        for b in symbols[index:]:
            pair = pair_key(a, b)
            if pair not in missing:
                params[pair] = pair_parameters(spec, a, b)
                continue
            shortest = distances.get(pair, default_pair_distance(a, b))
            outer = math.floor(shortest * 1000) / 1000
            params[pair] = {"inner_cutoff": round(inner_fraction * outer, 3), "cutoff": outer}
    return validate_baseline({"type": "zbl", "params": params})


def zbl_window_rise(a: str, b: str, inner_cutoff: float, cutoff: float) -> float:
    """The energy (eV) of the switched ZBL dimer of elements ``a`` and ``b`` at ``inner_cutoff``: how far ZBL alone
    climbs across its window (it is 0 at ``cutoff``). 0.32 eV for H-H over [1.09, 1.46] Å, 8 eV for Cu-Cu over
    [1.65, 2.2] Å, 22 eV for C-O over [0.72, 0.96] Å."""
    spec = validate_baseline({"type": "zbl", "params": {"inner_cutoff": inner_cutoff, "cutoff": cutoff}})
    dimer = Atoms(a + b, positions=[[0.0, 0.0, 0.0], [float(inner_cutoff), 0.0, 0.0]])
    return float(_evaluate(_build_model(spec), dimer, with_stress=False)["energy"])


def core_repulsion(
    a: str, b: str, inner_cutoff: float, cutoff: float, wall: float = SHORT_RANGE_WALL
) -> list[float] | None:
    """pacemaker's ``core-repulsion: [prefactor, lambda]`` for the pair (a, b) whose ZBL window ``[inner_cutoff,
    cutoff]`` is given (ACE is switched off from ``r_in`` = ``cutoff`` in), or None when ZBL alone is enough.

    Why: across the window the fitted ACE part is switched off, and in doing so it gives back whatever energy the
    dimer had from ACE at the data's edge (measured on EMT molecules: 0.5 to 2.2 eV, with bumps inside the window;
    no data constrain it there). That must be paid by a repulsion that climbs more across the window. ZBL does so
    between heavy atoms; between light ones it is far too weak (0.32 eV for H-H, 5 eV for C-H), and wells of 0.2 to
    1.2 eV were the result. So a pair whose ZBL climbs less than ``wall`` (eV, :data:`SHORT_RANGE_WALL`: about ten
    times the largest give-back measured) gets pacemaker's core term ``prefactor * exp(-lambda r^2) / r`` on each
    atom, which pacemaker switches on with the same polynomial with which it switches ACE off (zero from ``cutoff``
    on: it changes nothing where the data are; fully on below ``cutoff - delta_in``, with ``delta_in`` from
    :func:`core_switch_width`) and which is monotonic by construction. ``lambda`` = 0 and ``prefactor`` = (wall -
    ZBL's climb) * inner_cutoff / 2, so that ZBL plus the core climb about ``wall`` across the window (a little
    less: pacemaker's evaluator tapers the term slightly, by 10 % at 1 Å). The term is part of the potential file:
    pyace, the ``.yace`` and LAMMPS's ``pair_style pace`` all evaluate it."""
    rise = zbl_window_rise(a, b, inner_cutoff, cutoff)
    if rise >= wall:
        return None
    return [round((wall - rise) * float(inner_cutoff) / 2.0, 6), 0.0]


def ace_give_back(distances: Sequence[float], energies: Sequence[float]) -> float:
    """How much a dimer curve falls going inwards (eV, >= 0): the largest amount by which the energy at a distance
    lies below the energy at any distance farther out. ``distances`` (Å) ascending, ``energies`` (eV) at them. Applied
    to the fitted ACE part alone across the window where it is switched off, it is what ACE gives back there, which
    the core repulsion must more than pay (:func:`core_over_ace`)."""
    energies = np.asarray(energies, dtype=float)
    if energies.size < 2:
        return 0.0
    if np.any(np.diff(np.asarray(distances, dtype=float)) <= 0):
        raise ValueError("the distances must be ascending")
    highest_outside = np.maximum.accumulate(energies[::-1])[::-1]  # the highest energy at or beyond each distance
    return float(np.max(highest_outside - energies))


def core_over_ace(give_back: float, distance: float, rank: int, floor: float, decay: float = 0.0) -> float:
    """The rule ``core_over_ace``: the prefactor of pacemaker's core repulsion ``prefactor * exp(-decay r^2) / r`` (on
    each atom: the dimer gets twice that) for a pair whose shortest training distance is ``distance`` (Å), such that
    the core's dimer energy at ``distance``, ``2 prefactor exp(-decay distance^2) / distance``, is at least ``rank``
    times ``give_back`` (eV, :func:`ace_give_back` of the fitted ACE part over the window where it is switched off),
    and never below ``floor`` (the prefactor :func:`core_repulsion` gave from ZBL's climb before the fit).

    Why ``rank`` times: across the window the ACE part of a dimer is switched off by the inner cutoff function ``f``
    (1 at ``r_in``, 0 at ``r_in - delta_in``), which multiplies every radial function; a product basis function of
    rank ``nu`` holds ``nu`` of them, so its energy goes as ``f^nu`` and falls up to ``nu`` times as steeply as ``f``
    (``d(f^nu) = nu f^(nu-1) df``). The core is switched on as ``1 - f``: it climbs as steeply as ``f`` falls, times
    its own size. A core at least ``nu`` times ACE's give-back therefore out-climbs the fall that switching ACE off
    causes, with ``nu`` the largest rank of the basis (3 for the protocols' bases). It does not beat the slope ACE has
    of its own at ``r_in``, where the switch starts flat: that onset dip shrinks only as 1/sqrt(prefactor), so
    :func:`~aiida_mlip_trainer.formats.basis.size_core_repulsion` narrows the switch for it (``delta_in^1.5``)."""
    if give_back < 0 or distance <= 0 or rank < 1 or floor < 0:
        raise ValueError(f"core_over_ace: give_back {give_back}, distance {distance}, rank {rank}, floor {floor}")
    needed = rank * float(give_back) * float(distance) * math.exp(float(decay) * float(distance) ** 2) / 2.0
    return max(float(floor), math.ceil(needed * 1e6) / 1e6)  # rounded up: at least the rule


def core_switch_width(cutoff: float, fraction: float = CORE_SWITCH_FRACTION) -> float:
    """pacemaker's ``delta_in`` (Å) for a pair that gets a core repulsion, whose ZBL window ends at ``cutoff`` = d
    (its shortest training distance; ``r_in`` stays d): ``fraction * d``, so that ACE is switched off, and the core
    switched on, over [0.95 d, d] rather than over the whole ZBL window [0.75 d, d].

    Why: pacemaker switches the core on as ``1 - f`` of ACE's switch-off, a polynomial that starts as ``10 t^3``
    (``t`` = (r_in - r) / delta_in, zero slope at ``r_in``). Across the whole window it climbs too slowly in its first
    hundredths of an Å to beat the slope the fitted ACE part has at the data's edge, and the curve dipped just below
    d (with the defaults on EMT acetic acid: C-C 7.0 meV over 0.013 Å, C-O 8.1 meV over 0.011 Å; on 70 mixed
    molecules C-C 16 meV over 0.015 Å: beyond the 5 meV tolerance). A dip's depth goes as ``delta_in ** 1.5``;
    measured on the same fitted ACE coefficients: 0.1 d left 2.5 and 3.0 meV, 0.075 d 0.5 and 2.0 meV, 0.05 d 1.5
    and 1.7 meV over 0.002 Å (seen only on a 0.0001 Å grid), well inside the tolerance.
    Unlike moving ``r_in`` above d (2 % of d also removed the dips, but put the steep start of the core on the data's
    shortest pairs and doubled their force error), this changes nothing where the data are: the fit is the same.
    Below 0.95 d the core is fully on and ZBL keeps switching on over its own window, both monotonic."""
    return round(float(fraction) * float(cutoff), 6)
