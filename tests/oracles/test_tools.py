"""The scripts' shared pieces (no AiiDA): structures as JSON, ASE calculators by name, the ASE oracle script."""

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from aiida_mlip_trainer.tools import ase_oracle
from aiida_mlip_trainer.tools.calculators import calculator_names, check_calculator, make_calculator
from aiida_mlip_trainer.tools.structures import StructureFileError, read_structures, write_structures


def test_structures_round_trip_bit_for_bit(tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.1, seed=3)
    write_structures(tmp_path / "s.json", [atoms, atoms[:2]], names=["a", "b"])
    back = read_structures(tmp_path / "s.json")
    assert [a.info["name"] for a in back] == ["a", "b"]
    assert np.array_equal(back[0].positions, atoms.positions)
    assert np.array_equal(back[0].cell.array, atoms.cell.array)
    assert len(back[1]) == 2


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["structures"][0].update(positions=[[0, 0, float("nan")]]), "NaN"),
        (lambda d: d["structures"][0].update(numbers=[0]), "between 1 and 118"),
        (lambda d: d["structures"][0].update(cell=[[1, 0, 0]]), "shapes"),
        (lambda d: d.update(format="pickle"), "not a mlip-trainer-structures"),
        (lambda d: d["structures"][0].pop("pbc"), "missing"),
    ],
)
def test_structures_file_is_checked(tmp_path, change, message):
    write_structures(tmp_path / "s.json", [bulk("Cu")])
    content = json.loads((tmp_path / "s.json").read_text())
    change(content)
    (tmp_path / "s.json").write_text(json.dumps(content))
    with pytest.raises(StructureFileError, match=message):
        read_structures(tmp_path / "s.json")


def test_calculators_are_chosen_by_name_with_json_keywords():
    assert {"emt", "lj"} <= set(calculator_names())
    assert make_calculator("lj", {"sigma": 2.3, "epsilon": 0.01}).parameters.sigma == 2.3
    with pytest.raises(ValueError, match="unknown ASE calculator 'ase.calculators.emt:EMT'"):
        check_calculator("ase.calculators.emt:EMT", {})
    # Keywords that would reach files (restart, directory) are not in the factories' signatures.
    with pytest.raises(ValueError, match="unexpected keyword argument 'restart'"):
        check_calculator("emt", {"restart": "/etc/passwd"})
    with pytest.raises(ValueError, match="plain JSON"):
        check_calculator("lj", {"sigma": float("nan")})


def test_ase_oracle_script_labels_like_ase(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=1)
    write_structures("structure.json", [atoms])
    (tmp_path / "oracle.json").write_text(json.dumps({"calculator": "emt", "parameters": {}}))
    assert ase_oracle.main([]) == 0
    labels = json.loads((tmp_path / "labels.json").read_text())
    atoms.calc = EMT()
    assert labels["energy"] == atoms.get_potential_energy()
    assert np.array_equal(labels["forces"], atoms.get_forces())
    assert np.array_equal(labels["stress"], atoms.get_stress())


def test_ase_oracle_script_fails_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_structures("structure.json", [bulk("Si", "diamond", a=5.43)])
    (tmp_path / "oracle.json").write_text(json.dumps({"calculator": "emt"}))
    assert ase_oracle.main([]) == 1
    assert "NotImplementedError" in capsys.readouterr().err
    assert not (tmp_path / "labels.json").exists()
