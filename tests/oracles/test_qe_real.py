"""The QE oracle for real: Debian's pw.x through aiida-quantumespresso's PwBaseWorkChain inside LabelingWorkChain.

What is checked and why: the forces and the stress pw.x reports are derivatives of the energy it reports, so a
central finite difference of pw.x energies (one atom moved by ±h, the cell strained by ±ε) must reproduce them; that
checks at once the adapter (which step, which sign, GPa to eV/Å³) and that the labels belong together. Fast settings:
a 2-atom silicon cell, Si.pbe-rrkj.UPF at 20 Ry (the family's cutoff), a 2×2×2 mesh, a tight SCF; seconds a run.
"""

import numpy as np
import pytest

from aiida_mlip_trainer.oracles import qe_oracle

pytestmark = pytest.mark.real_qe

# 0.5 /Å gives the 2-atom cell (a = 5.47 Å, reciprocal vectors of 1.99 /Å) a 4×4×4 mesh; 1.0 /Å a 2×2×2 one.
FAST = {"kpoints_distance": 1.0}


def test_qe_labels_are_derivatives_of_the_qe_energy(qe_code, finite_difference_labels):
    node, base, finite_force, finite_stress = finite_difference_labels(qe_oracle(qe_code, ["Si"], overrides=FAST))

    # The jobs were aiida-quantumespresso's, built by its protocol with the family's pseudopotential and cutoffs.
    job = next(n for n in node.called_descendants if n.process_label == "PwCalculation")
    assert job.inputs.kpoints.get_kpoints_mesh()[0] == [2, 2, 2]
    assert job.inputs.parameters["SYSTEM"]["ecutwfc"] == 20.0
    assert job.inputs.pseudos["Si"].filename == "Si.pbe-rrkj.UPF"
    assert job.inputs.parameters["CONTROL"]["tprnfor"] and job.inputs.parameters["CONTROL"]["tstress"]

    assert abs(base.get_forces()[1, 0]) > 0.3  # a force worth checking (eV/Å)
    assert base.get_forces()[1, 0] == pytest.approx(finite_force, abs=5e-3)
    assert base.get_forces().sum(axis=0) == pytest.approx(np.zeros(3), abs=1e-3)  # Newton's third law

    assert abs(base.get_stress()[0]) > 1e-3  # eV/Å³ (0.16 GPa)
    # At 20 Ry the analytic stress carries pw.x's Pulay stress (the plane-wave basis is fixed by the cutoff, not by
    # the number of plane waves): seen 5 % here (-0.0431 against -0.0456 eV/Å³). A wrong sign or unit is far off.
    assert base.get_stress()[0] == pytest.approx(finite_stress, rel=0.1)
