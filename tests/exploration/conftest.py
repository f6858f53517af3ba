"""Fixtures for exploration: the recorded argon potential with the active set pace_activeset computed on its
training data, starting structures, the shipped script as a code, and a parser on doctored retrieved files."""

from __future__ import annotations

import pytest

from tests.conftest import _executable
from tests.selection.conftest import fitted_potential, potential_with_active_set  # noqa: F401

ENTRY_POINT = "mlip_trainer.explore"


def argon_start(compression: float = 1.0, seed: int = 1):
    """One 32-atom fcc argon cell like the potential's training data, optionally compressed (lattice × factor)."""
    from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

    atoms = argon_lennard_jones(1, seed=seed)[0]
    atoms.calc = None
    atoms.set_cell(atoms.cell.array * compression, scale_atoms=True)
    atoms.info["name"] = f"Ar_start_{compression}"
    return atoms


def max_gamma(potential, atoms_list) -> list[float]:
    """The largest γ of each structure, evaluated here by pyace with the potential's own active set (independently of
    the exploration script and the loop's calcfunctions)."""
    import numpy as np

    calculator = potential.get_ace_calculator()
    grades = []
    for atoms in atoms_list:
        atoms.calc = calculator
        atoms.get_potential_energy()
        grades.append(float(np.max(calculator.results["gamma"])))
    return grades


@pytest.fixture
def starts():
    """Unlabelled starting structures: an argon cell like the training data, and one compressed by 7 %."""
    from aiida_mlip_trainer.data import TrainingSetData

    return {
        "equilibrium": TrainingSetData([argon_start()], labelled=False).store(),
        "compressed": TrainingSetData([argon_start(0.93)], labelled=False).store(),
    }


@pytest.fixture
def explore_code(installed_code):
    return installed_code("mlip-trainer-explore", _executable("mlip-trainer-explore"), ENTRY_POINT)


@pytest.fixture
def parse_retrieved_files(aiida_localhost):
    """Parse ``files`` (name -> bytes) as the retrieved folder of an ExplorationCalculation with ``inputs``."""
    from aiida import orm
    from aiida.common.links import LinkType
    from aiida.plugins import ParserFactory

    def factory(files: dict[str, bytes], inputs: dict):
        node = orm.CalcJobNode(computer=aiida_localhost, process_type=f"aiida.calculations:{ENTRY_POINT}")
        node.set_option("resources", {"num_machines": 1, "num_mpiprocs_per_machine": 1})
        for label, value in inputs.items():
            node.base.links.add_incoming(value, link_type=LinkType.INPUT_CALC, link_label=label)
        node.store()
        retrieved = orm.FolderData()
        for name, content in files.items():
            retrieved.base.repository.put_object_from_bytes(content, name)
        retrieved.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label="retrieved")
        retrieved.store()
        return ParserFactory(ENTRY_POINT).parse_from_node(node, store_provenance=False)

    return factory
