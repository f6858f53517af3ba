"""A molecule (C, H, O; non-periodic) trained with the defaults is repulsive below every pair's shortest training
distance (issue 18, item 8): through ``launch.train(..., protocol="fast", physics_baseline={"type": "zbl"})``, with
the work chain's own check (ERROR_SHORT_RANGE_NOT_REPULSIVE otherwise) and an independent dimer scan beside it."""

import numpy as np
import pytest
from ase import Atoms

from aiida_mlip_trainer.launch import TrainingError, train
from aiida_mlip_trainer.physics.baselines import pair_min_distances
from aiida_mlip_trainer.physics.reference_data import molecules_emt
from aiida_mlip_trainer.physics.short_range import WELL_TOLERANCE, WIDTH_TOLERANCE

pytestmark = pytest.mark.real_pacemaker


def dimer_energies(calculator, a: str, b: str, distances) -> np.ndarray:
    """Energies (eV) of the isolated dimer a-b at ``distances`` (Å), relative to the two isolated atoms."""

    def energy(atoms: Atoms) -> float:
        atoms.calc = calculator
        return float(atoms.get_potential_energy())

    def alone(symbol: str) -> Atoms:
        return Atoms(symbol, positions=[[10.0, 10.0, 10.0]], cell=[20.0] * 3, pbc=False)

    isolated = energy(alone(a)) + energy(alone(b))
    return np.array(
        [
            energy(Atoms(a + b, positions=[[10 - r / 2, 10, 10], [10 + r / 2, 10, 10]], cell=[20.0] * 3, pbc=False))
            - isolated
            for r in distances
        ]
    )


def test_a_molecule_trains_with_the_defaults_to_a_repulsive_short_range(pacemaker_code, pace_tool_codes):
    # Acetic acid (C2H4O2, 8 atoms) holds all six C/H/O pairs: C-C, C-H, C-O, O-H, H-H and O-O. 28 of them: 56 O
    # atoms, more than the 40 functions per element of the "fast" basis; 224 atoms in all, so that the fit's cost is
    # mostly pacemaker's start (the whole test: 3 min 16 s on 2 cores under a load of 4-5, 2.5 min of it pacemaker).
    structures = molecules_emt(28, molecules=("CH3COOH",), seed=1)
    codes = {"pacemaker": pacemaker_code, **pace_tool_codes}
    # the defaults: no short_range_check given, so a pair that is not repulsive ends the chain with
    # ERROR_SHORT_RANGE_NOT_REPULSIVE
    try:
        results = train(structures, codes, protocol="fast", physics_baseline={"type": "zbl"})
    except TrainingError as error:  # ERROR_SHORT_RANGE_NOT_REPULSIVE: show what the check found
        report = error.node.outputs.short_range.get_dict()
        pytest.fail(f"{error}: { ({key: report['pairs'][key]['dimer'] for key in report['not_repulsive']}) }")
    report = results["short_range"].get_dict()
    pairs = report["pairs"]
    failing = {key: pairs[key]["dimer"] for key in report["not_repulsive"]}
    assert report["all_repulsive"] and not failing, failing
    assert set(pairs) == {"C-C", "C-H", "C-O", "H-H", "H-O", "O-O"}
    for key, entry in pairs.items():
        dimer = entry["dimer"]
        # repulsive within the stated tolerance: any dip at most 5 meV deep and 0.05 Å wide; the wall stands
        # well above the data's edge at half of d
        assert dimer["repulsive"] and dimer["well_depth"] <= WELL_TOLERANCE, (key, dimer)
        assert all(b - a <= WIDTH_TOLERANCE + 1e-9 for a, b in dimer["not_rising"]), (key, dimer)
        assert dimer["rise_below_minimum"] > 1.0, (key, dimer)

    # Independently: 0.005 Å steps from each pair's shortest distance in all the data down to half of it. Every
    # step inwards may lose at most the tolerance (noise), and the wall stands at least 1 eV above the data's edge.
    calculator = results["potential"].get_calculator()
    for key, shortest in pair_min_distances(structures).items():
        distances = np.arange(shortest, 0.5 * shortest, -0.005)
        energies = dimer_energies(calculator, *key.split("-"), distances)
        deepest = float(np.max(np.maximum.accumulate(energies) - energies))  # how far a point lies below one outside
        assert deepest <= WELL_TOLERANCE, (key, deepest)
        assert energies[-1] > energies[0] + 1.0, (key, energies[0], energies[-1])
