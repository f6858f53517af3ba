"""PaceSelectCalculation: input folder and command line (sandbox), validation, parser on recorded output, and
mocked failures."""

import gzip
import re

import pandas as pd
import pytest
from aiida import orm
from aiida.common.log import LOG_LEVEL_REPORT
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.pace_select import PaceSelectCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from tests.conftest import FIXTURES
from tests.selection.conftest import POTENTIAL, recorded_indices

ENTRY_POINT = "mlip_trainer.pace_select"


def test_input_folder_and_command_line(generate_calc_job, mock_pace_select_code, argon_pool, fitted_potential):
    folder, calcinfo = generate_calc_job(
        PaceSelectCalculation,
        {
            "code": mock_pace_select_code,
            "pool": argon_pool,
            "potential": fitted_potential,
            "max_structures": 4,
            "parameters": {"gamma_tolerance": 1.05, "memory_limit": "2GB", "maxvol_iters": 200},
        },
    )
    # no .asi next to the YAML: pace_select would pick `potential.asi` up by itself even without -a
    assert sorted(p.name for p in folder.iterdir()) == ["pool.pckl.gzip", "potential.yaml"]
    (codeinfo,) = calcinfo.codes_info
    assert codeinfo.cmdline_params == [
        "-p",
        "potential.yaml",
        "-m",
        "4",
        "-o",
        "selected.pkl.gz",
        "-g",
        "1.05",
        "-i",
        "200",
        "-mem",
        str(2**30),  # half of the 2 GB given: the tool's limit is soft
        "pool.pckl.gzip",
    ]
    assert "echo $? > pace_select.exit_status" in calcinfo.append_text
    # the pandas output is read once by the parser and not kept
    assert calcinfo.retrieve_temporary_list == ["selected.pkl.gz"]
    assert not any("pkl" in name or "pckl" in name for name in calcinfo.retrieve_list)

    with gzip.open(folder / "pool.pckl.gzip") as handle:
        assert handle.read(2) == b"\x80\x04"  # a pickle of protocol 4 inside real gzip
    frame = pd.read_pickle(folder / "pool.pckl.gzip", compression="gzip")
    assert list(frame.columns) == ["name", "ase_atoms", "pool_index"]
    assert frame["pool_index"].tolist() == list(range(10))
    assert (folder / "potential.yaml").read_text() == POTENTIAL.read_text()


def test_active_set_is_passed_only_when_asked(generate_calc_job, mock_pace_select_code, argon_pool):
    potential = PacePotentialData(POTENTIAL, active_set=FIXTURES / "pace_activeset_success" / "potential.asi").store()
    folder, calcinfo = generate_calc_job(
        PaceSelectCalculation,
        {
            "code": mock_pace_select_code,
            "pool": argon_pool,
            "potential": potential,
            "max_structures": 3,
            "use_active_set": True,
        },
    )
    assert calcinfo.codes_info[0].cmdline_params[:4] == ["-p", "potential.yaml", "-a", "potential.asi"]
    asi = (FIXTURES / "pace_activeset_success" / "potential.asi").read_bytes()
    assert (folder / "potential.asi").read_bytes() == asi


def _copper(potential_path=POTENTIAL):
    return PacePotentialData(re.sub(r"\bAr\b", "Cu", potential_path.read_text()).encode())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda i: i.update(max_structures=0), "max_structures must be a positive integer, got 0"),
        (lambda i: i.update(max_structures=-3), "max_structures must be a positive integer, got -3"),
        (lambda i: i.update(potential=_copper()), r"the pool contains \['Ar'\], which the potential"),
        (lambda i: i.update(use_active_set=True), "the potential has no active set"),
        (lambda i: i.update(pool=TrainingSetData(i["pool"].to_atoms()[:1], labelled=False)), "has 32 Ar atoms"),
        (lambda i: i.update(parameters={"batch_size": 11}), "larger than the pool"),
        (lambda i: i.update(parameters={"memory_limit": "1GB; rm -rf ~"}), "memory_limit must be"),
        (lambda i: i.update(parameters={"full": True}), "unknown parameter"),
    ],
)
def test_bad_input_fails_before_any_job(mock_pace_select_code, argon_pool, fitted_potential, change, message):
    inputs = {"code": mock_pace_select_code, "pool": argon_pool, "potential": fitted_potential, "max_structures": 4}
    change(inputs)
    jobs_before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(PaceSelectCalculation, **inputs)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == jobs_before


def test_an_empty_pool_cannot_even_be_made():
    with pytest.raises(ValueError, match="empty"):
        TrainingSetData([], labelled=False)


# ---------------------------------------------------------------------------------------------------------- parser
def test_parser_recorded_run_with_shortfall(
    parse_job, selected_pickle, argon_pool, fitted_potential, caplog, parser_regression
):
    indices = recorded_indices("pace_select_success")
    inputs = {"pool": argon_pool, "potential": fitted_potential, "max_structures": orm.Int(20)}
    with caplog.at_level(LOG_LEVEL_REPORT):
        results, calcfunction = parse_job(
            ENTRY_POINT, FIXTURES / "pace_select_success", inputs, selected_pickle(argon_pool, indices)
        )
    parser_regression(results, calcfunction)
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    assert results["indices"].get_list() == indices == [8, 6, 7, 9, 0, 1]
    names = argon_pool.get_arrays()["names"]
    assert [a.info["name"] for a in results["selected"].to_atoms()] == [names[i] for i in indices]
    assert not results["selected"].labelled
    summary = results["summary"].get_dict()
    assert summary["requested"] == 20 and summary["returned"] == 6 and summary["structures_in_active_set"] == 6
    assert "only 6 structures of the pool contribute" in summary["shortfall"] and "{'Ar': 36}" in summary["shortfall"]
    assert "select in rounds" in summary["hint"]
    assert summary["basis_functions"] == {"Ar": 36} and summary["options"] == {"gamma_tolerance": 1.01}
    said = [record for record in caplog.records if "returned 6 of the 20 structures requested" in record.getMessage()]
    assert said and all(record.levelno == LOG_LEVEL_REPORT for record in said)  # said in words, not a warning


def test_parser_keeps_labels_and_reports_no_shortfall(
    parse_job, selected_pickle, labelled_argon_pool, fitted_potential
):
    inputs = {"pool": labelled_argon_pool, "potential": fitted_potential, "max_structures": orm.Int(4)}
    results, calcfunction = parse_job(
        ENTRY_POINT, FIXTURES / "pace_select_success", inputs, selected_pickle(labelled_argon_pool, [8, 6, 7, 9])
    )
    assert calcfunction.is_finished_ok
    selected = results["selected"]
    assert selected.labelled and selected.num_structures == 4
    reference = labelled_argon_pool.to_atoms()
    for atoms, index in zip(selected.to_atoms(), [8, 6, 7, 9], strict=True):
        assert atoms.get_potential_energy() == pytest.approx(reference[index].get_potential_energy())
    summary = results["summary"].get_dict()
    assert summary["shortfall"] is None and summary["hint"] is None


def test_parser_with_active_set(parse_job, selected_pickle, argon_pool, potential_with_active_set):
    indices = recorded_indices("pace_select_with_active_set")
    inputs = {
        "pool": argon_pool,
        "potential": potential_with_active_set,
        "max_structures": orm.Int(20),
        "use_active_set": orm.Bool(True),
    }
    results, _ = parse_job(
        ENTRY_POINT, FIXTURES / "pace_select_with_active_set", inputs, selected_pickle(argon_pool, indices)
    )
    assert results["indices"].get_list() == [8, 7, 6, 9]
    assert "already covered by the potential's active set" in results["summary"]["shortfall"]


@pytest.mark.parametrize(
    ("indices", "columns", "exit_code", "detail"),
    [
        ([], None, "ERROR_NONE_SELECTED", "already covers this pool"),
        ([1, 2], ["name", "ase_atoms"], "ERROR_INVALID_SELECTION", "no 'pool_index' column"),
        (None, None, "ERROR_NO_SELECTION", "without writing selected.pkl.gz"),
    ],
)
def test_parser_failures(
    parse_job, selected_pickle, argon_pool, fitted_potential, parser_regression, indices, columns, exit_code, detail
):
    inputs = {"pool": argon_pool, "potential": fitted_potential, "max_structures": orm.Int(4)}
    temporary = selected_pickle(argon_pool, indices, columns=columns) if indices is not None else None
    results, calcfunction = parse_job(ENTRY_POINT, FIXTURES / "pace_select_success", inputs, temporary)
    parser_regression(results, calcfunction)
    assert calcfunction.exit_status == PaceSelectCalculation.exit_codes[exit_code].status
    assert detail in calcfunction.exit_message
    if exit_code == "ERROR_NONE_SELECTED":
        assert results["indices"].get_list() == [] and "selected" not in results


def test_parser_refuses_positions_outside_the_pool(parse_job, tmp_path, argon_pool, fitted_potential):
    frame = pd.DataFrame({"ase_atoms": argon_pool.to_atoms()[:2], "pool_index": [3, 12]})
    frame.to_pickle(tmp_path / "selected.pkl.gz", compression="gzip", protocol=4)
    inputs = {"pool": argon_pool, "potential": fitted_potential, "max_structures": orm.Int(4)}
    _, calcfunction = parse_job(ENTRY_POINT, FIXTURES / "pace_select_success", inputs, tmp_path)
    assert calcfunction.exit_status == PaceSelectCalculation.exit_codes.ERROR_INVALID_SELECTION.status
    assert "[12] are outside the pool of 10" in calcfunction.exit_message


def test_parser_under_determined_maxvol(parse_job, argon_pool, fitted_potential, parser_regression):
    inputs = {"pool": argon_pool, "potential": fitted_potential, "max_structures": orm.Int(4)}
    results, calcfunction = parse_job(ENTRY_POINT, FIXTURES / "pace_select_too_few", inputs)
    parser_regression(results, calcfunction)
    assert calcfunction.exit_status == PaceSelectCalculation.exit_codes.ERROR_MAXVOL_UNDERDETERMINED.status
    assert "Ar: 32 atomic environments for 36 basis functions" in calcfunction.exit_message


# ----------------------------------------------------------------------------------------------------- mocked runs
@pytest.mark.parametrize(
    ("mode", "exit_code", "detail"),
    [
        ("too_few", "ERROR_MAXVOL_UNDERDETERMINED", "Ar: 32 atomic environments for 36 basis functions"),
        ("killed", "ERROR_KILLED", "exit status 137"),
        ("crash", "ERROR_SELECT_FAILED", "RuntimeError: mock pace_select crashed"),
        ("no_output", "ERROR_NO_SELECTION", "without writing selected.pkl.gz"),
        ("garbage", "ERROR_INVALID_SELECTION", "not a gzip-compressed pandas pickle"),
    ],
)
def test_mock_failures(mock_pace_select_code, argon_pool, fitted_potential, mode, exit_code, detail):
    results, node = run_get_node(
        PaceSelectCalculation,
        code=mock_pace_select_code,
        pool=argon_pool,
        potential=fitted_potential,
        max_structures=4,
        metadata={"options": {"environment_variables": {"MOCK_PACE_MODE": mode}}},
    )
    assert node.exit_status == PaceSelectCalculation.exit_codes[exit_code].status, node.exit_message
    assert detail in node.exit_message
    assert "selected" not in results
    assert "pace_select.err" in node.outputs.retrieved.base.repository.list_object_names()
