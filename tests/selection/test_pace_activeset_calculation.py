"""PaceActivesetCalculation: input folder and command line (sandbox), validation, parser on recorded output, and
mocked runs."""

import shutil

import numpy as np
import pandas as pd
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.pace_activeset import PaceActivesetCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.workflows.functions.selection import unfitted_potential
from tests.conftest import FIXTURES
from tests.selection.conftest import POTENTIAL

ENTRY_POINT = "mlip_trainer.pace_activeset"
RECORDED = FIXTURES / "pace_activeset_success"


def test_input_folder_and_command_line(generate_calc_job, mock_pace_activeset_code, argon_sets, fitted_potential):
    folder, calcinfo = generate_calc_job(
        PaceActivesetCalculation,
        {
            "code": mock_pace_activeset_code,
            "potential": fitted_potential,
            "training_set": argon_sets["train"],
            "parameters": {"gamma_tolerance": 1.02, "maxvol_refinement": 3, "memory_limit": 2**30, "all_atoms": True},
        },
    )
    assert sorted(p.name for p in folder.iterdir()) == ["potential.yaml", "training_set.pckl.gzip"]
    assert calcinfo.codes_info[0].cmdline_params == [
        "potential.yaml",
        "-d",
        "training_set.pckl.gzip",
        "-g",
        "1.02",
        "-r",
        "3",
        "-m",
        str(2**29),  # half of what was given: the tool's limit is soft
        "-a",
    ]
    assert {"potential.asi", "potential.asi.nonlinear", "pace_activeset.err"} <= set(calcinfo.retrieve_list)
    assert "echo $? > pace_activeset.exit_status" in calcinfo.append_text
    frame = pd.read_pickle(folder / "training_set.pckl.gzip", compression="gzip")
    # no `name`: pace_activeset silently drops rows named 'augmented...'
    assert list(frame.columns) == ["ase_atoms", "energy", "energy_corrected", "forces", "stress"]


def test_unlabelled_data_in_batches_over_all_atoms(
    generate_calc_job, mock_pace_activeset_code, argon_pool, fitted_potential
):
    folder, calcinfo = generate_calc_job(
        PaceActivesetCalculation,
        {
            "code": mock_pace_activeset_code,
            "potential": fitted_potential,
            "training_set": argon_pool,
            "parameters": {"all_atoms": True, "batch_size": 5},
        },
    )
    assert calcinfo.codes_info[0].cmdline_params[3:] == ["-b", "5", "-a"]
    assert list(pd.read_pickle(folder / "training_set.pckl.gzip", compression="gzip").columns) == ["ase_atoms"]


# A valid baseline (a node's baseline is checked wherever it is read); its values do not matter here.
LJ = {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}


def _residual(training_set):
    residual = TrainingSetData(arrays=training_set.get_arrays())
    residual.base.attributes.set("baseline", LJ)
    return residual


def _copper_potential():
    import re

    return PacePotentialData(re.sub(r"\bAr\b", "Cu", POTENTIAL.read_text()).encode())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i.update(training_set=TrainingSetData(i["training_set"].to_atoms(), labelled=False)),
            "has no forces: pace_activeset leaves out atoms by force error",
        ),
        (lambda i: i.update(parameters={"batch_size": 4}), "batch_size .batch mode. works only with all_atoms"),
        (lambda i: i.update(parameters={"all_atoms": True, "batch_size": 40}), "larger than the training_set"),
        (lambda i: i.update(parameters={"full": True}), r"need ndensity > 1, but \['Ar'\] have ndensity 1"),
        (
            lambda i: i.update(training_set=_residual(i["training_set"])),
            "on the baseline {'type': 'lj', .* but the potential on None",
        ),
        (
            lambda i: i.update(parameters={"all_atoms": True, "force_error_threshold": 0.1}),
            "force_error_threshold has no effect with all_atoms",
        ),
        (lambda i: i.update(potential=_copper_potential()), r"contains \['Ar'\], which the potential"),
        (lambda i: i.update(parameters={"memory_limit": "2*2**30"}), "memory_limit must be"),
        (
            lambda i: i.update(training_set=TrainingSetData(i["training_set"].to_atoms()[:1])),
            "training_set has 32 Ar atoms but the potential has 36 basis functions",
        ),
    ],
)
def test_bad_input_fails_before_any_job(mock_pace_activeset_code, argon_sets, fitted_potential, change, message):
    inputs = {"code": mock_pace_activeset_code, "potential": fitted_potential, "training_set": argon_sets["train"]}
    change(inputs)
    jobs_before = orm.QueryBuilder().append(orm.CalcJobNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(PaceActivesetCalculation, **inputs)
    assert orm.QueryBuilder().append(orm.CalcJobNode).count() == jobs_before


def test_full_active_set_allowed_with_several_densities(
    generate_calc_job, mock_pace_activeset_code, argon_sets, small_parameters
):
    small_parameters["potential"]["embeddings"]["ALL"].update(
        npot="FinnisSinclairShiftedScaled", fs_parameters=[1, 1, 1, 0.5], ndensity=2
    )
    potential = unfitted_potential(orm.Dict(small_parameters), orm.List(["Ar"]))
    _, calcinfo = generate_calc_job(
        PaceActivesetCalculation,
        {
            "code": mock_pace_activeset_code,
            "potential": potential,
            "training_set": argon_sets["train"],
            "parameters": {"full": True, "force_error_threshold": 0.05},
        },
    )
    assert calcinfo.codes_info[0].cmdline_params[3:] == ["-f", "-e", "0.05"]


# ---------------------------------------------------------------------------------------------------------- parser
def test_parser_recorded_run(parse_job, argon_sets, argon_structures, parser_regression):
    yace = b"# a .yace stand-in: it must travel with the potential\n"
    potential = PacePotentialData(POTENTIAL, yace=yace, baseline=LJ)
    training_set = _residual(argon_sets["train"])
    results, calcfunction = parse_job(ENTRY_POINT, RECORDED, {"potential": potential, "training_set": training_set})
    parser_regression(results, calcfunction)
    assert calcfunction.is_finished_ok, calcfunction.exit_message
    out = results["potential"]
    assert out.has_active_set and out.get_yaml() == potential.get_yaml()
    assert out.baseline == potential.baseline and out.base.attributes.get("has_yace")
    assert out.base.repository.get_object_content("potential.yace", mode="rb") == yace
    assert (
        out.base.repository.get_object_content("potential.asi", mode="rb") == (RECORDED / "potential.asi").read_bytes()
    )
    assert out.content_hash != potential.content_hash
    summary = results["summary"].get_dict()
    assert summary["kind"] == "linear"
    assert summary["elements"] == {"Ar": {"active_set_size": 36, "gamma_max": 1.0}}
    assert summary["num_structures"] == 16 and summary["atoms_used"] == [502] and summary["batch_size"] is None


def test_recorded_active_set_grades_extrapolation(potential_with_active_set, argon_structures):
    """The recorded active set (real pace_activeset on the potential's training data) in the potential's calculator:
    gamma about 1 on the training structures, far above on a strongly strained and rattled cell."""
    from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

    calculator = potential_with_active_set.get_calculator()

    def max_gamma(atoms):
        atoms = atoms.copy()
        atoms.calc = calculator
        atoms.get_potential_energy()
        return float(np.max(calculator.results["gamma"]))

    training = [max_gamma(atoms) for atoms in argon_structures["train"]]
    far = [max_gamma(atoms) for atoms in argon_lennard_jones(3, seed=4, strain=0.12, rattle=0.35)]
    # MaxVol (tolerance 1.01) ran over these very environments, except the few atoms left out as force-error
    # outliers (10 of 512 here), which may grade a little above 1.
    assert np.mean(np.array(training) <= 1.01) >= 0.75, training
    assert max(training) < 5.0, training  # pacemaker's docs: above 5 is extrapolation
    assert min(far) > 10.0, far


@pytest.mark.parametrize(
    ("case", "break_it", "exit_code", "detail"),
    [
        ("pace_activeset_success", "remove", "ERROR_NO_ACTIVE_SET", "without writing potential.asi"),
        ("pace_activeset_success", "reshape", "ERROR_INVALID_ACTIVE_SET", "Ar: shape (6, 6), expected (36, 36)"),
        ("pace_activeset_success", "garbage", "ERROR_INVALID_ACTIVE_SET", "not an .npz archive"),
        ("pace_activeset_success", "nan", "ERROR_INVALID_ACTIVE_SET", "NaN or inf"),
        ("pace_activeset_batch_needs_all_atoms", None, "ERROR_BATCH_NEEDS_ALL_ATOMS", "set all_atoms to true"),
        ("pace_select_too_few", None, "ERROR_MAXVOL_UNDERDETERMINED", "Ar: 32 atomic environments for 36"),
    ],
)
def test_parser_failures(
    parse_job, tmp_path, argon_sets, fitted_potential, parser_regression, case, break_it, exit_code, detail
):
    folder = tmp_path / "retrieved"
    shutil.copytree(FIXTURES / case, folder)
    for name in folder.iterdir():
        if name.name.startswith("pace_select."):  # a pace_select failure stands in for pace_activeset's own
            name.rename(folder / name.name.replace("pace_select", "pace_activeset"))
    asi = folder / "potential.asi"
    if break_it == "remove":
        asi.unlink()
    elif break_it == "reshape":
        with asi.open("wb") as handle:  # a path would get `.npz` appended
            np.savez(handle, Ar=np.eye(6))
    elif break_it == "garbage":
        asi.write_bytes(b"not an archive")
    elif break_it == "nan":
        with asi.open("wb") as handle:
            np.savez(handle, Ar=np.full((36, 36), np.nan))
    inputs = {"potential": fitted_potential, "training_set": argon_sets["train"]}
    results, calcfunction = parse_job(ENTRY_POINT, folder, inputs)
    parser_regression(results, calcfunction)
    assert calcfunction.exit_status == PaceActivesetCalculation.exit_codes[exit_code].status
    assert detail in calcfunction.exit_message
    assert "potential" not in results


# ----------------------------------------------------------------------------------------------------- mocked runs
@pytest.mark.parametrize(
    ("mode", "exit_code"),
    [
        ("success", None),
        ("batch", "ERROR_BATCH_NEEDS_ALL_ATOMS"),
        ("killed", "ERROR_KILLED"),
        ("crash", "ERROR_ACTIVESET_FAILED"),
        ("garbage", "ERROR_INVALID_ACTIVE_SET"),
    ],
)
def test_mock_runs(mock_pace_activeset_code, argon_sets, fitted_potential, mode, exit_code):
    results, node = run_get_node(
        PaceActivesetCalculation,
        code=mock_pace_activeset_code,
        potential=fitted_potential,
        training_set=argon_sets["train"],
        metadata={"options": {"environment_variables": {"MOCK_PACE_MODE": mode}}},
    )
    if exit_code is None:
        assert node.is_finished_ok, node.exit_message
        assert results["potential"].has_active_set
        assert results["potential"].base.links.get_incoming().one().node.pk == node.pk
    else:
        assert node.exit_status == PaceActivesetCalculation.exit_codes[exit_code].status, node.exit_message
        assert "potential" not in results
