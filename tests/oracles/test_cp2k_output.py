"""The CP2K settings, the k-point rule and the reader of CP2K's output, on output recorded from real CP2K 2023.1."""

import numpy as np
import pytest
from ase import units
from ase.build import bulk

from aiida_mlip_trainer.formats.cp2k import Cp2kOutputError, cp2k_parameters, kpoint_mesh, read_cp2k_output
from tests.conftest import FIXTURES

SUCCESS = FIXTURES / "cp2k_si2_success"
NOT_CONVERGED = FIXTURES / "cp2k_si2_scf_not_converged"


def test_reads_energy_forces_and_stress_in_ase_units():
    text = (SUCCESS / "aiida.out").read_text()
    labels = read_cp2k_output(text, natoms=2)
    # The raw lines of that output, converted by hand: Hartree -> eV, Hartree/Bohr -> eV/Å, GPa with CP2K's sign.
    assert labels["energy"] == pytest.approx(-7.871751296675366 * units.Hartree, abs=1e-9)
    assert labels["forces"][0] == pytest.approx(
        np.array([0.01322128, -0.00841394, 0.00619073]) * units.Hartree / units.Bohr
    )
    assert labels["forces"].shape == (2, 3)
    # "STRESS| x  -2.40339583071E-01 ..." and "STRESS| y ... -1.83503231583E+00": ASE's stress is minus CP2K's.
    assert labels["stress"][0] == pytest.approx(0.240339583071 * units.GPa, rel=1e-9)
    assert labels["stress"][3] == pytest.approx(1.83503231583 * units.GPa, rel=1e-9)  # yz
    assert labels["warnings"] == 0


def test_unconverged_scf_is_not_a_label():
    # CP2K 2023.1 prints a warning and finishes with status 0: only the reader stands between this and a label.
    text = (NOT_CONVERGED / "aiida.out").read_text()
    assert "ENERGY| Total FORCE_EVAL" in text
    with pytest.raises(Cp2kOutputError, match="SCF did not converge"):
        read_cp2k_output(text, natoms=2)


def test_incomplete_or_mismatched_output_is_refused():
    text = (SUCCESS / "aiida.out").read_text()
    with pytest.raises(Cp2kOutputError, match="did not finish"):
        read_cp2k_output(text[: text.index("STRESS|")])
    with pytest.raises(Cp2kOutputError, match="the structure has 3"):
        read_cp2k_output(text, natoms=3)
    without_forces = text.replace("ATOMIC FORCES in [a.u.]", "ATOMIC FORCES (not printed)")
    with pytest.raises(Cp2kOutputError, match="FORCES to ON"):
        read_cp2k_output(without_forces)
    assert read_cp2k_output(text.replace("STRESS| Analytical", "STRESS| Skipped"))["stress"] is None


def test_parameters_render_to_the_recorded_input():
    """The settings of cp2k_parameters are those the recorded output was computed with (the recorded input is
    what aiida-cp2k's Cp2kInput renders from them, plus the cell, coordinates and k-points of that structure)."""
    from aiida_cp2k.utils import Cp2kInput

    rendered = Cp2kInput(cp2k_parameters(["Si"])).render()
    recorded = (SUCCESS / "aiida.inp").read_text()
    for line in rendered.splitlines()[1:]:
        assert line in recorded
    assert "SCHEME MONKHORST-PACK 7 7 7" in recorded


def test_parameters_refuse_nonsense():
    with pytest.raises(ValueError, match="cutoff"):
        cp2k_parameters(["Si"], cutoff=0)
    with pytest.raises(ValueError, match="at least one element"):
        cp2k_parameters([])
    parameters = cp2k_parameters(["Si", "C"], smearing_temperature=None, stress=False)
    assert "SMEAR" not in parameters["FORCE_EVAL"]["DFT"]["SCF"]
    assert "STRESS_TENSOR" not in parameters["FORCE_EVAL"]
    assert [kind["_"] for kind in parameters["FORCE_EVAL"]["SUBSYS"]["KIND"]] == ["C", "Si"]


def test_kpoint_mesh_has_the_same_density_for_every_cell():
    primitive = bulk("Si", "diamond", a=5.47)
    cubic = bulk("Si", "diamond", a=5.47, cubic=True)
    assert kpoint_mesh(primitive.cell.array, primitive.pbc) == [7, 7, 7]
    assert kpoint_mesh(cubic.cell.array, cubic.pbc) == [4, 4, 4]
    assert kpoint_mesh(cubic.repeat((2, 1, 1)).cell.array, [True] * 3) == [2, 4, 4]
    assert kpoint_mesh(cubic.cell.array, [True, True, False]) == [4, 4, 1]
    assert kpoint_mesh(np.diag([5.43, 5.43, 21.5]), [True] * 3) == [4, 4, 1]
    with pytest.raises(ValueError, match="no volume"):
        kpoint_mesh(np.zeros((3, 3)), [False] * 3)


def test_data_set_script_writes_the_input_cp2k_calculation_writes(generate_calc_job, aiida_localhost):
    """benchmarks/si_dft_dataset.py calls CP2K directly; its input (and so its labels) must be those of the CP2K
    oracle: compare with what aiida-cp2k's Cp2kCalculation prepares from cp2k_oracle's inputs for the same cell."""
    import importlib.util
    import pathlib

    from aiida import orm
    from aiida.plugins import CalculationFactory

    from aiida_mlip_trainer.oracles import cp2k_oracle
    from aiida_mlip_trainer.workflows.functions.oracles import kpoints_mesh

    path = pathlib.Path(__file__).parents[2] / "benchmarks" / "si_dft_dataset.py"
    spec = importlib.util.spec_from_file_location("si_dft_dataset", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    atoms = script.build_structures(20, seed=3, prefix="check")[0]
    structure = orm.StructureData(ase=atoms).store()
    atoms = structure.get_ase()  # the cell and positions exactly as the oracle gets them (stored: 15 digits)
    code = orm.InstalledCode(label="cp2k-check", computer=aiida_localhost, filepath_executable="/usr/bin/cp2k.psmp")
    oracle = cp2k_oracle(code, ["Si"])
    kpoints = kpoints_mesh(structure=structure, parameters=orm.Dict(oracle["structure_inputs"]["parameters"]))
    folder, _ = generate_calc_job(
        CalculationFactory("cp2k"),
        {**oracle["inputs"], "structure": structure, **kpoints, "metadata": {"options": oracle["options"]}},
    )
    text, coordinates = script.render_input(
        atoms, script.cp2k_parameters(["Si"]), script.kpoint_mesh(atoms.cell.array, atoms.pbc), "aiida"
    )
    assert text == (folder / "aiida.inp").read_text()
    assert coordinates == (folder / "aiida.coords.xyz").read_text()
