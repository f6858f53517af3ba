"""The parsers of the plugin's own scripts (ASE oracle, exploration) on recorded retrieved folders: success and each
failure made from it, their outputs pinned with data_regression."""

import shutil

import pytest
from aiida import orm

from aiida_mlip_trainer.tools.structures import read_structures
from tests.conftest import FIXTURES

ORACLE = FIXTURES / "ase_oracle_emt_cu"  # real mlip-trainer-ase-oracle, EMT on a rattled 4-atom Cu cell
EXPLORE = FIXTURES / "explore_argon_compressed"  # real mlip-trainer-explore, 20 K on compressed argon


@pytest.fixture
def parse_script(generate_calc_job_node, tmp_path):
    """Parse a copy of ``folder`` (the script's output ``prefix``, its stderr and exit status) after ``change``."""
    from aiida.plugins import ParserFactory

    def factory(entry_point: str, folder, prefix: str, output: str, change: str | None, inputs: dict):
        target = tmp_path / "retrieved"
        shutil.copytree(folder, target, ignore=shutil.ignore_patterns("oracle.json", "structure.json"))
        if change == "killed":
            (target / f"{prefix}.exit_status").unlink()
        elif change == "failed":
            (target / f"{prefix}.exit_status").write_text("1\n")
            (target / f"{prefix}.err").write_text("Traceback ...\nValueError: unknown parameter\n")
        elif change == "missing":
            (target / output).unlink()
        elif change == "not JSON":
            (target / output).write_text("{")
        node = generate_calc_job_node(entry_point, target, inputs)
        return ParserFactory(entry_point).parse_from_node(node, store_provenance=False)

    return factory


CHANGES = [None, "killed", "failed", "missing", "not JSON"]


@pytest.mark.parametrize("change", CHANGES)
def test_ase_oracle_parser(parse_script, parser_regression, change):
    structure = orm.StructureData(ase=read_structures(ORACLE / "structure.json")[0])
    results, calcfunction = parse_script(
        "mlip_trainer.ase_oracle", ORACLE, "ase_oracle", "labels.json", change, {"structure": structure}
    )
    parser_regression(results, calcfunction)


def test_ase_oracle_parser_refuses_a_force_per_atom_too_few(parse_script, parser_regression):
    """Labels of another structure (3 atoms where the input has 4): 302, nothing output."""
    structure = orm.StructureData(ase=read_structures(ORACLE / "structure.json")[0][:3])
    results, calcfunction = parse_script(
        "mlip_trainer.ase_oracle", ORACLE, "ase_oracle", "labels.json", None, {"structure": structure}
    )
    parser_regression(results, calcfunction)


@pytest.mark.parametrize("change", [*CHANGES, "no candidates"])
def test_explore_parser(parse_script, parser_regression, change):
    output = "candidates.json" if change == "no candidates" else "exploration.json"
    results, calcfunction = parse_script(
        "mlip_trainer.explore", EXPLORE, "explore", output, "missing" if change == "no candidates" else change, {}
    )
    parser_regression(results, calcfunction)


PROPERTIES = FIXTURES / "properties_emt_cu"  # real mlip-trainer-properties, EMT copper: eos and elastic


def _property_inputs() -> dict:
    structure = orm.StructureData(ase=read_structures(PROPERTIES / "structure.json")[0])
    return {"structure": structure, "parameters": orm.Dict({"eos": {"points": 5}}), "calculator": orm.Str("emt")}


@pytest.mark.parametrize("change", CHANGES)
def test_property_parser(parse_script, change):
    """Success gives the properties, the plan and every geometry of the plan; each failure its exit code and none."""
    results, calcfunction = parse_script(
        "mlip_trainer.properties", PROPERTIES, "properties", "properties.json", change, _property_inputs()
    )
    expected = {None: 0, "killed": 410, "failed": 340, "missing": 341, "not JSON": 342}[change]
    assert calcfunction.exit_status == expected, calcfunction.exit_message
    if change is None:
        assert results["properties"]["eos"]["a0"] == pytest.approx(3.59, abs=0.01)
        assert results["geometries"].num_structures == 1 + 5 + 4
        assert set(results["plan"]["eos"]["names"]) <= set(results["geometries"].get_arrays()["names"])
    else:
        assert not results


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda output, geometries: output["plan"]["eos"]["names"].append("eos_99"), "missing"),
        (lambda output, geometries: output["properties"]["eos"].update(B0=float("inf")), "finite"),
        (lambda output, geometries: geometries["structures"][1].update(name="bulk"), "names repeat"),
        (lambda output, geometries: geometries["structures"][2]["positions"].pop(), "shapes"),
        (lambda output, geometries: output.pop("plan"), "KeyError"),
    ],
)
def test_property_parser_refuses_output_that_does_not_hold_together(parse_script, tmp_path, edit, message):
    import json

    folder = tmp_path / "edited"
    shutil.copytree(PROPERTIES, folder)
    output = json.loads((folder / "properties.json").read_text())
    geometries = json.loads((folder / "geometries.json").read_text())
    edit(output, geometries)
    (folder / "properties.json").write_text(json.dumps(output))
    (folder / "geometries.json").write_text(json.dumps(geometries))
    results, calcfunction = parse_script(
        "mlip_trainer.properties", folder, "properties", "properties.json", None, _property_inputs()
    )
    assert calcfunction.exit_status == 342, calcfunction.exit_message
    assert message in calcfunction.exit_message and not results
