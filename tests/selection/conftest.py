"""Fixtures for structure selection and active sets: a pool that mixes near-copies of the training data with
clearly new structures, a fitted selector potential, real and mocked pace_select / pace_activeset codes."""

from __future__ import annotations

import json
import pathlib

import pytest

from tests.conftest import FIXTURES, _executable

# A real pacemaker fit of LJ argon (cutoff 7 Å, 36 functions) on argon_lennard_jones(16, seed=1).
POTENTIAL = FIXTURES / "pace_train_success" / "output_potential.yaml"
# Positions in the pool built by `argon_pool` that are clearly new for that potential.
NEW_IN_POOL = {6, 7, 8, 9}


def build_pool_structures() -> list:
    """6 near-copies of the training data (same strain and rattle), 3 strongly strained and rattled cells,
    and 1 cell with a vacancy: 10 unlabelled structures, 319 atoms."""
    from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

    near = argon_lennard_jones(6, seed=3)
    far = argon_lennard_jones(3, seed=4, strain=0.12, rattle=0.35)
    vacancy = argon_lennard_jones(1, seed=5)[0].copy()
    del vacancy[[0]]
    vacancy.info["name"] = "Ar_fcc_vacancy"
    return near + far + [vacancy]


@pytest.fixture
def argon_pool():
    """The pool of :func:`build_pool_structures` as an unlabelled TrainingSetData (stored)."""
    from aiida_mlip_trainer.data import TrainingSetData

    return TrainingSetData(build_pool_structures(), labelled=False).store()


@pytest.fixture
def labelled_argon_pool():
    """The same pool with its LJ labels (the vacancy cell relabelled)."""
    from ase.calculators.lj import LennardJones
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.physics.reference_data import ARGON_EPSILON, ARGON_SIGMA

    structures = build_pool_structures()
    vacancy = structures[-1]
    vacancy.calc = LennardJones(sigma=ARGON_SIGMA, epsilon=ARGON_EPSILON, rc=7.0, smooth=True)
    results = {"energy": vacancy.get_potential_energy(), "forces": vacancy.get_forces(), "stress": vacancy.get_stress()}
    vacancy.calc = SinglePointCalculator(vacancy, **results)
    return TrainingSetData(structures).store()


@pytest.fixture
def fitted_potential():
    from aiida_mlip_trainer.data import PacePotentialData

    return PacePotentialData(POTENTIAL).store()


@pytest.fixture
def potential_with_active_set():
    """The fitted potential with the active set pace_activeset computed on its training data (recorded)."""
    from aiida_mlip_trainer.data import PacePotentialData

    return PacePotentialData(POTENTIAL, active_set=FIXTURES / "pace_activeset_success" / "potential.asi").store()


@pytest.fixture
def pace_select_code(installed_code):
    return installed_code("pace_select", _executable("pace_select"), "mlip_trainer.pace_select")


@pytest.fixture
def pace_activeset_code(installed_code):
    return installed_code("pace_activeset", _executable("pace_activeset"), "mlip_trainer.pace_activeset")


def recorded_indices(case: str) -> list[int]:
    return json.loads((FIXTURES / case / "selected_pool_index.json").read_text())


@pytest.fixture
def parse_job(generate_calc_job_node):
    """Parse a folder of retrieved files as if the CalcJob ``entry_point`` had produced them from ``inputs``;
    ``temporary`` is the folder of the temporarily retrieved files (``retrieve_temporary_list``)."""
    from aiida.plugins import ParserFactory

    def factory(entry_point: str, folder: pathlib.Path, inputs: dict, temporary: pathlib.Path | None = None):
        # The recorded indices are the test's expectation, not part of what the job retrieves.
        node = generate_calc_job_node(entry_point, folder, inputs, exclude=("selected_pool_index.json",))
        return ParserFactory(entry_point).parse_from_node(
            node, store_provenance=False, retrieved_temporary_folder=str(temporary) if temporary else None
        )

    return factory


@pytest.fixture
def selected_pickle(tmp_path):
    """Write what pace_select writes: the pool's rows at ``indices`` (gzip pandas pickle with the pool_index column),
    into a fresh temporary-retrieved folder; return the folder."""

    def factory(pool, indices: list[int], *, name: str = "selected.pkl.gz", columns=None) -> pathlib.Path:
        folder = tmp_path / f"temporary_{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        frame = pool.to_dataframe()[["name", "ase_atoms"]]
        frame = frame.assign(pool_index=range(len(frame))).iloc[indices]
        if columns is not None:
            frame = frame[columns]
        frame.to_pickle(folder / name, compression="gzip", protocol=4)
        return folder

    return factory
