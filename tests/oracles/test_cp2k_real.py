"""The CP2K oracle for real: Debian's CP2K through aiida-cp2k's Cp2kCalculation inside LabelingWorkChain.

What is checked and why: the forces and the stress CP2K reports are derivatives of the energy it reports, so a
central finite difference of CP2K energies (one atom moved by ±h, the cell strained by ±ε) must reproduce them;
that checks at once the reader (which block, which sign, Hartree/Bohr and GPa to eV/Å and eV/Å³) and that the
labels belong together. Fast settings (120 Ry, a 4×4×4 mesh, a 2-atom cell), a tight SCF for clean differences.
"""

import numpy as np
import pytest
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import cp2k_oracle
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.oracles.conftest import STEP, STRAIN, silicon_difference_cells

pytestmark = pytest.mark.real_cp2k

FAST = {"cutoff": 120.0, "rel_cutoff": 30.0, "eps_scf": 1e-8, "kpoint_distance": 0.6}


def test_cp2k_labels_are_derivatives_of_the_cp2k_energy(cp2k_code, finite_difference_labels):
    node, base, finite_force, finite_stress = finite_difference_labels(cp2k_oracle(cp2k_code, ["Si"], **FAST))

    # The job was aiida-cp2k's, with the k-point mesh made for this cell and the settings of cp2k_oracle.
    job = next(n for n in node.called_descendants if n.process_label == "Cp2kCalculation")
    assert job.inputs.kpoints.get_kpoints_mesh()[0] == [4, 4, 4]
    assert job.inputs.parameters["FORCE_EVAL"]["DFT"]["MGRID"]["CUTOFF"] == 120.0

    assert abs(base.get_forces()[1, 0]) > 0.5  # a force worth checking (eV/Å)
    assert base.get_forces()[1, 0] == pytest.approx(finite_force, abs=2e-3)  # seen: 1e-4
    assert base.get_forces().sum(axis=0) == pytest.approx(np.zeros(3), abs=1e-3)  # Newton's third law

    assert abs(base.get_stress()[0]) > 1e-3  # eV/Å³ (0.16 GPa)
    assert base.get_stress()[0] == pytest.approx(finite_stress, rel=0.01)  # seen: 0.1 %


def test_unconverged_scf_is_a_failed_label(cp2k_code):
    """CP2K 2023 finishes an unconverged SCF with exit status 0; the adapter refuses it, the work chain reports it."""
    cells = silicon_difference_cells(STEP, STRAIN)
    pool = TrainingSetData([cells["base"]], labelled=False).store()
    oracle = cp2k_oracle(cp2k_code, ["Si"], **{**FAST, "max_scf": 3})
    results, node = run_get_node(LabelingWorkChain, pool=pool, oracle=oracle)
    assert node.exit_status == LabelingWorkChain.exit_codes.ERROR_ALL_LABELS_FAILED.status
    (failure,) = results["failures"]["failures"]
    assert "SCF did not converge" in failure["reason"]
    job = next(n for n in node.called_descendants if n.process_label == "Cp2kCalculation")
    assert job.is_finished_ok  # aiida-cp2k itself saw nothing wrong
