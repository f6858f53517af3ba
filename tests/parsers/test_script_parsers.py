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
