"""AseOracleCalculation: input folder, validation before any job, a real run (EMT copper) and its failures."""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_mlip_trainer.calculations.ase_oracle import AseOracleCalculation
from aiida_mlip_trainer.tools.structures import read_structures


def _copper(rattle: float = 0.08):
    atoms = bulk("Cu", "fcc", a=3.62, cubic=True)
    atoms.rattle(rattle, seed=11)
    return atoms


def test_input_folder_and_command_line(generate_calc_job, ase_oracle_code):
    structure = orm.StructureData(ase=_copper())
    folder, calcinfo = generate_calc_job(
        AseOracleCalculation,
        {
            "code": ase_oracle_code,
            "structure": structure,
            "calculator": "lj",
            "parameters": {"sigma": 2.3, "epsilon": 0.4},
        },
    )
    assert sorted(p.name for p in folder.iterdir()) == ["oracle.json", "structure.json"]
    assert json.loads((folder / "oracle.json").read_text()) == {
        "calculator": "lj",
        "parameters": {"sigma": 2.3, "epsilon": 0.4},
    }
    assert np.array_equal(read_structures(folder / "structure.json")[0].positions, structure.get_ase().positions)
    assert calcinfo.codes_info[0].cmdline_params == [
        "--settings",
        "oracle.json",
        "--structure",
        "structure.json",
        "--output",
        "labels.json",
    ]
    assert "ase_oracle.err" in calcinfo.retrieve_list


def _jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode, filters={"process_type": {"like": "%ase_oracle"}}).count()


@pytest.mark.parametrize(
    "calculator, parameters, message",
    [
        ("ase.calculators.emt:EMT", {}, "unknown ASE calculator"),
        ("emt", {"restart": "labels.traj"}, "unexpected keyword argument 'restart'"),
        ("lj", {"sigma": [1, {"x": None}], "bogus": 1}, "unexpected keyword argument 'bogus'"),
    ],
)
def test_refused_before_any_job(ase_oracle_code, calculator, parameters, message):
    before = _jobs()
    with pytest.raises(ValueError, match=message):
        run_get_node(
            AseOracleCalculation,
            code=ase_oracle_code,
            structure=orm.StructureData(ase=_copper()),
            calculator=calculator,
            parameters=parameters,
        )
    assert _jobs() == before


def test_emt_labels_equal_ase(ase_oracle_code):
    atoms = _copper()
    results, node = run_get_node(
        AseOracleCalculation, code=ase_oracle_code, structure=orm.StructureData(ase=atoms), calculator="emt"
    )
    assert node.is_finished_ok, node.exit_message
    labels = results["labels"]
    reference = orm.StructureData(ase=atoms).get_ase()  # the structure exactly as stored
    reference.calc = EMT()
    assert labels.get_array("energy")[0] == pytest.approx(reference.get_potential_energy(), abs=1e-8)
    assert np.abs(labels.get_array("forces") - reference.get_forces()).max() < 1e-8
    assert np.abs(labels.get_array("stress") - reference.get_stress()).max() < 1e-8


def test_failing_script_gives_its_reason(ase_oracle_code):
    results, node = run_get_node(
        AseOracleCalculation,
        code=ase_oracle_code,
        structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43)),  # EMT has no silicon
        calculator="emt",
    )
    assert node.exit_status == AseOracleCalculation.exit_codes.ERROR_SCRIPT_FAILED.status
    assert "NotImplementedError" in node.exit_message
    assert "labels" not in results
    assert "ase_oracle.err" in node.outputs.retrieved.base.repository.list_object_names()
