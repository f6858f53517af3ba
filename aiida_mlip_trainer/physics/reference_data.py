"""Small, reproducible labelled data sets from classical reference potentials (ASE calculators).

They stand in for DFT in the examples, tests and benchmarks: the reference is known exactly, so a fit's error
is a property of the fit alone. Energies in eV, forces in eV/Å, stress in eV/Å³.
"""

from __future__ import annotations

import numpy as np

__all__ = ("alloy_emt", "argon_lennard_jones", "copper_emt", "molecules_emt", "shortest_distance")

# Lennard-Jones argon (Rahman 1964): epsilon 10.4 meV, sigma 3.4 Å.
ARGON_EPSILON = 0.0104
ARGON_SIGMA = 3.4
ARGON_LATTICE = 5.26


def argon_lennard_jones(
    count: int,
    *,
    seed: int = 0,
    repeat: int = 2,
    strain: float = 0.03,
    rattle: float = 0.1,
    cutoff: float = 7.0,
) -> list:
    """``count`` fcc argon cells (``4 * repeat**3`` atoms each), randomly strained by up to ``strain`` and rattled
    by ``rattle`` Å, labelled by a smoothly cut Lennard-Jones potential (energy, forces, stress)."""
    from ase.build import bulk
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    calculator = LennardJones(sigma=ARGON_SIGMA, epsilon=ARGON_EPSILON, rc=cutoff, smooth=True)
    structures = []
    for index in range(count):
        lattice = ARGON_LATTICE * (1 + rng.uniform(-strain, strain))
        atoms = bulk("Ar", "fcc", a=lattice, cubic=True).repeat(repeat)
        atoms.rattle(rattle, seed=int(rng.integers(2**31)))
        atoms.calc = calculator
        results = {
            "energy": atoms.get_potential_energy(),
            "forces": atoms.get_forces(),
            "stress": atoms.get_stress(),
        }
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = f"Ar_fcc_{seed}_{index}"
        structures.append(atoms)
    return structures


def copper_emt(
    count: int,
    *,
    seed: int = 0,
    repeat: int = 2,
    strain: float = 0.03,
    rattle: float = 0.08,
    vacancies: int = 0,
) -> list:
    """``count`` fcc copper cells labelled by ASE's EMT (a many-body embedded-atom potential): random isotropic
    strain up to ``strain``, Gaussian rattle of ``rattle`` Å and ``vacancies`` atoms removed at random."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    calculator = EMT()
    structures = []
    for index in range(count):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + rng.uniform(-strain, strain)), cubic=True).repeat(repeat)
        for _ in range(vacancies):
            del atoms[int(rng.integers(len(atoms)))]
        atoms.rattle(rattle, seed=int(rng.integers(2**31)))
        atoms.calc = calculator
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = f"Cu_fcc_{seed}_{index}"
        structures.append(atoms)
    return structures


# fcc lattice constants (Å) of the elements ASE's EMT describes, near its own minima: a Vegard mix of them is the
# lattice of a random alloy before it is strained.
EMT_LATTICE = {"Al": 4.05, "Cu": 3.61, "Ni": 3.52, "Pd": 3.89, "Ag": 4.09, "Pt": 3.92, "Au": 4.08}


def alloy_emt(
    count: int,
    *,
    elements=("Cu", "Ni", "Au", "Pd"),
    seed: int = 0,
    repeat: int = 2,
    strain: float = 0.04,
    rattle: float = 0.1,
    close_pair_fraction: float = 0.2,
    close_pair_range: tuple[float, float] = (0.82, 0.92),
    close_pairs=None,
) -> list:
    """``count`` random fcc alloys of ``elements`` (each cell its own random composition, ``4 * repeat**3`` atoms),
    labelled by ASE's EMT: the Vegard lattice of the composition, random isotropic strain up to ``strain``, a
    Gaussian rattle of ``rattle`` Å, and in ``close_pair_fraction`` of the cells one atom pushed towards its nearest
    neighbour to ``close_pair_range`` times their distance (close contacts, as in MD at high temperature); with
    ``close_pairs`` (e.g. ``["Cu-Ni"]``) only neighbours that form one of these element pairs are pushed together.
    Each element pair then has its own shortest distance, set by the sizes of the atoms and by which pairs got
    pushed."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    calculator = EMT()
    structures = []
    for index in range(count):
        atoms = bulk("Cu", "fcc", a=1.0, cubic=True).repeat(repeat)
        weights = rng.dirichlet(np.ones(len(elements)))
        symbols = rng.choice(list(elements), size=len(atoms), p=weights)
        atoms.set_chemical_symbols(symbols.tolist())
        lattice = sum(EMT_LATTICE[s] for s in symbols) / len(symbols) * (1 + rng.uniform(-strain, strain))
        atoms.set_cell(atoms.cell * lattice, scale_atoms=True)
        atoms.rattle(rattle, seed=int(rng.integers(2**31)))
        if rng.random() < close_pair_fraction:
            mover = int(rng.integers(len(atoms)))
            vectors = atoms.get_distances(mover, range(len(atoms)), mic=True, vector=True)
            lengths = np.linalg.norm(vectors, axis=1)
            lengths[mover] = np.inf
            if close_pairs is not None:
                allowed = {tuple(sorted(pair.split("-"))) for pair in close_pairs}
                partners = [tuple(sorted((symbols[mover], other))) in allowed for other in symbols]
                lengths[~np.array(partners)] = np.inf
            if np.isfinite(lengths).any():
                other = int(np.argmin(lengths))
                atoms.positions[mover] += vectors[other] * (1 - rng.uniform(*close_pair_range))
        atoms.wrap()
        atoms.calc = calculator
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = f"alloy_{seed}_{index}"
        structures.append(atoms)
    return structures


# Small molecules of the elements ASE's EMT has (rough) parameters for besides the metals: H, C, N, O.
MOLECULES = ("CH4", "H2O", "CH3OH", "CO2", "C2H6")


def molecules_emt(
    count: int,
    *,
    molecules=MOLECULES,
    seed: int = 0,
    rattle: float = 0.06,
    box: float = 12.0,
) -> list:
    """``count`` isolated molecules (non-periodic, in a ``box`` Å cell), labelled by ASE's EMT (energy, forces; no
    stress): the names of ``molecules`` (``ase.build.molecule``, the experimental G2 geometries) in turn, randomly
    rotated and rattled by a Gaussian of ``rattle`` Å. EMT's H, C, N and O parameters are rough (its own minima are
    far from these geometries, so the forces are large): these are stand-ins for a molecular data set of light
    elements with realistic bond lengths, not chemistry."""
    from ase.build import molecule
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(seed)
    calculator = EMT()
    molecules = list(molecules)
    structures = []
    for index in range(count):
        name = molecules[index % len(molecules)]
        atoms = molecule(name, cell=[box] * 3, pbc=False)
        atoms.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COP")
        atoms.center()
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
        atoms.calc = calculator
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
        atoms.calc = SinglePointCalculator(atoms, **results)
        atoms.info["name"] = f"{name}_{seed}_{index}"
        structures.append(atoms)
    return structures


def shortest_distance(structures) -> float:
    """The shortest interatomic distance (Å) over all structures, periodic images included."""
    from ase.neighborlist import neighbor_list

    return min(float(neighbor_list("d", atoms, 4.0).min()) for atoms in structures)
