"""Training sets from what the database holds, for real: PwCalculations run by Debian's pw.x and a Cp2kCalculation run
by Debian's CP2K, put in a Group and imported (`import_processes`, `aiida-mlip-trainer data import --group`).

Checked: every structure links back to its calculation (QueryBuilder over the graph), the labels are the
calculation's own outputs in eV, eV/Å and eV/Å³ (the signs are checked against finite differences in
test_qe_real.py and test_cp2k_real.py), an unconverged SCF and a run without forces are skipped and listed, and a
selection of two settings (two cutoffs, or QE next to CP2K) is refused with the groups it found, or split on request.
A 2-atom silicon cell at 20 Ry and 2×2×2 k-points: seconds a pw.x run.
"""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from aiida.plugins import CalculationFactory
from ase.build import bulk

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.oracles import cp2k_oracle, qe_pseudo_family
from aiida_mlip_trainer.workflows import MixedSettingsError, import_processes
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.test_cli import invoke

pytestmark = [pytest.mark.real_qe, pytest.mark.real_cp2k]


def silicon(shift: float = 0.0):
    atoms = bulk("Si", "diamond", a=5.47)
    atoms.positions[1] += [0.07 + shift, -0.04, 0.03]
    return atoms


def run_pw(code, atoms, *, ecutwfc=20.0, forces=True, max_steps=100):
    """One real PwCalculation (a single point) at ``ecutwfc`` Ry, 2×2×2 k-points."""
    kpoints = orm.KpointsData()
    kpoints.set_kpoints_mesh([2, 2, 2])
    parameters = {
        "CONTROL": {"calculation": "scf", "tprnfor": forces, "tstress": True},
        "SYSTEM": {"ecutwfc": ecutwfc, "ecutrho": 4 * ecutwfc, "occupations": "smearing", "degauss": 0.02},
        "ELECTRONS": {"conv_thr": 1e-8, "electron_maxstep": max_steps},
    }
    structure = orm.StructureData(ase=atoms)
    _, node = run_get_node(
        CalculationFactory("quantumespresso.pw"),
        code=code,
        structure=structure,
        parameters=orm.Dict(parameters),
        kpoints=kpoints,
        pseudos=qe_pseudo_family().get_pseudos(structure=structure),
        metadata={"options": {"resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}, "withmpi": False}},
    )
    return node


def calculations_behind(training_set: TrainingSetData) -> set[str]:
    """The UUIDs of the processes that made (or returned) the nodes the import step of ``training_set`` read."""
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={"id": training_set.pk}, tag="set")
    query.append(orm.CalcFunctionNode, with_outgoing="set", tag="import")
    query.append(orm.Data, with_outgoing="import", tag="output")
    query.append(orm.ProcessNode, with_outgoing="output", project="uuid")
    return {uuid for (uuid,) in query.all()}


def test_a_group_of_pw_and_cp2k_calculations_becomes_linked_training_sets(qe_code, cp2k_code):
    first, moved = run_pw(qe_code, silicon()), run_pw(qe_code, silicon(0.05))
    unconverged = run_pw(qe_code, silicon(), max_steps=1)
    without_forces = run_pw(qe_code, silicon(), forces=False)
    assert first.is_finished_ok and moved.is_finished_ok and without_forces.is_finished_ok
    assert (
        unconverged.exit_status == unconverged.process_class.exit_codes.ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED.status
    )
    # Γ-point CP2K at 120 Ry: seconds; its labels are checked in test_cp2k_real.py
    pool = TrainingSetData([silicon()], labelled=False).store()
    oracle = cp2k_oracle(cp2k_code, ["Si"], kpoint_distance=None, cutoff=120.0, rel_cutoff=30.0)
    _, labelling = run_get_node(LabelingWorkChain, pool=pool, oracle=oracle)
    assert labelling.is_finished_ok, labelling.exit_message
    (cp2k,) = [node for node in labelling.called_descendants if node.process_label == "Cp2kCalculation"]

    group = orm.Group(label="dft-silicon").store()
    group.add_nodes([first, moved, unconverged, without_forces, cp2k, pool])

    # QE next to CP2K: two settings, refused with both listed
    with pytest.raises(MixedSettingsError) as refused:
        import_processes(group)
    message = str(refused.value)
    assert "2 different DFT settings" in message
    assert "group 1: 2 calculation(s)" in message and "code=quantumespresso.pw" in message
    assert "ecutwfc=20.0" in message and "group 2: 1 calculation(s)" in message and "code=cp2k" in message

    qe_result, cp2k_result = import_processes(group, split_by_settings=True)
    qe_set, cp2k_set = qe_result["training_set"], cp2k_result["training_set"]
    assert qe_set.num_structures == 2 and cp2k_set.num_structures == 1
    names = {str(name) for name in qe_set.get_arrays()["names"]}
    assert names == {first.uuid, moved.uuid}
    assert names <= calculations_behind(qe_set)  # every structure links back to its calculation
    assert {cp2k.uuid} == {str(name) for name in cp2k_set.get_arrays()["names"]} <= calculations_behind(cp2k_set)

    # the labels are the calculation's outputs, in eV, eV/Å and eV/Å³ (ASE's sign: pw.x prints the opposite)
    atoms = {a.info["name"]: a for a in qe_set.to_atoms()}[first.uuid]
    assert atoms.get_potential_energy() == pytest.approx(first.outputs.output_parameters["energy"])
    forces = first.outputs.output_trajectory.get_array("forces")[-1]
    assert atoms.get_forces() == pytest.approx(forces)
    stress_gpa = first.outputs.output_trajectory.get_array("stress")[-1]
    assert atoms.get_stress()[:3] == pytest.approx(-np.diag(stress_gpa) / 160.21766208, rel=1e-6)

    # what was skipped, and why
    skipped = {item["uuid"]: item["reason"] for item in qe_result["report"]["skipped"]}
    assert set(skipped) == {unconverged.uuid, without_forces.uuid}
    assert f"exit status {unconverged.exit_status}" in skipped[unconverged.uuid]
    assert "no forces" in skipped[without_forces.uuid]
    assert qe_result["report"]["settings"]["ecutwfc"] == 20.0

    # the same from the command line
    result = invoke("data", "import", "--group", "dft-silicon", "--split-by-settings")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("2 structures, 4 atoms, elements ['Si'], labelled, with stress")
    assert lines[1].endswith("1 structures, 2 atoms, elements ['Si'], labelled, with stress")
    assert sorted(line.split()[2] for line in lines[2:]) == sorted([unconverged.uuid + ":", without_forces.uuid + ":"])

    # two cutoffs of pw.x: refused, both listed
    finer = run_pw(qe_code, silicon(), ecutwfc=25.0)
    cutoffs = orm.Group(label="dft-silicon-two-cutoffs").store()
    cutoffs.add_nodes([first, moved, finer])
    with pytest.raises(MixedSettingsError, match=r"ecutwfc=20\.0.*\n.*ecutwfc=25\.0"):
        import_processes(cutoffs)
    result = invoke("data", "import", "--group", "dft-silicon-two-cutoffs")
    assert result.exit_code == 1 and "2 different DFT settings" in result.output
