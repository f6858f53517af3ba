"""Large pools of 32-atom copper cells for the scale and memory benchmarks (imported by them, not run)."""

from __future__ import annotations

import numpy as np


def copper_cells(count: int, *, labelled: bool = True) -> list:
    """``count`` distinct 32-atom fcc copper cells (rattled by 0.1 Å, strained by up to 3 %). The first 1000 are
    labelled by EMT; after that the cells and labels are reused cyclically with a 1 mÅ jitter, because neither the
    size of a node nor the memory of ``pace_select`` depends on the values. With ``labelled=False`` the labels are
    left out (a candidate pool)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mlip_trainer.physics.reference_data import copper_emt

    sources = copper_emt(min(count, 1000), seed=99, rattle=0.1)
    rng = np.random.default_rng(0)
    structures = []
    for index in range(count):
        source = sources[index % len(sources)]
        atoms = source.copy()
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)  # distinct structures
        if labelled:
            atoms.calc = SinglePointCalculator(atoms, **source.calc.results)
        atoms.info["name"] = f"cu_{index}"
        structures.append(atoms)
    return structures
