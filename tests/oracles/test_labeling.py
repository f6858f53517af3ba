"""LabelingWorkChain with the ASE oracle: the contract checked before any job, real EMT labels end to end, failed
jobs skipped and reported, and the adapters on their own."""

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_mlip_trainer.calculations import AseOracleCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.data.labels import LabelError, labels_array
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows.functions.oracles import ase_oracle_labels, cp2k_labels
from aiida_mlip_trainer.workflows.labeling import LabelingWorkChain
from tests.conftest import FIXTURES
from tests.oracles.conftest import copper_cells


def _jobs() -> int:
    return orm.QueryBuilder().append(orm.ProcessNode, filters={"process_type": {"like": "%ase_oracle"}}).count()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"process": "aiida.calculations:no.such.plugin"}, "cannot be loaded"),
        ({"process": "os:system"}, "give an entry point such as"),
        ({"process": "aiida.workflows:core.arithmetic.add_multiply"}, "is not a CalcJob or WorkChain"),
        ({"adapter": "aiida_mlip_trainer.workflows.functions.oracles:cp2k_labels"}, "unknown oracle adapter"),
        ({"structure_port": "geometry"}, "has no input port 'geometry'"),
        ({"structure_port": "calculator"}, "does not take a StructureData"),
        ({"inputs": {"bogus": 1}}, "Unexpected ports"),
        ({"options": {"resources": {"num_machines": 1}, "queue": 3}}, "Unexpected ports|queue"),
        ({"structure_inputs": {"generator": "no_such_generator"}}, "unknown oracle structure_inputs generator"),
    ],
)
def test_oracle_refused_before_any_job(ase_oracle_code, copper_pool, change, message):
    oracle = ase_oracle(ase_oracle_code, "emt")
    inputs = change.pop("inputs", None)
    oracle.update(change)
    if inputs:
        oracle["inputs"] = {**oracle["inputs"], **{key: orm.Int(value) for key, value in inputs.items()}}
    before = _jobs()
    with pytest.raises(ValueError, match=message):
        run_get_node(LabelingWorkChain, pool=copper_pool, oracle=oracle)
    assert _jobs() == before


def test_max_concurrent_must_be_positive(ase_oracle_code, copper_pool):
    with pytest.raises(ValueError, match="max_concurrent must be at least 1"):
        run_get_node(LabelingWorkChain, pool=copper_pool, oracle=ase_oracle(ase_oracle_code, "emt"), max_concurrent=0)


def test_emt_labels_with_provenance(ase_oracle_code, copper_pool):
    results, node = run_get_node(
        LabelingWorkChain, pool=copper_pool, oracle=ase_oracle(ase_oracle_code, "emt"), max_concurrent=2
    )
    assert node.is_finished_ok, node.exit_message
    labelled = results["labelled"]
    assert results["indices"].get_list() == [0, 1, 2]
    assert results["failures"]["failures"] == []
    assert labelled.num_structures == 3 and labelled.has_stress
    names = copper_pool.get_arrays()["names"]
    for index, atoms in enumerate(labelled.to_atoms()):
        assert atoms.info["name"] == names[index]
        reference = atoms.copy()
        reference.calc = EMT()
        assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-8)
        assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-8

    # Each labelled structure links back to the job that labelled it: labels <- adapter <- job <- structure.
    merge = labelled.creator
    assert merge.process_label == "merge_labels"
    incoming = {link.link_label: link.node for link in merge.base.links.get_incoming(link_type=LinkType.INPUT_CALC)}
    labels = incoming["labels_1"]
    assert labels.creator.process_label == "ase_oracle_labels"
    job = labels.creator.inputs.labels.creator
    assert job.process_label == "AseOracleCalculation"
    assert job.inputs.structure.uuid == incoming["structure_1"].uuid
    assert job.inputs.structure.creator.process_label == "split_pool"
    # Two waves of at most two jobs: no wave had more than max_concurrent jobs.
    jobs = sorted(node.called, key=lambda n: n.ctime)
    oracle_jobs = [n for n in jobs if n.process_label == "AseOracleCalculation"]
    assert len(oracle_jobs) == 3
    assert max(n.ctime for n in oracle_jobs[:2]) < oracle_jobs[2].ctime
    assert oracle_jobs[2].ctime > min(n.mtime for n in oracle_jobs[:2])


def test_failed_job_is_skipped_and_reported(ase_oracle_code):
    silicon = bulk("Si", "diamond", a=5.43)  # EMT has no silicon: its job fails
    silicon.info["name"] = "Si_diamond"
    pool = TrainingSetData([*copper_cells(2), silicon, *copper_cells(1, seed=5)], labelled=False).store()
    results, node = run_get_node(LabelingWorkChain, pool=pool, oracle=ase_oracle(ase_oracle_code, "emt"))
    assert node.is_finished_ok, node.exit_message
    assert results["indices"].get_list() == [0, 1, 3]
    assert results["labelled"].num_structures == 3
    failures = results["failures"].get_dict()
    assert failures["num_failed"] == 1 and failures["num_labelled"] == 3
    (failure,) = failures["failures"]
    assert failure["index"] == 2 and failure["name"] == "Si_diamond"
    job = orm.load_node(failure["process_pk"])
    assert (
        job.exit_status == AseOracleCalculation.exit_codes.ERROR_SCRIPT_FAILED.status
        and "NotImplementedError" in failure["reason"]
    )
    # the record has a creator: a calcfunction of the pool, the labels it counted and the reason of each failure
    record = results["failures"].creator
    assert record.process_label == "collect_labelling_failures"
    counted = {
        link.link_label: link.node.pk for link in record.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
    }
    merged = results["labelled"].creator.inputs
    assert counted.pop("pool") == pool.pk
    assert counted.pop("failure_2") and record.inputs.failure_2["process_pk"] == job.pk
    assert counted == {f"labels_{i}": merged[f"labels_{i}"].pk for i in (0, 1, 3)}


def test_every_label_failed_is_an_exit_code(ase_oracle_code):
    pool = TrainingSetData([bulk("Si", "diamond", a=5.43)], labelled=False).store()
    results, node = run_get_node(LabelingWorkChain, pool=pool, oracle=ase_oracle(ase_oracle_code, "emt"))
    assert node.exit_status == LabelingWorkChain.exit_codes.ERROR_ALL_LABELS_FAILED.status
    assert "NotImplementedError" in node.exit_message
    assert results["failures"]["num_failed"] == 1
    assert "labelled" not in results


def test_adapters_refuse_what_is_not_a_label():
    structure = orm.StructureData(ase=bulk("Cu", "fcc", a=3.6, cubic=True))  # 4 atoms
    with pytest.raises(LabelError, match="the structure has 4"):
        ase_oracle_labels(structure=structure, labels=labels_array(-1.0, np.zeros((3, 3))))
    not_finite = orm.ArrayData()
    not_finite.set_array("energy", np.array([np.nan]))
    not_finite.set_array("forces", np.zeros((4, 3)))
    with pytest.raises(LabelError, match="energy contains NaN"):
        ase_oracle_labels(structure=structure, labels=not_finite)
    silicon = orm.StructureData(ase=bulk("Si", "diamond", a=5.47))
    for case, message in (("cp2k_si2_scf_not_converged", "SCF did not converge"), ("cp2k_si2_success", None)):
        retrieved = orm.FolderData()
        retrieved.base.repository.put_object_from_file(str(FIXTURES / case / "aiida.out"), "aiida.out")
        if message:
            with pytest.raises(LabelError, match=message):
                cp2k_labels(structure=silicon, retrieved=retrieved)
        else:
            labels = cp2k_labels(structure=silicon, retrieved=retrieved)
            assert labels.get_array("forces").shape == (2, 3) and labels.get_array("stress").shape == (6,)


def test_kpoints_generator_gives_each_cell_its_mesh():
    from aiida_mlip_trainer.workflows.functions.oracles import kpoints_mesh

    cubic = orm.StructureData(ase=bulk("Si", "diamond", a=5.47, cubic=True))
    outputs = kpoints_mesh(structure=cubic, parameters=orm.Dict({"distance": 0.3}))
    assert outputs["kpoints"].get_kpoints_mesh()[0] == [4, 4, 4]
    assert kpoints_mesh(structure=cubic, parameters=orm.Dict({"port": "cp2k__kpoints"}))["cp2k__kpoints"]
    large = orm.StructureData(ase=bulk("Si", "diamond", a=5.47, cubic=True).repeat(4))  # 21.9 Å: Γ alone
    assert kpoints_mesh(structure=large, parameters=orm.Dict()) == {}
