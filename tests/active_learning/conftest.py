"""Fixtures for the active-learning loop: the shipped exploration and ASE-oracle scripts as codes, all codes of the
loop by name, and small EMT copper sets."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

from tests.conftest import _executable

BENCHMARKS = pathlib.Path(__file__).parents[2] / "benchmarks"


def load_benchmark(filename: str):
    """The benchmark script ``benchmarks/<filename>`` as a module (its functions, without running its main)."""
    spec = importlib.util.spec_from_file_location(pathlib.Path(filename).stem, BENCHMARKS / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def loop_codes(installed_code, pacemaker_code, pace_tool_codes):
    """Every code the loop's builder needs, by the names of ``ActiveLearningWorkChain.get_builder_from_protocol``,
    and the ASE oracle's script (``ase_oracle``)."""
    return {
        "pacemaker": pacemaker_code,
        **pace_tool_codes,
        "explore": installed_code("mlip-trainer-explore", _executable("mlip-trainer-explore"), "mlip_trainer.explore"),
        "ase_oracle": installed_code(
            "mlip-trainer-ase-oracle", _executable("mlip-trainer-ase-oracle"), "mlip_trainer.ase_oracle"
        ),
    }


@pytest.fixture
def copper_sets():
    """EMT copper, 32-atom cells: ``initial`` (10 near-equilibrium cells, small rattle: the potential will extrapolate
    in hot MD) and ``test`` (6 cells of another seed, the fixed held-out set)."""
    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    return {
        "initial": TrainingSetData(copper_emt(10, seed=21, rattle=0.05)).store(),
        "test": TrainingSetData(copper_emt(6, seed=22, rattle=0.1)).store(),
    }
