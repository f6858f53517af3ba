"""ExplorationCalculation on argon with the real recorded potential and its real active set: validation before any
job, γ stays low at low temperature, hot or compressed starts give frames in the collect band, a low halt threshold
stops the trajectory, the seed reproduces the run, NPT with a baseline, and the parser's failure modes."""

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from tests.conftest import FIXTURES
from tests.exploration.conftest import argon_start, max_gamma
from tests.selection.conftest import POTENTIAL

ACTIVE_SET = FIXTURES / "pace_activeset_success" / "potential.asi"
SHORT = {"steps": 200, "timestep": 5.0, "sample_interval": 10}


def _explore(code, potential, structures, **parameters):
    results, node = run_get_node(
        ExplorationCalculation,
        code=code,
        potential=potential,
        structures=structures,
        parameters={**SHORT, **parameters},
    )
    assert node.is_finished_ok, node.exit_message
    return results, node


def test_input_folder_and_command_line(generate_calc_job, explore_code, starts):
    potential = PacePotentialData(
        POTENTIAL,
        active_set=ACTIVE_SET,
        baseline={"type": "lj", "params": {"epsilon": 0.01, "sigma": 3.4, "cutoff": 7.0}},
    ).store()
    folder, calcinfo = generate_calc_job(
        ExplorationCalculation,
        {
            "code": explore_code,
            "potential": potential,
            "structures": starts["equilibrium"],
            "parameters": {"temperatures": [10]},
        },
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline.json",
        "potential.asi",
        "potential.yaml",
        "settings.json",
        "structures.json",
    ]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["gamma_collect"] == 5.0 and settings["gamma_halt"] == 25.0 and settings["seed"] == 42
    assert json.loads((folder / "baseline.json").read_text())["type"] == "lj"
    assert (folder / "potential.asi").read_bytes() == ACTIVE_SET.read_bytes()
    params = calcinfo.codes_info[0].cmdline_params
    assert params[:2] == ["--settings", "settings.json"] and params[-2:] == ["--baseline", "baseline.json"]
    assert {"exploration.json", "candidates.json", "explore.err"} <= set(calcinfo.retrieve_list)


def _jobs() -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode, filters={"process_type": {"like": "%explore"}}).count()


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"temperatures": []}, "temperatures must be a non-empty list"),
        ({"temperatures": [300], "gamma_collect": 30}, "gamma_halt .25.0. must be above gamma_collect"),
        ({"temperatures": [300], "steps": 0}, "steps must be an integer >= 1"),
        ({"temperatures": [300], "timestep": 1000}, "timestep is in fs"),
        ({"temperatures": [300], "pressures": ["high"]}, "each pressure"),
        ({"temperatures": [300], "thermostat": "nose"}, "unknown exploration parameters"),
    ],
)
def test_bad_parameters_refused_before_any_job(explore_code, potential_with_active_set, starts, parameters, message):
    before = _jobs()
    with pytest.raises(ValueError, match=message):
        run_get_node(
            ExplorationCalculation,
            code=explore_code,
            potential=potential_with_active_set,
            structures=starts["equilibrium"],
            parameters=parameters,
        )
    assert _jobs() == before


def test_potential_without_active_set_or_with_other_elements_refused(
    explore_code, fitted_potential, potential_with_active_set
):
    from ase.build import bulk

    argon = TrainingSetData([argon_start()], labelled=False).store()
    with pytest.raises(ValueError, match="no active set"):
        run_get_node(
            ExplorationCalculation,
            code=explore_code,
            potential=fitted_potential,
            structures=argon,
            parameters={"temperatures": [10]},
        )
    copper = TrainingSetData([bulk("Cu", cubic=True)], labelled=False).store()
    with pytest.raises(ValueError, match=r"contain \['Cu'\]"):
        run_get_node(
            ExplorationCalculation,
            code=explore_code,
            potential=potential_with_active_set,
            structures=copper,
            parameters={"temperatures": [10]},
        )


def test_low_temperature_stays_in_the_training_domain(explore_code, potential_with_active_set, starts):
    results, node = _explore(explore_code, potential_with_active_set, starts["equilibrium"], temperatures=[10])
    summary = results["summary"].get_dict()
    assert summary["num_candidates"] == 0 and summary["num_halted"] == 0
    assert "candidates" not in results
    assert summary["max_gamma"] < 2  # interpolation: γ around 1
    gamma = results["gamma"]
    assert gamma.get_array("gamma").shape == (1, 21)
    assert np.array_equal(gamma.get_array("steps"), np.arange(0, 201, 10))
    assert np.isfinite(gamma.get_array("gamma")).all()
    assert gamma.get_array("halt_step").tolist() == [-1]
    (trajectory,) = summary["trajectories"]
    assert trajectory["ensemble"] == "NVT" and trajectory["steps_run"] == 200 and trajectory["seed"] == [42, 0]


@pytest.mark.parametrize("start, temperature", [("equilibrium", 200), ("compressed", 20)])
def test_hot_or_compressed_starts_give_frames_in_the_band(
    explore_code, potential_with_active_set, starts, start, temperature
):
    results, node = _explore(explore_code, potential_with_active_set, starts[start], temperatures=[temperature])
    candidates = results["candidates"]
    summary = results["summary"].get_dict()
    assert candidates.num_structures == summary["num_candidates"] > 0
    assert not candidates.labelled
    assert candidates.num_structures <= 10  # max_frames per trajectory
    # Checked independently: pyace with the same active set puts every kept frame in [gamma_collect, gamma_halt).
    grades = max_gamma(potential_with_active_set, candidates.to_atoms())
    assert all(5.0 <= grade < 25.0 for grade in grades), grades
    kept = summary["trajectories"][0]["kept"]
    steps = results["gamma"].get_array("steps").tolist()
    recorded = results["gamma"].get_array("gamma")[0]
    assert [recorded[steps.index(step)] for step in kept] == pytest.approx(grades, rel=1e-9)


def test_halt_threshold_stops_the_trajectory(explore_code, potential_with_active_set, starts):
    results, node = _explore(
        explore_code,
        potential_with_active_set,
        starts["equilibrium"],
        temperatures=[10],
        gamma_collect=0.3,
        gamma_halt=0.7,
    )
    summary = results["summary"].get_dict()
    (trajectory,) = summary["trajectories"]
    assert trajectory["halted"] and summary["num_halted"] == 1 and summary["fraction_halted"] == 1.0
    assert trajectory["halt_gamma"] >= 0.7 and trajectory["steps_run"] == trajectory["halt_step"] < 200
    gamma = results["gamma"]
    assert gamma.get_array("halt_step").tolist() == [trajectory["halt_step"]]
    row = gamma.get_array("gamma")[0]
    # Sampled every 10 steps until the halt, and all of those below the threshold.
    assert len(row) == len(range(0, trajectory["halt_step"], 10)) and (row < 0.7).all()
    assert results["candidates"].num_structures == len(trajectory["kept"]) > 0
    # The resume frame is the last sample below the halt: its step, and its γ as pyace evaluates it, are that sample's
    last = len(row) - 1
    assert trajectory["resume_step"] == gamma.get_array("steps")[last] == (trajectory["halt_step"] - 1) // 10 * 10
    (resume,) = results["resume"].to_atoms()
    assert resume.info["name"] == f"Ar_start_1.0_traj0_resume{trajectory['resume_step']}"
    assert not results["resume"].labelled and summary["num_resume"] == 1
    (grade,) = max_gamma(potential_with_active_set, [resume])
    assert grade == pytest.approx(row[last], rel=1e-9) and grade < 0.7


@pytest.mark.parametrize("keep", [True, False])
def test_a_start_above_the_halt_threshold_is_kept_once_as_a_candidate(explore_code, potential_with_active_set, keep):
    """Every trajectory of a start whose own γ is at or above gamma_halt halts at step 0, with no frame to keep or
    resume from: the start (a given or generated structure, not a frame the potential's MD made) is the candidate,
    once for all its trajectories (two temperatures, two conditions here); the other start, below the threshold,
    gives no start candidate. keep_extrapolating_starts false keeps nothing."""
    from aiida_mlip_trainer.data import TrainingSetData
    from tests.exploration.conftest import argon_start

    pair = TrainingSetData([argon_start(0.93), argon_start()], labelled=False).store()
    start_gamma, equilibrium_gamma = max_gamma(potential_with_active_set, pair.to_atoms())
    halt = (start_gamma + equilibrium_gamma) / 2  # the compressed start above it, the equilibrium one below
    assert equilibrium_gamma < halt < start_gamma
    results, _ = _explore(
        explore_code,
        potential_with_active_set,
        pair,
        temperatures=[10, 20],
        conditions=[{"name": "a"}, {"name": "b"}],
        gamma_collect=halt / 2,
        gamma_halt=halt,
        keep_extrapolating_starts=keep,
    )
    records = results["summary"]["trajectories"]
    compressed = [r for r in records if r["structure"] == 0]
    assert len(compressed) == 4 and all(r["halted"] and r["halt_step"] == 0 for r in compressed)
    assert all(r["resume_step"] is None for r in compressed)
    kept_at_start = [r for r in records if 0 in r["kept"]]
    if not keep:
        assert kept_at_start == [] and all(not r["kept"] for r in compressed)
        return
    assert kept_at_start == [compressed[0]] and compressed[0]["kept"] == [0]
    names = [atoms.info["name"] for atoms in results["candidates"].to_atoms()]
    index = records.index(compressed[0])
    assert names.count(f"Ar_start_0.93_traj{index}_step0") == 1 and not any(
        "Ar_start_1.0" in n and "step0" in n for n in names
    )
    (start,) = [a for a in results["candidates"].to_atoms() if a.info["name"].endswith("_step0")]
    assert np.allclose(start.positions, pair.to_atoms()[0].positions)  # the start itself, not an MD frame


def test_a_ramp_and_conditions_in_one_job(explore_code, potential_with_active_set, starts):
    """Two conditions in one job: a heating ramp from 10 to 150 K and a fixed 10 K; every record names its condition,
    and the ramp's thermostat heats the atoms while the fixed one keeps them cold."""
    results, _ = _explore(
        explore_code,
        potential_with_active_set,
        starts["equilibrium"],
        steps=400,
        conditions=[
            {"name": "ramp", "temperatures": [10], "ramp_to": 150},
            {"name": "cold", "temperatures": [10], "steps": 200},
        ],
        gamma_collect=20,
        gamma_halt=1000,
    )
    ramp, cold = results["summary"]["trajectories"]
    assert (ramp["condition"], ramp["ramp_to"], ramp["steps_run"]) == ("ramp", 150.0, 400)
    assert (cold["condition"], cold["ramp_to"], cold["steps_run"]) == ("cold", None, 200)
    temperature = results["gamma"].get_array("temperature")
    assert np.isnan(temperature[1, 21:]).all()  # the cold condition ran 200 steps: sampled 21 times
    assert temperature[0, -10:].mean() > 80 > 25 > temperature[1, 11:21].mean()


def test_the_seed_reproduces_the_run(explore_code, potential_with_active_set, starts):
    runs = [
        _explore(explore_code, potential_with_active_set, starts["equilibrium"], temperatures=[60], seed=seed)[0]
        for seed in (7, 7, 8)
    ]
    first, again, other = (run["gamma"].get_array("gamma") for run in runs)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert runs[0]["summary"]["trajectories"][0]["seed"] == [7, 0]


def test_npt_with_baseline(explore_code, starts):
    baseline = {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}
    potential = PacePotentialData(POTENTIAL, active_set=ACTIVE_SET, baseline=baseline).store()
    results, _ = _explore(explore_code, potential, starts["equilibrium"], temperatures=[10, 20], pressures=[0.0, 0.2])
    trajectories = results["summary"]["trajectories"]
    assert [(t["temperature"], t["pressure"], t["ensemble"]) for t in trajectories] == [
        (10.0, 0.0, "NPT"),
        (10.0, 0.2, "NPT"),
        (20.0, 0.0, "NPT"),
        (20.0, 0.2, "NPT"),
    ]
    # The MD ran on ACE plus the baseline: the first sampled energy is that of the start with both.
    start = starts["equilibrium"].to_atoms()[0]
    start.calc = potential.get_calculator()
    expected = start.get_potential_energy() / len(start)
    assert results["gamma"].get_array("energy_per_atom")[:, 0] == pytest.approx(expected, abs=1e-9)
    start.calc = potential.get_ace_calculator()
    assert abs(start.get_potential_energy() / len(start) - expected) > 1e-3  # the baseline is not negligible


def test_parser_failure_modes(explore_code, potential_with_active_set, starts, parse_retrieved_files):
    results, node = _explore(explore_code, potential_with_active_set, starts["compressed"], temperatures=[20])
    retrieved = node.outputs.retrieved
    files = {
        name: retrieved.base.repository.get_object_content(name, mode="rb")
        for name in retrieved.base.repository.list_object_names()
    }
    inputs = {
        "potential": potential_with_active_set,
        "structures": starts["compressed"],
        "parameters": orm.Dict({"temperatures": [20]}).store(),
    }
    codes = ExplorationCalculation.exit_codes

    _, calcfunction = parse_retrieved_files(files, inputs)
    assert calcfunction.is_finished_ok

    cases = {
        "killed": ({**files, "explore.exit_status": b"137\n"}, codes.ERROR_KILLED),
        "not written": ({k: v for k, v in files.items() if k != "explore.exit_status"}, codes.ERROR_KILLED),
        "failed": (
            {**files, "explore.exit_status": b"1\n", "explore.err": b"Traceback ...\nValueError: unknown parameter\n"},
            codes.ERROR_SCRIPT_FAILED,
        ),
        "no output": ({k: v for k, v in files.items() if k != "exploration.json"}, codes.ERROR_OUTPUT_MISSING),
        "no candidates": ({k: v for k, v in files.items() if k != "candidates.json"}, codes.ERROR_OUTPUT_INVALID),
        "not JSON": ({**files, "exploration.json": b"{"}, codes.ERROR_OUTPUT_INVALID),
    }
    for case, (doctored, expected) in cases.items():
        _, calcfunction = parse_retrieved_files(doctored, inputs)
        assert calcfunction.exit_status == expected.status, case
    _, calcfunction = parse_retrieved_files(cases["failed"][0], inputs)
    assert "ValueError: unknown parameter" in calcfunction.exit_message


def test_validation_gamma_of_the_users_structures(potential_with_active_set):
    """The loop's validation γ (a calcfunction): each structure's largest γ with the potential and its active set, as
    pyace gives it, and which are at or above gamma_collect."""
    from aiida_mlip_trainer.workflows.functions.potential import validation_gamma

    cells = [argon_start(), argon_start(0.93), argon_start(0.9)]
    structures = TrainingSetData(cells, labelled=False).store()
    expected = max_gamma(potential_with_active_set, [cell.copy() for cell in cells])
    first = validation_gamma(potential_with_active_set, structures, orm.Float(5.0)).get_dict()
    assert first["gamma"] == pytest.approx(expected, rel=1e-9)
    low, middle, _ = sorted(expected)
    threshold = (low + middle) / 2  # two of the three extrapolate
    result = validation_gamma(potential_with_active_set, structures, orm.Float(threshold)).get_dict()
    assert result["max_gamma"] == pytest.approx(max(expected)) and result["median_gamma"] == pytest.approx(middle)
    names = [cell.info["name"] for cell in cells]
    assert sorted(result["extrapolating"]) == sorted(n for n, g in zip(names, expected, strict=True) if g >= threshold)
    assert len(result["extrapolating"]) == 2 and expected[0] < threshold
