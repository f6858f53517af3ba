"""Fixtures for the oracles: the ASE oracle's script as a code, real CP2K as a code, small copper pools, and the
finite-difference cells a real DFT oracle labels (its forces and stress against its energies)."""

from __future__ import annotations

from typing import NamedTuple

import pytest


def copper_cells(count: int, seed: int = 0) -> list:
    """Small EMT copper cells (4 atoms, strained and rattled), unlabelled."""
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    structures = copper_emt(count, seed=seed, repeat=1, rattle=0.1)
    for atoms in structures:
        atoms.calc = None
    return structures


@pytest.fixture
def copper_pool():
    """An unlabelled pool of three 4-atom copper cells."""
    from aiida_mlip_trainer.data import TrainingSetData

    return TrainingSetData(copper_cells(3), labelled=False).store()


STEP = 0.01  # Å, atom displacement of the finite difference
STRAIN = 0.002  # of the xx strain


def silicon_difference_cells(step: float, strain: float) -> dict:
    """A rattled 2-atom silicon cell (``base``) and the cells of a central finite difference: its second atom moved
    along x by ±``step`` Å (``move_plus``, ``move_minus``) and the cell strained along xx by ±``strain``
    (``strain_plus``, ``strain_minus``); each named by its key."""
    import numpy as np
    from ase.build import bulk

    base = bulk("Si", "diamond", a=5.47)
    base.positions[1] += [0.07, -0.04, 0.03]
    cells = {"base": base}
    for sign, label in ((1, "plus"), (-1, "minus")):
        moved = base.copy()
        moved.positions[1, 0] += sign * step
        cells[f"move_{label}"] = moved
        strained = base.copy()
        deformation = np.eye(3)
        deformation[0, 0] += sign * strain
        strained.set_cell(base.cell.array @ deformation, scale_atoms=True)
        cells[f"strain_{label}"] = strained
    for name, atoms in cells.items():
        atoms.info["name"] = name
    return cells


class FiniteDifference(NamedTuple):
    """What :func:`finite_difference_labels` gives: the LabelingWorkChain, the labelled ``base`` cell (ase.Atoms), and
    the central differences of the oracle's energies: ``force`` (eV/Å, x of the moved atom, the one its label has
    at ``base.get_forces()[1, 0]``) and ``stress`` (eV/Å³, xx, as ``base.get_stress()[0]``)."""

    node: object
    base: object
    force: float
    stress: float


@pytest.fixture
def finite_difference_labels():
    """Label the cells of :func:`silicon_difference_cells` (STEP, STRAIN) with an oracle through LabelingWorkChain
    (two jobs at a time), check that every label came back, and return a :class:`FiniteDifference`."""
    from aiida.engine import run_get_node

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain

    def factory(oracle: dict) -> FiniteDifference:
        cells = silicon_difference_cells(STEP, STRAIN)
        pool = TrainingSetData(list(cells.values()), labelled=False).store()
        results, node = run_get_node(LabelingWorkChain, pool=pool, oracle=oracle, max_concurrent=2)
        assert node.is_finished_ok, node.exit_message
        assert results["failures"]["num_failed"] == 0
        labelled = {atoms.info["name"]: atoms for atoms in results["labelled"].to_atoms()}
        energy = {name: atoms.get_potential_energy() for name, atoms in labelled.items()}
        base = labelled["base"]
        force = -(energy["move_plus"] - energy["move_minus"]) / (2 * STEP)
        stress = (energy["strain_plus"] - energy["strain_minus"]) / (2 * STRAIN) / base.get_volume()
        return FiniteDifference(node, base, force, stress)

    return factory
