"""Structure generators of an exploration protocol: where a user needs the potential besides the equilibrium bulk.

Each generator takes starting structures (``ase.Atoms``) and a specification (a plain dict: ``type`` and its
settings, checked by :func:`check_generator`) and returns new structures, each named
``<start>@<type><k>`` with its ``info["generator"]`` recording the specification (and seed) it came from. Random
ones draw from ``numpy.random.default_rng([seed, start index])``: the same specification gives the same structures.

- ``strain``: every cell scaled by each of ``strains`` (fractions, e.g. ``[-0.05, 0.05]``), along ``axes``
  (default all three: isotropic), atoms moved with the cell;
- ``shear``: each of ``shears`` (engineering shear strain γ) in the ``plane`` (``xy``, ``xz`` or ``yz``): the cell
  deformed by ``F = 1 + γ e_i ⊗ e_j``;
- ``vacancy``: ``count`` atoms removed at random (``samples`` cells per start);
- ``interstitial``: ``count`` atoms of ``element`` (default: the start's first element) inserted at random points
  at least ``min_distance`` Å (default 1.6) from every atom;
- ``slab``: the ``miller`` surface (``ase.build.surface``) of the start's cell, ``layers`` thick, ``vacuum`` Å of
  vacuum on each side along z; the cell stays periodic in all three directions, as pacemaker takes it (the vacuum
  separates the slab from its images), and exploration runs it NVT only (:func:`has_vacuum`);
- ``rattle``: every position displaced by a normal of ``stdev`` Å (``samples`` cells per start);
- ``substitution``: a ``fraction`` of the atoms (at least one) replaced by ``element`` at random (``samples`` cells per
  start), for alloys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..names import ELEMENTS

__all__ = ("GENERATORS", "VACUUM_GAP", "check_generator", "generate", "has_vacuum")

PLANES = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}
MAX_STRAIN = 0.5  # |strain| or |shear| of a generator; beyond it a cell is no longer a deformed crystal
MAX_COUNT = 1000  # atoms removed/inserted, cells per start
# A gap between atomic planes wider than this (Å) along a cell vector is vacuum: wider than the spacing of the
# planes of any crystal (under 4 Å) and than the slab generator's smallest sensible vacuum.
VACUUM_GAP = 5.0
_SETTINGS = {
    "strain": {"strains": None, "axes": [0, 1, 2]},
    "shear": {"shears": None, "plane": "xy"},
    "vacancy": {"count": 1, "samples": 1, "seed": 0},
    "interstitial": {"count": 1, "element": None, "min_distance": 1.6, "samples": 1, "seed": 0},
    "slab": {"miller": None, "layers": 3, "vacuum": 8.0},
    "rattle": {"stdev": 0.05, "samples": 1, "seed": 0},
    "substitution": {"element": None, "fraction": None, "samples": 1, "seed": 0},
}
_REQUIRED = {"strain": ("strains",), "shear": ("shears",), "slab": ("miller",), "substitution": ("element", "fraction")}


def _count(value, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_COUNT:
        raise ValueError(f"{where} must be an integer in [{minimum}, {MAX_COUNT}], got {value!r}")
    return value


def _number(value, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise ValueError(f"{where} must be a number in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _strains(values, where: str) -> list[float]:
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f"{where} must be a non-empty list of fractions, e.g. [-0.05, 0.05]")
    return [_number(value, f"each of {where}", -MAX_STRAIN, MAX_STRAIN) for value in values]


def _element(value, where: str) -> str:
    if value not in ELEMENTS:
        raise ValueError(f"{where} must be a chemical symbol, got {value!r}")
    return value


def check_generator(spec: Mapping) -> dict:  # noqa: PLR0912 - one clear message per mistake
    """The generator specification with defaults filled in; ValueError with a one-line message naming the setting."""
    if not isinstance(spec, Mapping) or spec.get("type") not in _SETTINGS:
        raise ValueError(f"a generator is a mapping with `type` one of {sorted(_SETTINGS)}, got {spec!r}")
    kind = spec["type"]
    unknown = sorted(set(spec) - {"type", *_SETTINGS[kind]}, key=str)
    if unknown:
        raise ValueError(f"generator {kind}: unknown setting(s) {unknown}; known are {sorted(_SETTINGS[kind])}")
    missing = [key for key in _REQUIRED.get(kind, ()) if key not in spec]
    if missing:
        raise ValueError(f"generator {kind}: give {', '.join(missing)}")
    result = {"type": kind, **_SETTINGS[kind], **spec}
    where = f"generator {kind}:"
    if "seed" in result:
        if isinstance(result["seed"], bool) or not isinstance(result["seed"], int) or result["seed"] < 0:
            raise ValueError(f"{where} seed must be an integer >= 0, got {result['seed']!r}")
    if "samples" in result:
        _count(result["samples"], f"{where} samples")
    if kind == "strain":
        result["strains"] = _strains(result["strains"], f"{where} strains")
        axes = result["axes"]
        if not isinstance(axes, list | tuple) or not axes or not set(axes) <= {0, 1, 2} or len(set(axes)) != len(axes):
            raise ValueError(f"{where} axes must be distinct axes among 0, 1, 2, got {axes!r}")
        result["axes"] = sorted(axes)
    elif kind == "shear":
        result["shears"] = _strains(result["shears"], f"{where} shears")
        if result["plane"] not in PLANES:
            raise ValueError(f"{where} plane must be one of {sorted(PLANES)}, got {result['plane']!r}")
    elif kind in ("vacancy", "interstitial"):
        _count(result["count"], f"{where} count")
        if kind == "interstitial":
            if result["element"] is not None:
                _element(result["element"], f"{where} element")
            result["min_distance"] = _number(result["min_distance"], f"{where} min_distance", 0.1, 5.0)
    elif kind == "slab":
        miller = result["miller"]
        if (
            not isinstance(miller, list | tuple)
            or len(miller) != 3
            or any(isinstance(m, bool) or not isinstance(m, int) for m in miller)
            or not any(miller)
        ):
            raise ValueError(f"{where} miller must be three integers, not all zero, e.g. [1, 1, 1], got {miller!r}")
        result["miller"] = list(miller)
        _count(result["layers"], f"{where} layers")
        result["vacuum"] = _number(result["vacuum"], f"{where} vacuum (Å)", 0.0, 100.0)
    elif kind == "rattle":
        result["stdev"] = _number(result["stdev"], f"{where} stdev (Å)", 0.0, 1.0)
    elif kind == "substitution":
        _element(result["element"], f"{where} element")
        result["fraction"] = _number(result["fraction"], f"{where} fraction", 0.0, 1.0)
    return result


def _named(atoms, start, spec: dict, k: int, **record):
    atoms.info = {"name": f"{start.info.get('name', 'structure')}@{spec['type']}{k}", "generator": {**spec, **record}}
    atoms.calc = None
    return atoms


def _strain(start, spec: dict, _rng) -> list:
    cells = []
    for k, strain in enumerate(spec["strains"]):
        scale = np.ones(3)
        scale[spec["axes"]] += strain
        atoms = start.copy()
        atoms.set_cell(atoms.cell.array @ np.diag(scale), scale_atoms=True)
        cells.append(_named(atoms, start, spec, k, strain=strain))
    return cells


def _shear(start, spec: dict, _rng) -> list:
    i, j = PLANES[spec["plane"]]
    cells = []
    for k, shear in enumerate(spec["shears"]):
        deformation = np.eye(3)
        deformation[i, j] = shear
        atoms = start.copy()
        # rows of the cell are the lattice vectors: r' = F r, so each row a -> F a, i.e. cell @ F.T
        atoms.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
        cells.append(_named(atoms, start, spec, k, shear=shear))
    return cells


def _vacancy(start, spec: dict, rng) -> list:
    if spec["count"] >= len(start):
        name = start.info.get("name")
        raise ValueError(f"generator vacancy: {name} has {len(start)} atoms, cannot remove {spec['count']}")
    cells = []
    for k in range(spec["samples"]):
        removed = np.sort(rng.choice(len(start), spec["count"], replace=False))
        atoms = start.copy()
        del atoms[removed.tolist()]
        cells.append(_named(atoms, start, spec, k, removed=removed.tolist()))
    return cells


def _interstitial(start, spec: dict, rng) -> list:
    from ase import Atom

    element = spec["element"] or start.get_chemical_symbols()[0]
    cells = []
    for k in range(spec["samples"]):
        atoms = start.copy()
        for _ in range(spec["count"]):
            for _try in range(10_000):
                point = rng.random(3) @ atoms.cell.array
                atoms.append(Atom(element, point))
                if min(atoms.get_distances(len(atoms) - 1, range(len(atoms) - 1), mic=True)) >= spec["min_distance"]:
                    break
                del atoms[-1]
            else:
                raise ValueError(
                    f"generator interstitial: no point {spec['min_distance']} Å from every atom of "
                    f"{start.info.get('name')}: lower min_distance"
                )
        cells.append(_named(atoms, start, spec, k, element=element))
    return cells


def _slab(start, spec: dict, _rng) -> list:
    from ase.build import surface

    if not start.pbc.all():
        raise ValueError(f"generator slab: {start.info.get('name')} is not a bulk cell (periodic in 3D)")
    atoms = surface(start, tuple(spec["miller"]), spec["layers"], vacuum=spec["vacuum"], periodic=True)
    atoms.pbc = True
    return [_named(atoms, start, spec, 0)]


def has_vacuum(atoms, gap: float = VACUUM_GAP) -> bool:
    """Whether a cell periodic in 3D holds vacuum: a gap wider than ``gap`` Å between the atoms' planes along one of
    its cell vectors (a slab, a molecule in a box). Such a cell must not be run under a barostat."""
    if len(atoms) == 0:
        return True
    scaled = atoms.get_scaled_positions(wrap=True)
    normals = np.linalg.inv(atoms.cell.array).T  # reciprocal vectors: the plane spacing along axis k is 1/|b_k|
    for axis in range(3):
        spacing = 1.0 / np.linalg.norm(normals[:, axis])
        levels = np.sort(scaled[:, axis])
        gaps = np.diff(np.concatenate([levels, [levels[0] + 1.0]]))
        if gaps.max() * spacing > gap:
            return True
    return False


def _rattle(start, spec: dict, rng) -> list:
    cells = []
    for k in range(spec["samples"]):
        atoms = start.copy()
        atoms.positions += rng.normal(0.0, spec["stdev"], atoms.positions.shape)
        cells.append(_named(atoms, start, spec, k))
    return cells


def _substitution(start, spec: dict, rng) -> list:
    count = max(1, round(spec["fraction"] * len(start)))
    cells = []
    for k in range(spec["samples"]):
        chosen = np.sort(rng.choice(len(start), count, replace=False))
        atoms = start.copy()
        symbols = atoms.get_chemical_symbols()
        for index in chosen:
            symbols[index] = spec["element"]
        atoms.set_chemical_symbols(symbols)
        cells.append(_named(atoms, start, spec, k, substituted=chosen.tolist()))
    return cells


GENERATORS: dict[str, Callable] = {
    "strain": _strain,
    "shear": _shear,
    "vacancy": _vacancy,
    "interstitial": _interstitial,
    "slab": _slab,
    "rattle": _rattle,
    "substitution": _substitution,
}


def generate(starts: Sequence, spec: Mapping) -> list:
    """The structures ``spec`` (checked by :func:`check_generator`) makes from each of ``starts`` (``ase.Atoms``),
    in order: for each start, its cells. Labels are dropped; ValueError when a start does not fit (a slab of a
    molecule, more vacancies than atoms)."""
    spec = check_generator(spec)
    structures = []
    for index, start in enumerate(starts):
        rng = np.random.default_rng([spec.get("seed", 0), index])
        clean = start.copy()
        clean.calc = None
        structures.extend(GENERATORS[spec["type"]](clean, spec, rng))
    return structures
