"""Fixtures for the oracles: the ASE oracle's script as a code, real CP2K as a code, small copper pools."""

from __future__ import annotations

import pytest

from tests.selection.conftest import _executable


@pytest.fixture
def ase_oracle_code(installed_code):
    """The `mlip-trainer-ase-oracle` script this package installs, as a code on localhost."""
    return installed_code("mlip-trainer-ase-oracle", _executable("mlip-trainer-ase-oracle"), "mlip_trainer.ase_oracle")


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
