"""Physical pair-potential baselines for delta learning of ACE potentials.

In delta learning the ACE model is fitted to the *residual* ``label - baseline`` and the baseline is added back at
prediction time (in Python with :func:`baseline_calculator`, in LAMMPS with :func:`lammps_pair_commands`).
pacemaker has no baseline of its own, so the baseline has to be evaluated here, and it must be exactly the same
function in Python and in LAMMPS: each baseline below implements, formula for formula, an existing LAMMPS pair style.

A baseline is a plain, JSON-serialisable dict (so that it can be stored in an AiiDA ``Dict``)::

    {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}
    {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0}}

Units: eV, Å, eV/Å; stress in eV/Å³, Voigt order (xx, yy, zz, yz, xz, xy), ASE sign convention
(``atoms.get_stress()``: negative under compression).

``lj`` -- Lennard-Jones, shifted-force (LAMMPS ``pair_style lj/smooth/linear``)
    ``E(r) = V(r) - V(rc) - (r - rc) V'(rc)`` for ``r < rc`` (zero beyond), with ``V(r) = 4 eps [(s/r)^12 - (s/r)^6]``:
    energy *and* force go to zero continuously at ``rc``. ``epsilon`` (eV, >= 0) and ``sigma`` (Å, > 0) are each

    - one number, used for every pair of elements;
    - a dict per element, ``{"Ar": 3.4, "Kr": 3.65}``: unlike pairs are mixed with the Lorentz-Berthelot rules,
      ``sigma_ij = (sigma_i + sigma_j) / 2`` and ``epsilon_ij = sqrt(epsilon_i epsilon_j)``;
    - a dict with pair keys ``"Ar-Kr"`` (order-insensitive), alone or together with element keys: a pair given
      explicitly overrides the mixing.

    ``cutoff`` (Å) is one number for all pairs.
``zbl`` -- Ziegler-Biersack-Littmark universal screened nuclear repulsion (LAMMPS ``pair_style zbl inner outer``)
    ``E_ZBL(r) = Zi Zj e^2/(4 pi eps0) / r * phi(r/a)``, ``a = 0.46850 / (Zi^0.23 + Zj^0.23)`` Å,
    ``phi(x) = 0.18175 e^{-3.19980 x} + 0.50986 e^{-0.94229 x} + 0.28022 e^{-0.40290 x} + 0.02817 e^{-0.20162 x}``,
    ``e^2/(4 pi eps0) = 14.399645`` eV Å (LAMMPS ``units metal``). Between ``inner_cutoff`` and ``cutoff`` a cubic
    polynomial in ``t = r - inner_cutoff`` is added to the force (a quartic to the energy) so that energy, force and
    its derivative all vanish at ``cutoff``; the whole curve is shifted by the constant that makes ``E(cutoff) = 0``.
    The nuclear charges come from the chemical symbols: any element works, no per-element parameter is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.data import atomic_numbers, chemical_symbols
from ase.neighborlist import neighbor_list as ase_neighbor_list
from matscipy.neighbours import neighbour_list as matscipy_neighbour_list

__all__ = [
    "BASELINE_TYPES",
    "BaselineCalculator",
    "BaselineError",
    "baseline_calculator",
    "baseline_cutoff",
    "evaluate_baseline",
    "lammps_pair_commands",
    "validate_baseline",
]

BASELINE_TYPES = ("lj", "zbl")
_PARAM_KEYS = {"lj": ("epsilon", "sigma", "cutoff"), "zbl": ("inner_cutoff", "cutoff")}
_LAMMPS_STYLE = {"lj": "lj/smooth/linear", "zbl": "zbl"}

# Constants of LAMMPS's pair_zbl (pair_zbl_const.h) and of its `units metal` (qqr2e * qelectron^2), so that the
# Python and LAMMPS curves are the same function to rounding.
_ZBL_E2 = 14.399645
_ZBL_A0 = 0.46850
_ZBL_POWER = 0.23
_ZBL_C = np.array([0.18175, 0.50986, 0.28022, 0.02817])
_ZBL_D = np.array([3.19980, 0.94229, 0.40290, 0.20162])

# chemical_symbols[0] is the dummy "X": not an element a baseline can be given for.
_ELEMENTS = frozenset(chemical_symbols[1:])


class BaselineError(ValueError):
    """A baseline spec is invalid, or does not cover the elements of a structure."""


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def _number(where: str, value, *, minimum: float = 0.0, allow_equal: bool = False) -> float:
    """``value`` as a finite float ``> minimum`` (``>=`` with ``allow_equal``), else BaselineError naming ``where``."""
    # bool is a Real in Python; a True epsilon is certainly a mistake.
    if isinstance(value, bool) or not isinstance(value, Real):
        raise BaselineError(f"{where} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise BaselineError(f"{where} must be finite, got {value!r}")
    if value < minimum or (value == minimum and not allow_equal):
        relation = ">=" if allow_equal else ">"
        raise BaselineError(f"{where} must be {relation} {minimum:g}, got {value!r}")
    return value


def _element(where: str, symbol) -> str:
    if not isinstance(symbol, str) or symbol.strip() not in _ELEMENTS:
        raise BaselineError(f"{where}: {symbol!r} is not a chemical element symbol")
    return symbol.strip()


def _pair_key(a: str, b: str) -> str:
    """Canonical, order-insensitive key of an element pair."""
    return "-".join(sorted((a, b)))


def _lj_parameter(name: str, value, *, allow_zero: bool) -> float | dict[str, float]:
    """Normalise one LJ parameter: a number, or a dict keyed by elements ("Ar") and/or pairs ("Ar-Kr")."""
    where = f"lj params['{name}']"
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
            canonical = _element(f"{where} key {key!r}", parts[0])
        elif len(parts) == 2:
            canonical = _pair_key(*(_element(f"{where} key {key!r}", part) for part in parts))
        else:
            raise BaselineError(f"{where}: key {key!r} is not an element symbol or a pair like 'Ar-Kr'")
        if canonical in normalised:
            raise BaselineError(f"{where}: the pair {canonical} is given twice")
        normalised[canonical] = _number(f"{where}['{key}']", item, allow_equal=allow_zero)
    return normalised


def validate_baseline(spec: Mapping) -> dict:
    """Check a baseline spec and return a normalised copy.

    Pass a dict ``{"type": "lj" | "zbl", "params": {...}}`` (see the module docstring for the parameters). The copy
    has the type in lower case, every number as a float, and pair keys of per-pair dicts written in a canonical order
    ("Ar-Kr", never "Kr-Ar"). Raises :class:`BaselineError` with a message naming the offending key.
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
    if not isinstance(params, Mapping):
        raise BaselineError(f"baseline 'params' must be a dict with keys {list(_PARAM_KEYS[kind])}, got {params!r}")
    missing = [key for key in _PARAM_KEYS[kind] if key not in params]
    if missing:
        raise BaselineError(f"{kind} baseline: missing params {missing} (needs {list(_PARAM_KEYS[kind])})")
    unknown = sorted(set(params) - set(_PARAM_KEYS[kind]), key=str)
    if unknown:
        raise BaselineError(f"{kind} baseline: unknown params {unknown} (allowed: {list(_PARAM_KEYS[kind])})")

    if kind == "lj":
        normalised = {
            "epsilon": _lj_parameter("epsilon", params["epsilon"], allow_zero=True),
            "sigma": _lj_parameter("sigma", params["sigma"], allow_zero=False),
            "cutoff": _number("lj params['cutoff']", params["cutoff"]),
        }
    else:
        inner = _number("zbl params['inner_cutoff']", params["inner_cutoff"])
        outer = _number("zbl params['cutoff']", params["cutoff"])
        # LAMMPS accepts inner == outer but then divides by zero when it builds the switching polynomial.
        if inner >= outer:
            raise BaselineError(f"zbl params['inner_cutoff'] ({inner!r}) must be smaller than 'cutoff' ({outer!r})")
        normalised = {"inner_cutoff": inner, "cutoff": outer}
    return {"type": kind, "params": normalised}


def baseline_cutoff(spec: Mapping) -> float:
    """The largest distance (Å) at which the baseline of ``spec`` has a non-zero energy or force."""
    return validate_baseline(spec)["params"]["cutoff"]


# --------------------------------------------------------------------------------------------------------------------
# Pair models: per-element-pair coefficient tables plus a vectorised pair function
# --------------------------------------------------------------------------------------------------------------------


class _PairModel:
    """A radial pair potential: ``tables`` gives per species-pair coefficients, ``pair_terms`` phi and dphi/dr."""

    def __init__(self, params: dict):
        self.params = params
        self.cutoff: float = params["cutoff"]
        self._cache: dict[tuple[int, ...], dict[str, np.ndarray]] = {}

    def tables(self, numbers: tuple[int, ...]) -> dict[str, np.ndarray]:
        """Coefficient tables, shape (k, k), for the sorted distinct atomic numbers ``numbers`` of a structure."""
        if numbers not in self._cache:
            self._cache[numbers] = self._tables(numbers)
        return self._cache[numbers]

    def _tables(self, numbers: tuple[int, ...]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def pair_terms(self, r: np.ndarray, c: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _lj_pair_value(name: str, value: float | dict[str, float], a: str, b: str) -> float:
    """epsilon or sigma for the element pair (a, b): explicit pair first, then Lorentz-Berthelot mixing."""
    if not isinstance(value, dict):
        return value
    pair = _pair_key(a, b)
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

    def _tables(self, numbers):
        symbols = [chemical_symbols[z] for z in numbers]
        eps = np.array([[_lj_pair_value("epsilon", self.params["epsilon"], a, b) for b in symbols] for a in symbols])
        sigma = np.array([[_lj_pair_value("sigma", self.params["sigma"], a, b) for b in symbols] for a in symbols])
        rc = self.cutoff
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
        phi = v - c["v_rc"] - (r - self.cutoff) * c["dv_rc"]
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
    """ZBL with the switching of LAMMPS ``pair_style zbl inner outer``."""

    def _tables(self, numbers):
        z = np.asarray(numbers, dtype=float)
        zz = _ZBL_E2 * np.outer(z, z)
        ainv = np.add.outer(z**_ZBL_POWER, z**_ZBL_POWER) / _ZBL_A0
        # The force gets A t^2 + B t^3 (t = r - inner) added above `inner`, the energy its integral A/3 t^3 + B/4 t^4
        # plus a constant C everywhere. A, B, C make E, E' and E'' vanish at the outer cutoff (t = tc).
        tc = self.cutoff - self.params["inner_cutoff"]
        e_c, de_c, d2e_c = _zbl_raw(np.full_like(zz, self.cutoff), zz, ainv)
        a = (-3.0 * de_c + tc * d2e_c) / tc**2
        b = (2.0 * de_c - tc * d2e_c) / tc**3
        shift = -e_c + tc / 2.0 * de_c - tc**2 / 12.0 * d2e_c
        return {"zz": zz, "ainv": ainv, "sw_a": a, "sw_b": b, "shift": shift}

    def pair_terms(self, r, c):
        e, de, _ = _zbl_raw(r, c["zz"], c["ainv"])
        t = np.maximum(r - self.params["inner_cutoff"], 0.0)  # the polynomial is 0 below inner, as in LAMMPS
        phi = e + c["shift"] + t**3 * (c["sw_a"] / 3.0 + c["sw_b"] / 4.0 * t)
        dphi = de + t**2 * (c["sw_a"] + c["sw_b"] * t)
        return phi, dphi


def _build_model(spec: dict) -> _PairModel:
    return {"lj": _LennardJones, "zbl": _ZBL}[spec["type"]](spec["params"])


# --------------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------------


def _neighbours(atoms: Atoms, cutoff: float):
    """Directed pairs (i, j, |D|, D) with D = r_j - r_i (+ lattice shift), both directions listed."""
    # matscipy is the fast one, but it inverts the cell: a molecule with no cell goes through ASE's list instead.
    if abs(np.linalg.det(atoms.cell.array)) > 1e-12:
        return matscipy_neighbour_list("ijdD", atoms, cutoff)
    return ase_neighbor_list("ijdD", atoms, cutoff)


def _is_3d_periodic(atoms: Atoms) -> bool:
    return bool(atoms.pbc.all()) and atoms.cell.rank == 3


def _evaluate(model: _PairModel, atoms: Atoms, with_stress: bool) -> dict:
    """Energy, forces and (with_stress) Voigt stress of one structure."""
    n = len(atoms)
    numbers = atoms.numbers
    species, index = np.unique(numbers, return_inverse=True)
    tables = model.tables(tuple(int(z) for z in species))

    i, j, d, vec = _neighbours(atoms, model.cutoff)
    inside = d < model.cutoff  # strict, like LAMMPS (rsq < cutsq); both functions are 0 at the cutoff anyway
    i, j, d, vec = i[inside], j[inside], d[inside], vec[inside]
    if d.size and d.min() < 1e-8:
        k = int(np.argmin(d))
        raise BaselineError(f"atoms {i[k]} and {j[k]} overlap (distance {d[k]:.3g} Å): the baseline diverges")

    flat = index[i] * len(species) + index[j]
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
        self.spec = validate_baseline(spec)
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

    Raises :class:`BaselineError` at once for an invalid spec, and when a structure has an element that per-element
    LJ parameters do not cover. Add it to an ACE calculator with ``ase.calculators.mixing.SumCalculator``.
    """
    return BaselineCalculator(spec)


def evaluate_baseline(spec: Mapping, structures: Sequence[Atoms]) -> dict[str, np.ndarray]:
    """Baseline energies, forces and stresses of many structures, e.g. to subtract from the labels before a fit.

    Returns a dict of arrays: ``energy`` (n,) in eV; ``forces`` (total number of atoms, 3) in eV/Å, the structures'
    forces concatenated in order; ``stress`` (n, 6) in eV/Å³ (Voigt, ASE sign), a row of NaN for a structure that is
    not periodic in all three directions; ``natoms`` (n,), to split ``forces`` with ``np.cumsum(natoms)[:-1]``.
    """
    model = _build_model(validate_baseline(spec))
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
# LAMMPS
# --------------------------------------------------------------------------------------------------------------------


def _lammps_number(value: float) -> str:
    # repr is the shortest string that reads back as the same double: LAMMPS then uses bit-identical parameters.
    return repr(float(value))


def lammps_pair_commands(spec: Mapping, elements: Sequence[str], ace_file: str | None = "potential.yace") -> list[str]:
    """LAMMPS input lines that add the baseline ``spec`` to an ACE potential.

    ``elements`` gives the element of each LAMMPS atom type, in order (type 1 is ``elements[0]``); it must match
    the element order of the ``pair_coeff * * pace`` line. The result, for LJ::

        pair_style hybrid/overlay pace lj/smooth/linear 7.0
        pair_coeff * * pace potential.yace Ar Kr
        pair_coeff 1 1 lj/smooth/linear 0.0104 3.4
        ...

    and for ZBL ``pair_style hybrid/overlay pace zbl INNER OUTER`` with ``pair_coeff i j zbl Zi Zj``. Every type pair
    gets an explicit coefficient line (mixing is done here, so LAMMPS's own mixing rule never applies). With
    ``ace_file=None`` the lines describe the baseline alone (``pair_style lj/smooth/linear 7.0``,
    ``pair_coeff 1 1 0.0104 3.4``, ...): that form runs in any LAMMPS, also one built without ML-PACE.
    """
    spec = validate_baseline(spec)
    if isinstance(elements, str) or not elements:
        raise BaselineError(f"elements must be a non-empty list of element symbols, got {elements!r}")
    elements = [_element("lammps_pair_commands elements", symbol) for symbol in elements]
    if len(set(elements)) != len(elements):
        raise BaselineError(f"elements {elements} contain a duplicate: give each element one atom type")
    params = spec["params"]
    kind = spec["type"]
    style = _LAMMPS_STYLE[kind]
    if kind == "lj":
        style_args = _lammps_number(params["cutoff"])
    else:
        style_args = f"{_lammps_number(params['inner_cutoff'])} {_lammps_number(params['cutoff'])}"

    coefficients = []
    for i, a in enumerate(elements, start=1):
        for j, b in enumerate(elements[i - 1 :], start=i):
            if kind == "lj":
                eps = _lj_pair_value("epsilon", params["epsilon"], a, b)
                sigma = _lj_pair_value("sigma", params["sigma"], a, b)
                args = f"{_lammps_number(eps)} {_lammps_number(sigma)}"
            else:
                args = f"{atomic_numbers[a]} {atomic_numbers[b]}"
            coefficients.append((i, j, args))

    if ace_file is None:
        return [f"pair_style {style} {style_args}"] + [f"pair_coeff {i} {j} {args}" for i, j, args in coefficients]
    return [
        f"pair_style hybrid/overlay pace {style} {style_args}",
        f"pair_coeff * * pace {ace_file} {' '.join(elements)}",
    ] + [f"pair_coeff {i} {j} {style} {args}" for i, j, args in coefficients]
