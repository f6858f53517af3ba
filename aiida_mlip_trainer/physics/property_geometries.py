"""Materials properties as geometries and single points, so that a second calculator (an oracle) can be compared on
the very same geometries.

A property is computed in two steps:

1. :func:`plan_geometries` relaxes the crystal with the potential and builds every geometry the requested
   properties need: the relaxed conventional cell (``bulk``), isotropically scaled cells (``eos``), strained cells
   (``elastic``, two strain patterns of cubic symmetry), the perfect and defect supercells of a vacancy, unrelaxed
   and relaxed slabs (``surface``), the displaced supercells of phonopy (``phonons``). It returns them as named
   :class:`ase.Atoms` with a *plan*: a JSON dict that says which geometry serves which property, and how.
2. :func:`properties_from_labels` computes every property from the energies, forces and stresses of those
   geometries, whoever computed them: the potential (:func:`compute_properties`) or the oracle's single points.

So the reference of a property is the oracle on the potential's geometries (relaxed by the potential). Its own
relaxation is a second :func:`compute_properties` with the oracle's calculator, when the oracle is one.

``settings`` (all optional; a property is computed when its key is present, ``{}`` takes its defaults; checked by
:func:`check_property_settings`):

``relax``
    ``fmax`` (eV/Å, 1e-5), ``steps`` (200): the relaxation of the conventional cell at zero pressure.
``eos``
    ``strain`` (0.03), ``points`` (7): Birch–Murnaghan over ±strain of the lattice: ``E0`` (eV/atom), ``V0``
    (Å³/atom), ``a0`` (Å), ``B0`` (GPa).
``elastic``
    ``strain`` (0.002), ``points`` (5): ``C11``, ``C12``, ``C44`` (GPa) of a cubic crystal, by least squares of
    stress against strain with a constant term (the oracle's residual stress at the potential's lattice).
``vacancy``
    ``supercell`` ([2, 2, 2] conventional cells), ``relax`` (true), ``fmax`` (1e-3), ``steps`` (500): the
    formation energy (eV), unrelaxed and relaxed.
``surface``
    ``miller`` ([[1, 1, 1], [1, 0, 0]]), ``layers`` (6), ``vacuum`` (10 Å), ``relax``, ``fmax``, ``steps``: the
    surface energies (J/m²), unrelaxed and relaxed.
``phonons``
    ``supercell`` ([2, 2, 2]), ``displacement`` (0.01 Å), ``qpoints`` (reduced coordinates of the primitive cell's
    reciprocal lattice; default X and L of fcc): the frequencies (THz) at each q-point, with phonopy.
``md``
    ``temperature`` (K, 1000), ``picoseconds`` (1), ``seed`` (0), ``supercell`` ([2, 2, 2]), ``timestep`` (fs, 2):
    whether Langevin MD stays physical (:func:`~aiida_mlip_trainer.physics.properties.md_stability`); the
    potential's only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..tools.structures import bounded_number

__all__ = (
    "ABSOLUTE_ONLY",
    "MAX_PROPERTY_ATOMS",
    "PROPERTIES",
    "check_property_settings",
    "compute_properties",
    "plan_geometries",
    "plan_names",
    "properties_from_labels",
    "property_rows",
)

PROPERTIES = ("eos", "elastic", "vacancy", "surface", "phonons", "md")
# The most atoms of any geometry a property job builds (a supercell, a slab): a bound on the job's cost.
MAX_PROPERTY_ATOMS = 1000

_DEFAULTS: dict[str, dict[str, Any]] = {
    "relax": {"fmax": 1e-5, "steps": 200},
    "eos": {"strain": 0.03, "points": 7},
    "elastic": {"strain": 2e-3, "points": 5},
    "vacancy": {"supercell": [2, 2, 2], "relax": True, "fmax": 1e-3, "steps": 500},
    "surface": {
        "miller": [[1, 1, 1], [1, 0, 0]],
        "layers": 6,
        "vacuum": 10.0,
        "relax": True,
        "fmax": 1e-3,
        "steps": 500,
    },
    "phonons": {"supercell": [2, 2, 2], "displacement": 0.01, "qpoints": [[0.5, 0.0, 0.5], [0.5, 0.5, 0.5]]},
    "md": {"temperature": 1000.0, "picoseconds": 1.0, "seed": 0, "supercell": [2, 2, 2], "timestep": 2.0},
}


# ------------------------------------------------------------------------------------------------------- settings
def _integer(value, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def _triple(value, where: str, check) -> list:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ValueError(f"{where} must be a list of three numbers, got {value!r}")
    return [check(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _supercell(value, where: str) -> list[int]:
    return _triple(value, where, lambda item, at: _integer(item, at, 1, 8))


def _miller(value, where: str) -> list[int]:
    indices = _triple(value, where, lambda item, at: _integer(item, at, -4, 4))
    if not any(indices):
        raise ValueError(f"{where} must not be (0, 0, 0)")
    return indices


def _qpoint(value, where: str) -> list[float]:
    return _triple(value, where, lambda item, at: bounded_number(item, at, -1.0, 1.0, open_below=False))


_CHECKS = {
    "relax": {"fmax": lambda v, w: bounded_number(v, w, 0.0, 1.0), "steps": lambda v, w: _integer(v, w, 1, 10000)},
    "eos": {"strain": lambda v, w: bounded_number(v, w, 0.0, 0.2), "points": lambda v, w: _integer(v, w, 5, 41)},
    "elastic": {"strain": lambda v, w: bounded_number(v, w, 0.0, 0.05), "points": lambda v, w: _integer(v, w, 2, 41)},
    "vacancy": {
        "supercell": _supercell,
        "relax": _boolean,
        "fmax": lambda v, w: bounded_number(v, w, 0.0, 1.0),
        "steps": lambda v, w: _integer(v, w, 1, 10000),
    },
    "surface": {
        "miller": lambda v, w: _list_of(v, w, _miller, 8),
        "layers": lambda v, w: _integer(v, w, 2, 40),
        "vacuum": lambda v, w: bounded_number(v, w, 0.0, 50.0),
        "relax": _boolean,
        "fmax": lambda v, w: bounded_number(v, w, 0.0, 1.0),
        "steps": lambda v, w: _integer(v, w, 1, 10000),
    },
    "phonons": {
        "supercell": _supercell,
        "displacement": lambda v, w: bounded_number(v, w, 0.0, 0.1),
        "qpoints": lambda v, w: _list_of(v, w, _qpoint, 20),
    },
    "md": {
        "temperature": lambda v, w: bounded_number(v, w, 0.0, 5000.0),
        "picoseconds": lambda v, w: bounded_number(v, w, 0.0, 100.0),
        "seed": lambda v, w: _integer(v, w, 0, 2**32 - 1),
        "supercell": _supercell,
        "timestep": lambda v, w: bounded_number(v, w, 0.0, 5.0),
    },
}


def _list_of(value, where: str, check, most: int) -> list:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= most:
        raise ValueError(f"{where} must be a list of 1 to {most} entries, got {value!r}")
    return [check(item, f"{where}[{index}]") for index, item in enumerate(value)]


def check_property_settings(settings: Mapping) -> dict:
    """``settings`` with every default filled in, or ValueError naming the key: only the known properties and
    keys, every number typed and bounded (supercells of 1 to 8 cells a side, Miller indices within ±4, at most 8
    surfaces and 20 q-points). At least one property must be asked for. The atoms each geometry will have are
    bounded by :func:`check_property_sizes` once the crystal is known."""
    if not isinstance(settings, Mapping):
        raise ValueError(f"the property settings must be a dict, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown property settings {unknown}: known are {sorted(_DEFAULTS)}")
    if not set(settings) & set(PROPERTIES):
        raise ValueError(f"ask for at least one property of {list(PROPERTIES)}")
    checked: dict[str, dict] = {}
    for key, defaults in _DEFAULTS.items():
        if key not in settings and key != "relax":
            continue
        given = settings.get(key)
        given = {} if given is None else given
        if not isinstance(given, Mapping):
            raise ValueError(f"{key} must be a dict of settings ({{}} for the defaults), got {given!r}")
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"{key}: unknown keys {unknown}; known are {sorted(defaults)}")
        checked[key] = {
            name: _CHECKS[key][name](given[name], f"{key}.{name}") if name in given else default
            for name, default in defaults.items()
        }
    return checked


def check_property_sizes(settings: dict, natoms: int) -> None:
    """ValueError when a supercell of the ``natoms``-atom crystal would exceed :data:`MAX_PROPERTY_ATOMS`."""
    for key in ("vacancy", "phonons", "md"):
        if key in settings:
            size = natoms * int(np.prod(settings[key]["supercell"]))
            if size > MAX_PROPERTY_ATOMS:
                raise ValueError(
                    f"{key}.supercell {settings[key]['supercell']} of the {natoms}-atom crystal has {size} atoms, "
                    f"more than {MAX_PROPERTY_ATOMS}"
                )


# ------------------------------------------------------------------------------------------------------ geometries
def _named(atoms, name: str):
    atoms = atoms.copy()
    atoms.calc = None
    atoms.info = {"name": name}
    return atoms


def _check_cubic(atoms) -> None:
    cell = np.asarray(atoms.cell)
    if not np.allclose(cell, np.diag(np.diag(cell))) or not np.allclose(np.diag(cell), cell[0, 0]):
        raise ValueError("give the conventional cubic cell (a diagonal cell with equal lengths)")


def _strain_patterns(strain: float, points: int) -> list[tuple[str, np.ndarray]]:
    """The two strain patterns of cubic symmetry: uniaxial ε_xx (C11, C12) and the shear γ_yz (C44), at ``points``
    amplitudes evenly spaced over ±``strain`` (zero left out when ``points`` is odd: the bulk is that point)."""
    patterns = []
    for amplitude in np.linspace(-strain, strain, points):
        if abs(amplitude) < 1e-12:
            continue
        normal = np.zeros((3, 3))
        normal[0, 0] = amplitude
        shear = np.zeros((3, 3))
        shear[1, 2] = shear[2, 1] = amplitude / 2  # engineering shear γ_yz = amplitude
        patterns += [("normal", normal), ("shear", shear)]
    return patterns


def plan_geometries(atoms, calculator, settings: Mapping) -> tuple[dict, list]:
    """``(plan, geometries)`` for the properties in ``settings`` (checked here): the crystal ``atoms`` (its
    conventional cubic cell for ``elastic`` and ``surface``) is relaxed at zero pressure with ``calculator``; every
    relaxation a property needs uses ``calculator``. The geometries are named (``info["name"]``) and carry no
    labels; the plan (JSON) names the geometries of each property and what else its formula needs."""
    from ase.build import surface

    from .properties import relax_lattice, relax_positions

    settings = check_property_settings(settings)
    check_property_sizes(settings, len(atoms))
    if "elastic" in settings or "surface" in settings:
        _check_cubic(atoms)
    bulk = relax_lattice(atoms, calculator, fmax=settings["relax"]["fmax"], steps=settings["relax"]["steps"])
    count = len(bulk)
    geometries = [_named(bulk, "bulk")]
    plan: dict[str, Any] = {
        "settings": settings,
        "bulk": {
            "name": "bulk",
            "atoms": count,
            "lattice_constant": float(bulk.cell.lengths()[0]),
            "volume_per_atom": float(bulk.get_volume() / count),
        },
    }

    def add(geometry, name: str) -> str:
        geometries.append(_named(geometry, name))
        return name

    if "eos" in settings:
        names = []
        for index, factor in enumerate(np.linspace(1 - settings["eos"]["strain"], 1 + settings["eos"]["strain"],
                                                   settings["eos"]["points"])):  # fmt: skip
            scaled = bulk.copy()
            scaled.set_cell(bulk.cell * factor, scale_atoms=True)
            names.append(add(scaled, f"eos_{index}"))
        plan["eos"] = {"names": names}
    if "elastic" in settings:
        names = []
        for index, (kind, strain) in enumerate(_strain_patterns(**settings["elastic"])):
            strained = bulk.copy()
            strained.set_cell(bulk.cell @ (np.eye(3) + strain), scale_atoms=True)
            names.append(add(strained, f"elastic_{kind}_{index}"))
        plan["elastic"] = {"names": ["bulk", *names]}
    if "vacancy" in settings:
        vacancy = settings["vacancy"]
        perfect = bulk.repeat(vacancy["supercell"])
        defect = perfect.copy()
        del defect[0]
        entry = {"perfect": add(perfect, "vacancy_perfect"), "unrelaxed": add(defect, "vacancy_unrelaxed")}
        if vacancy["relax"]:
            relaxed = relax_positions(defect, calculator, vacancy["fmax"], vacancy["steps"])
            entry["relaxed"] = add(relaxed, "vacancy_relaxed")
        plan["vacancy"] = entry
    if "surface" in settings:
        options = settings["surface"]
        entries = []
        for miller in options["miller"]:
            label = "".join(str(k) for k in miller).replace("-", "m")
            slab = surface(bulk, tuple(miller), options["layers"], vacuum=options["vacuum"], periodic=True)
            entry = {"miller": miller, "unrelaxed": add(slab, f"surface_{label}_unrelaxed")}
            if options["relax"]:
                relaxed = relax_positions(slab, calculator, options["fmax"], options["steps"])
                entry["relaxed"] = add(relaxed, f"surface_{label}_relaxed")
            entries.append(entry)
        plan["surface"] = {"slabs": entries}
    if "phonons" in settings:
        phonon = _phonopy(bulk, settings["phonons"]["supercell"])
        phonon.generate_displacements(distance=settings["phonons"]["displacement"])
        names = [
            add(_from_phonopy(displaced), f"phonons_{index}")
            for index, displaced in enumerate(phonon.supercells_with_displacements)
        ]
        plan["phonons"] = {"names": names, "dataset": _json_dataset(phonon.dataset)}
    return plan, geometries


def _phonopy(bulk, supercell: list[int]):
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(
        numbers=bulk.numbers.tolist(), cell=np.asarray(bulk.cell), scaled_positions=bulk.get_scaled_positions()
    )
    with warnings.catch_warnings():  # phonopy 4 warns that "auto" differs from phonopy 3's default: asked for here
        warnings.simplefilter("ignore")
        return Phonopy(unit, supercell_matrix=np.diag(supercell), primitive_matrix="auto")


def _from_phonopy(displaced):
    from ase import Atoms

    return Atoms(numbers=displaced.numbers, cell=displaced.cell, positions=displaced.positions, pbc=True)


def _json_dataset(dataset: dict) -> dict:
    """phonopy's displacement dataset of one-atom displacements as JSON (numbers and lists only)."""
    return {
        "natom": int(dataset["natom"]),
        "first_atoms": [
            {"number": int(entry["number"]), "displacement": [float(x) for x in entry["displacement"]]}
            for entry in dataset["first_atoms"]
        ],
    }


# ------------------------------------------------------------------------------------------------ from the labels
def _voigt_strain(reference_cell: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The small strain (Voigt, engineering shears) that takes ``reference_cell`` to ``cell`` (rows are vectors)."""
    deformation = np.linalg.solve(reference_cell, cell)  # cell = reference @ (1 + ε)
    strain = (deformation + deformation.T) / 2 - np.eye(3)
    return np.array([strain[0, 0], strain[1, 1], strain[2, 2], 2 * strain[1, 2], 2 * strain[0, 2], 2 * strain[0, 1]])


def _cubic_fit(strains: np.ndarray, stresses: np.ndarray) -> dict[str, float]:
    """C11, C12, C44 and six residual stresses by least squares of σ = σ0 + C ε (cubic C); GPa, with errors."""
    from ase.units import GPa

    rows, values = [], []
    for strain, stress in zip(strains, stresses, strict=True):
        for component in range(6):
            row = np.zeros(9)
            if component < 3:
                others = [k for k in range(3) if k != component]
                row[0] = strain[component]
                row[1] = strain[others[0]] + strain[others[1]]
            else:
                row[2] = strain[component]
            row[3 + component] = 1.0
            rows.append(row)
            values.append(stress[component] / GPa)
    design, target = np.array(rows), np.array(values)
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    residual = target - design @ solution
    dof = max(len(target) - design.shape[1], 1)
    covariance = np.linalg.pinv(design.T @ design) * float(residual @ residual) / dof
    errors = np.sqrt(np.clip(np.diag(covariance), 0, None))
    c11, c12, c44 = (float(x) for x in solution[:3])
    return {
        "C11": c11,
        "C12": c12,
        "C44": c44,
        "C11_err": float(errors[0]),
        "C12_err": float(errors[1]),
        "C44_err": float(errors[2]),
        "B": (c11 + 2 * c12) / 3,
        "residual_pressure": float(-np.mean(solution[3:6])),
        "units": "GPa",
    }


def _eos(plan: dict, labelled: Mapping[str, Any]) -> dict:
    from ase.eos import EquationOfState
    from ase.units import GPa

    structures = [labelled[name] for name in plan["eos"]["names"]]
    volumes = [atoms.get_volume() / len(atoms) for atoms in structures]
    energies = [atoms.get_potential_energy() / len(atoms) for atoms in structures]
    eos = EquationOfState(volumes, energies, eos="birchmurnaghan")
    v0, e0, bulk_modulus = eos.fit()
    bulk = plan["bulk"]
    return {
        "E0": float(e0),
        "V0": float(v0),
        "a0": float(bulk["lattice_constant"] * (v0 / bulk["volume_per_atom"]) ** (1 / 3)),
        "B0": float(bulk_modulus / GPa),
        "B0_prime": float(eos.eos_parameters[2]),
        "volumes": [float(v) for v in volumes],
        "energies": [float(e) for e in energies],
        "units": {"E0": "eV/atom", "V0": "Å^3/atom", "a0": "Å", "B0": "GPa"},
    }


def _elastic(plan: dict, labelled: Mapping[str, Any]) -> dict:
    reference = np.asarray(labelled["bulk"].cell)
    structures = [labelled[name] for name in plan["elastic"]["names"]]
    strains = np.array([_voigt_strain(reference, np.asarray(atoms.cell)) for atoms in structures])
    stresses = np.array([atoms.get_stress(voigt=True) for atoms in structures])
    result = _cubic_fit(strains, stresses)
    result["lattice_constant"] = plan["bulk"]["lattice_constant"]
    return result


def _vacancy(plan: dict, labelled: Mapping[str, Any]) -> dict:
    entry = plan["vacancy"]
    perfect = labelled[entry["perfect"]]
    count = len(perfect)
    energy = perfect.get_potential_energy()
    result = {"atoms": count, "units": "eV"}
    for kind in ("unrelaxed", "relaxed"):
        if kind in entry:
            result[kind] = float(labelled[entry[kind]].get_potential_energy() - (count - 1) / count * energy)
    return result


def _surfaces(plan: dict, labelled: Mapping[str, Any]) -> list[dict]:
    from ase.units import J, m

    bulk = labelled["bulk"]
    per_atom = bulk.get_potential_energy() / len(bulk)
    results = []
    for entry in plan["surface"]["slabs"]:
        slab = labelled[entry["unrelaxed"]]
        area = float(np.linalg.norm(np.cross(slab.cell[0], slab.cell[1])))
        result = {"miller": entry["miller"], "atoms": len(slab), "area": area, "units": "J/m^2"}
        for kind in ("unrelaxed", "relaxed"):
            if kind in entry:
                gamma = (labelled[entry[kind]].get_potential_energy() - len(slab) * per_atom) / (2 * area)
                result[kind] = float(gamma * m**2 / J)
        results.append(result)
    return results


def _phonons(plan: dict, labelled: Mapping[str, Any]) -> dict:
    entry = plan["phonons"]
    settings = plan["settings"]["phonons"]
    phonon = _phonopy(labelled["bulk"], settings["supercell"])
    phonon.dataset = {"natom": entry["dataset"]["natom"], "first_atoms": [
        {"number": first["number"], "displacement": np.array(first["displacement"])}
        for first in entry["dataset"]["first_atoms"]
    ]}  # fmt: skip
    phonon.forces = np.array([labelled[name].get_forces() for name in entry["names"]])
    phonon.produce_force_constants()
    phonon.run_qpoints(settings["qpoints"])
    frequencies = [sorted(float(f) for f in row) for row in phonon.qpoints.frequencies]
    return {"qpoints": settings["qpoints"], "frequencies": frequencies, "units": "THz"}


def properties_from_labels(plan: Mapping, labelled: Mapping[str, Any]) -> dict:
    """Every property of ``plan`` (but ``md``) from ``labelled``: the plan's geometries by name, each an
    :class:`ase.Atoms` whose calculator (a ``SinglePointCalculator`` will do) has the energy and, where the formula
    needs them, the stress (``elastic``) and forces (``phonons``). KeyError names a geometry that is missing."""
    missing = sorted(set(plan_names(plan)) - set(labelled))
    if missing:
        raise KeyError(f"no labels for the geometries {missing}")
    results: dict[str, Any] = {"lattice_constant": plan["bulk"]["lattice_constant"]}
    if "eos" in plan:
        results["eos"] = _eos(plan, labelled)
    if "elastic" in plan:
        results["elastic"] = _elastic(plan, labelled)
    if "vacancy" in plan:
        results["vacancy"] = _vacancy(plan, labelled)
    if "surface" in plan:
        results["surface"] = _surfaces(plan, labelled)
    if "phonons" in plan:
        results["phonons"] = _phonons(plan, labelled)
    return results


def plan_names(plan: Mapping) -> list[str]:
    """Every geometry name the plan refers to."""
    names = ["bulk"]
    for key in ("eos", "elastic", "phonons"):
        if key in plan:
            names += plan[key]["names"]
    if "vacancy" in plan:
        names += [value for kind, value in plan["vacancy"].items() if kind in ("perfect", "unrelaxed", "relaxed")]
    for entry in plan.get("surface", {}).get("slabs", []):
        names += [entry[kind] for kind in ("unrelaxed", "relaxed") if kind in entry]
    return names


def compute_properties(atoms, calculator, settings: Mapping) -> tuple[dict, dict, list]:
    """``(properties, plan, geometries)`` of the crystal ``atoms`` with ``calculator``: :func:`plan_geometries`,
    single points of ``calculator`` on each geometry, :func:`properties_from_labels`, and with ``md`` the MD check
    on the relaxed crystal's supercell (:func:`~aiida_mlip_trainer.physics.properties.md_stability`)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from .properties import md_stability

    plan, geometries = plan_geometries(atoms, calculator, settings)
    labelled = {}
    for geometry in geometries:
        evaluated = geometry.copy()
        evaluated.calc = calculator
        results = {"energy": evaluated.get_potential_energy(), "forces": evaluated.get_forces()}
        if evaluated.pbc.all():
            results["stress"] = evaluated.get_stress(voigt=True)
        labelled[geometry.info["name"]] = evaluated.copy()
        labelled[geometry.info["name"]].calc = SinglePointCalculator(labelled[geometry.info["name"]], **results)
    properties = properties_from_labels(plan, labelled)
    if "md" in plan["settings"]:
        md = plan["settings"]["md"]
        start = geometries[0].repeat(md["supercell"])
        record = md_stability(calculator, start, md["temperature"], md["picoseconds"], md["seed"],
                              timestep=md["timestep"])  # fmt: skip
        properties["md"] = {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
                            for key, value in record.items()} | {"temperature": md["temperature"]}  # fmt: skip
    return properties, plan, geometries


# ----------------------------------------------------------------------------------------------------- the table
def _scalar_rows(properties: Mapping) -> dict[str, tuple[float, str]]:
    """The scalar properties by row name: ``{"a0": (value, "Å"), "C11": ..., "vacancy": ..., "surface(111)": ...,
    "nu(0.5 0 0.5)#1": ...}`` (relaxed values where there are both)."""
    rows: dict[str, tuple[float, str]] = {}
    if "eos" in properties:
        eos = properties["eos"]
        rows |= {"a0": (eos["a0"], "Å"), "E0": (eos["E0"], "eV/atom"), "B0": (eos["B0"], "GPa")}
    if "elastic" in properties:
        rows |= {name: (properties["elastic"][name], "GPa") for name in ("C11", "C12", "C44")}
    if "vacancy" in properties:
        vacancy = properties["vacancy"]
        rows["vacancy"] = (vacancy.get("relaxed", vacancy["unrelaxed"]), "eV")
    for entry in properties.get("surface", []):
        rows["surface(" + "".join(str(k) for k in entry["miller"]) + ")"] = (
            entry.get("relaxed", entry["unrelaxed"]),
            "J/m^2",
        )
    if "phonons" in properties:
        for q, frequencies in zip(properties["phonons"]["qpoints"], properties["phonons"]["frequencies"], strict=True):
            label = " ".join(f"{x:g}" for x in q)
            for branch, value in enumerate(frequencies):
                rows[f"nu({label})#{branch}"] = (value, "THz")
    return rows


# An energy's zero is a convention (pseudopotentials, EMT's reference state): its relative error means nothing.
ABSOLUTE_ONLY = ("E0",)


def property_rows(potential: Mapping, reference: Mapping | None = None, relaxed: Mapping | None = None) -> list[dict]:
    """The table: one row per scalar property with the ``potential``'s value, the ``reference`` (the oracle's single
    points on the same geometries) and ``reference_relaxed`` (the oracle's own relaxation) when given, the errors
    ``reference_error`` (potential − reference, in the row's unit) and the relative errors
    ``reference_relative_error`` (the error over the reference's magnitude; None where the reference is zero, and
    for ``E0``: see :data:`ABSOLUTE_ONLY`); the same with ``reference_relaxed_``."""
    ours = _scalar_rows(potential)
    theirs = _scalar_rows(reference) if reference is not None else {}
    own = _scalar_rows(relaxed) if relaxed is not None else {}
    rows = []
    for name, (value, unit) in ours.items():
        row: dict[str, Any] = {"property": name, "unit": unit, "potential": value}
        for key, source in (("reference", theirs), ("reference_relaxed", own)):
            if name in source:
                other = source[name][0]
                row[key] = other
                row[f"{key}_error"] = value - other
                relative = name not in ABSOLUTE_ONLY and abs(other) > 1e-12
                row[f"{key}_relative_error"] = (value - other) / abs(other) if relative else None
        rows.append(row)
    return rows
