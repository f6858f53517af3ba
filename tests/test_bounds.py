"""Sizes that cannot finish are refused before any job, with a message that names the bound and how to raise it
(issue 18, "Bounds with clear messages"): the exploration's budget and ranges, atoms per structure, the ASE oracle's
parameters, and baseline cutoffs (on validation and when a stored node is read)."""

# The fixtures of the neighbouring conftests are imported below and then named as test parameters.
# ruff: noqa: F811

import json
import time

import numpy as np
import pytest
from aiida import orm
from ase import Atoms
from ase.build import bulk

from aiida_mlip_trainer.calculations.ase_oracle import AseOracleCalculation
from aiida_mlip_trainer.calculations.explore import ExplorationCalculation
from aiida_mlip_trainer.data import TrainingSetData, TrainingSetError
from aiida_mlip_trainer.data.pace_potential import PotentialError, potential_hash
from aiida_mlip_trainer.oracles import ase_oracle, validate_oracle
from aiida_mlip_trainer.physics.baselines import BaselineError, evaluate_baseline, validate_baseline
from aiida_mlip_trainer.tools import calculators
from aiida_mlip_trainer.tools import explore as explore_script
from aiida_mlip_trainer.tools.calculators import check_calculator, make_calculator
from aiida_mlip_trainer.tools.explore import check_plan, check_settings
from aiida_mlip_trainer.tools.structures import write_structures
from aiida_mlip_trainer.workflows import TrainingWorkChain
from tests.exploration.conftest import argon_start, explore_code, starts  # noqa: F401 - fixtures
from tests.selection.conftest import potential_with_active_set  # noqa: F401 - fixture
from tests.test_untrusted_nodes import deployable, tampered

LJ = {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 7.0}}


def _jobs(kind: str) -> int:
    return orm.QueryBuilder().append(orm.CalcJobNode, filters={"process_type": {"like": f"%{kind}"}}).count()


def _argon_cell(repeat: int, periodic: bool = True) -> Atoms:
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(repeat)
    atoms.pbc = periodic
    if not periodic:
        atoms.center(vacuum=5.0)
    return atoms


# ------------------------------------------------------------------------------------------------ exploration
@pytest.mark.parametrize(
    "parameters, message",
    [
        # the findings: each was accepted without a word
        ({"steps": 10**12, "sample_interval": 1}, r"1000000000000 MD steps .*max_md_steps_total"),
        (
            {"temperatures": np.linspace(10, 5000, 100_000).tolist(), "pressures": np.linspace(-5, 5, 10_000).tolist()},
            r"MD steps .*more than max_md_steps_total \(10000000\).*raise max_md_steps_total",
        ),
        ({"max_frames": 10**12}, r"max_frames must be an integer <= 10000"),
        ({"temperatures": [1e300]}, r"each temperature \(K\) must lie in \(0, 10000\]"),
        # the neighbours of the findings
        ({"temperatures": [0]}, r"each temperature \(K\) must lie in \(0, 10000\]"),
        ({"pressures": [1e300]}, r"each pressure \(GPa\) must lie in \[-1000, 1000\]"),
        ({"steps": 10**6, "sample_interval": 1, "temperatures": [300, 600]}, r"2000000 frames .*max_samples_total"),
        ({"steps": 1000.0}, r"steps must be an integer"),
        ({"steps": True}, r"steps must be an integer"),
        ({"max_frames": 2.5}, r"max_frames must be an integer"),
        ({"seed": 2**70}, r"seed must be an integer <= "),
        ({"timestep": 11}, r"timestep is in fs"),
        ({"max_md_steps_total": 10.0**8}, r"max_md_steps_total must be an integer"),
        ({"max_atoms": 0}, r"max_atoms must be an integer >= 1"),
    ],
)
def test_exploration_sizes_that_cannot_finish_are_refused_before_any_job(
    generate_calc_job, explore_code, potential_with_active_set, starts, parameters, message
):
    before = _jobs("explore")
    with pytest.raises(ValueError, match=message):
        # generate_calc_job instantiates the process (its validator runs): were a check missing, the test fails at
        # once instead of running a job that cannot finish.
        generate_calc_job(
            ExplorationCalculation,
            {
                "code": explore_code,
                "potential": potential_with_active_set,
                "structures": starts["equilibrium"],
                "parameters": {"temperatures": [300], **parameters},
            },
        )
    assert _jobs("explore") == before


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "300", None, [300]])
def test_temperature_must_be_a_finite_number(value):
    with pytest.raises(ValueError, match="each temperature"):
        check_settings({"temperatures": [value]})


def test_a_raised_budget_is_accepted_and_recorded(generate_calc_job, explore_code, potential_with_active_set, starts):
    """The budgets are defaults: given explicitly, a larger run passes, and the budget travels with the job."""
    parameters = {"temperatures": [300], "steps": 10**8, "sample_interval": 1000, "max_md_steps_total": 10**8}
    with pytest.raises(ValueError, match="max_md_steps_total"):
        check_settings({**parameters, "max_md_steps_total": 10**8 - 1})
    folder, _ = generate_calc_job(
        ExplorationCalculation,
        {
            "code": explore_code,
            "potential": potential_with_active_set,
            "structures": starts["equilibrium"],
            "parameters": parameters,
        },
    )
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["max_md_steps_total"] == 10**8 and settings["steps"] == 10**8
    assert settings["max_atoms"] == 2000 and settings["max_samples_total"] == 10**6  # the documented defaults


def test_a_256000_atom_structure_is_refused_before_any_job(generate_calc_job, explore_code, potential_with_active_set):
    big = TrainingSetData([_argon_cell(40)], labelled=False, min_distance=None).store()
    assert big.num_atoms == 256_000
    before = _jobs("explore")
    with pytest.raises(
        ValueError, match=r"structure 0 has 256000 atoms, more than max_atoms \(2000\).*raise max_atoms"
    ):
        generate_calc_job(
            ExplorationCalculation,
            {
                "code": explore_code,
                "potential": potential_with_active_set,
                "structures": big,
                "parameters": {"temperatures": [300]},
            },
        )
    assert _jobs("explore") == before


def test_max_atoms_is_raised_explicitly(generate_calc_job, explore_code, potential_with_active_set):
    """2048 atoms: refused by default, accepted with max_atoms=2048 (and one atom fewer is refused again)."""
    cell = TrainingSetData([_argon_cell(8)], labelled=False).store()
    inputs = {"code": explore_code, "potential": potential_with_active_set, "structures": cell}
    with pytest.raises(ValueError, match=r"2048 atoms, more than max_atoms \(2000\)"):
        generate_calc_job(ExplorationCalculation, {**inputs, "parameters": {"temperatures": [300]}})
    with pytest.raises(ValueError, match=r"more than max_atoms \(2047\)"):
        generate_calc_job(ExplorationCalculation, {**inputs, "parameters": {"temperatures": [300], "max_atoms": 2047}})
    folder, _ = generate_calc_job(
        ExplorationCalculation, {**inputs, "parameters": {"temperatures": [300], "max_atoms": 2048}}
    )
    assert json.loads((folder / "settings.json").read_text())["max_atoms"] == 2048


def test_pressures_count_only_for_periodic_structures(generate_calc_job, explore_code, potential_with_active_set):
    """The budget counts the trajectories the structures really give: pressures multiply only 3D-periodic cells."""
    parameters = {"temperatures": [100.0 * k for k in range(1, 11)], "pressures": [0.1] * 10_000}
    periodic = TrainingSetData([argon_start()], labelled=False).store()
    cluster = TrainingSetData([_argon_cell(1, periodic=False)], labelled=False).store()
    inputs = {"code": explore_code, "potential": potential_with_active_set, "parameters": parameters}
    with pytest.raises(ValueError, match=r"100000000 MD steps \(1000 steps x 100000 trajectories"):
        generate_calc_job(ExplorationCalculation, {**inputs, "structures": periodic})
    generate_calc_job(ExplorationCalculation, {**inputs, "structures": cluster})  # 10 trajectories


def test_the_script_checks_the_plan_again(tmp_path):
    """The job's own check: a settings file that bypassed the validator stops before any MD (no potential read)."""
    (tmp_path / "settings.json").write_text(json.dumps({"temperatures": [300], "max_atoms": 10}))
    write_structures(tmp_path / "structures.json", [argon_start()])
    with pytest.raises(ValueError, match=r"structure 0 has 32 atoms, more than max_atoms \(10\)"):
        explore_script.main(
            ["--settings", str(tmp_path / "settings.json"), "--structures", str(tmp_path / "structures.json")]
        )
    settings = check_settings({"temperatures": [300], "pressures": [0.0, 1.0], "steps": 5_000_000})
    check_plan(settings, [32], [False])
    with pytest.raises(ValueError, match=r"15000000 MD steps \(5000000 steps x 3 trajectories for 2 structure"):
        check_plan(settings, [32, 32], [True, False])  # two pressures for the periodic cell, one run for the other


def test_a_resume_frame_runs_only_the_trajectory_it_continues():
    """A structure named in resume_trajectories runs its halted trajectory's condition, temperature and pressure,
    once; the others run every condition x temperature x pressure. The budget counts the same trajectories."""
    from aiida_mlip_trainer.tools.explore import _trajectories

    conditions = [
        {"name": "hot", "temperatures": [900.0, 1500.0]},
        {"name": "npt", "temperatures": [600.0], "pressures": [-5.0, 5.0]},
    ]
    resumed = [{"structure": 1, "condition": "npt", "temperature": 600.0, "pressure": 5.0}]
    settings = check_settings({"conditions": conditions, "steps": 100, "resume_trajectories": resumed})
    cells = [argon_start(), argon_start()]
    plans = [plan for plan, _ in _trajectories(cells, settings)]
    assert [(p["structure"], p["condition"], p["temperature"], p["pressure"]) for p in plans] == [
        (0, "hot", 900.0, None),
        (0, "hot", 1500.0, None),
        (0, "npt", 600.0, -5.0),
        (0, "npt", 600.0, 5.0),
        (1, "npt", 600.0, 5.0),
    ]
    limited = check_settings(
        {"conditions": conditions, "steps": 100, "resume_trajectories": resumed, "max_md_steps_total": 500}
    )
    check_plan(limited, [32, 32], [True, True])  # 5 trajectories of 100 steps
    with pytest.raises(ValueError, match=r"800 MD steps \(100 steps x 8 trajectories for 3 structure"):
        check_plan(limited, [32, 32, 32], [True, True, False])  # a slab: hot twice, npt once
    with pytest.raises(ValueError, match=r"resume_trajectories name structure\(s\) \[1\], but there are 1"):
        check_plan(limited, [32], [True])


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"structure": 0, "condition": "cold", "temperature": 300, "pressure": None}, r"condition 'cold' is not one"),
        ({"structure": -1, "condition": "", "temperature": 300, "pressure": None}, r"structure must be an integer"),
        ({"structure": 0, "condition": "", "temperature": 0, "pressure": None}, r"temperature \(K\) must lie in"),
        ({"structure": 0, "condition": "", "temperature": 300}, r"exactly structure, condition, temperature"),
        ({"structure": 0, "condition": "", "temperature": 300, "pressure": "1"}, r"pressure \(GPa\) must be"),
    ],
)
def test_resume_trajectories_are_checked(entry, message):
    with pytest.raises(ValueError, match=message):
        check_settings({"temperatures": [300], "resume_trajectories": [entry]})
    with pytest.raises(ValueError, match="continues two trajectories"):
        twice = {"structure": 0, "condition": "", "temperature": 300, "pressure": None}
        check_settings({"temperatures": [300], "resume_trajectories": [twice, twice]})


# ------------------------------------------------------------------------------------------------- ASE oracle
@pytest.mark.parametrize(
    "calculator, parameters, message",
    [
        ("lj", {"rc": 1e6}, r"calculator 'lj': 'rc' must lie in \(0, 20\], got 1000000.0"),
        ("lj", {"sigma": "2.3"}, r"'sigma' must be a finite number, got '2.3'"),
        ("lj", {"sigma": 8.0}, r"the default 'rc' \(3 sigma = 24 Å\) is above 20 Å: give 'rc'"),
        ("lj", {"sigma": 0}, r"'sigma' must lie in \(0, 10\]"),
        ("lj", {"epsilon": -1}, r"'epsilon' must lie in \[0, 100\]"),
        ("lj", {"rc": 5.0, "ro": 5.0}, r"'ro' \(5 Å\) must be below 'rc'"),
        ("lj", {"smooth": "yes"}, r"'smooth' must be true or false"),
        ("emt", {"fixed_cutoff": 1}, r"calculator 'emt': 'fixed_cutoff' must be true or false, got 1"),
    ],
)
def test_ase_oracle_parameters_are_typed_and_bounded_before_any_job(
    generate_calc_job, ase_oracle_code, calculator, parameters, message
):
    before = _jobs("ase_oracle")
    with pytest.raises(ValueError, match=message):
        generate_calc_job(
            AseOracleCalculation,
            {
                "code": ase_oracle_code,
                "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.62, cubic=True)),
                "calculator": calculator,
                "parameters": parameters,
            },
        )
    assert _jobs("ase_oracle") == before
    with pytest.raises(ValueError, match=message):  # and in the job, which builds the calculator the same way
        make_calculator(calculator, parameters)


def test_ase_oracle_lj_with_a_huge_cutoff_never_starts():
    """The finding: LJ with rc=1e6 on one atom was still running after 90 s. Now it is refused at once."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match="'rc' must lie in"):
        make_calculator("lj", {"sigma": 2.3, "epsilon": 0.4, "rc": 1e6})
    assert time.perf_counter() - start < 5
    make_calculator("lj", {"sigma": 2.3, "epsilon": 0.4, "rc": 20.0, "ro": 15.0, "smooth": True})  # the bound itself


def test_a_third_party_parameter_check_that_crashes_becomes_a_message(monkeypatch):
    def factory(size: int = 1):
        return None

    def check(parameters):
        raise TypeError("boom")

    factory.check_parameters = check
    monkeypatch.setattr(calculators, "_factory", lambda name: factory)
    with pytest.raises(ValueError, match=r"calculator 'mine': its parameter check failed: TypeError\('boom'\)"):
        check_calculator("mine", {"size": 2})


def test_ase_oracle_atoms_per_structure(generate_calc_job, ase_oracle_code):
    """At most 2000 atoms by default; a larger ``max_atoms`` labels a bigger cell on purpose."""
    structure = orm.StructureData(ase=bulk("Cu", "fcc", a=3.62, cubic=True).repeat(8))  # 2048 atoms
    inputs = {"code": ase_oracle_code, "structure": structure, "calculator": "emt"}
    before = _jobs("ase_oracle")
    with pytest.raises(ValueError, match=r"2048 atoms, more than max_atoms \(2000\).*larger max_atoms"):
        generate_calc_job(AseOracleCalculation, inputs)
    assert _jobs("ase_oracle") == before
    with pytest.raises(ValueError, match=r"max_atoms must be a positive integer"):
        generate_calc_job(AseOracleCalculation, {**inputs, "max_atoms": 0})
    folder, _ = generate_calc_job(AseOracleCalculation, {**inputs, "max_atoms": 2048})
    assert (folder / "structure.json").exists()
    description = ase_oracle(ase_oracle_code, "emt")  # the limit raised through an oracle description
    description["inputs"]["max_atoms"] = orm.Int(5000)
    assert validate_oracle(**description) is None


# -------------------------------------------------------------------------------------------------- baselines
@pytest.mark.parametrize(
    "baseline, message",
    [
        (
            {"type": "lj", "params": {"epsilon": 0.0104, "sigma": 3.4, "cutoff": 1e6}},
            r"lj params\['cutoff'\] must be at most 20 Å, got 1000000.0",
        ),
        (
            {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": 20.5}},
            r"zbl params\['cutoff'\] must be at most 20",
        ),
        ({"type": "zbl", "params": {"inner_cutoff": 25.0, "cutoff": 30.0}}, r"\['inner_cutoff'\] must be at most 20"),
        (
            {"type": "zbl", "params": {"ALL": {"inner_cutoff": 1.0, "cutoff": 2.0}, "H-H": {"cutoff": 1000}}},
            r"zbl params\['H-H'\]\['cutoff'\] must be at most 20",
        ),
        (
            {"type": "lj", "params": {"ALL": LJ["params"], "Ar-Kr": {"cutoff": 21}}},
            r"lj params\['Ar-Kr'\]\['cutoff'\] must be at most 20",
        ),
        ({"type": "zbl", "params": {"inner_cutoff": 2.0, "cutoff": 2.0}}, r"must be smaller than 'cutoff'"),
        ({"type": "zbl", "params": {"inner_cutoff": -1.0, "cutoff": 2.0}}, r"\['inner_cutoff'\] must be > 0"),
        ({"type": "lj", "params": {**LJ["params"], "cutoff": "7\nrm"}}, r"\['cutoff'\] must be a number, got '7\\nrm'"),
    ],
)
def test_baseline_cutoffs_are_bounded(baseline, message):
    with pytest.raises(BaselineError, match=message):
        validate_baseline(baseline)


def test_the_bound_itself_is_accepted():
    assert validate_baseline({**LJ, "params": {**LJ["params"], "cutoff": 20}})["params"]["cutoff"] == 20.0
    assert validate_baseline({"type": "zbl", "params": {"inner_cutoff": 19.0, "cutoff": 20.0}})


def test_evaluate_baseline_with_a_huge_cutoff_fails_at_once():
    """The finding: at cutoff 1000 Å ``evaluate_baseline`` ran into a MemoryError after 64 s. The test uses 50 Å, which
    a missing bound would evaluate in seconds (1000 Å takes all the memory of the machine that runs the tests)."""
    start = time.perf_counter()
    with pytest.raises(BaselineError, match="must be at most 20"):
        evaluate_baseline({**LJ, "params": {**LJ["params"], "cutoff": 50.0}}, [argon_start()])
    assert time.perf_counter() - start < 5


def test_training_refuses_a_huge_baseline_cutoff_before_any_process(argon_sets):
    """The calcfunction that evaluated it (subtract_baseline, in the daemon) is never reached."""
    inputs = {
        "training_set": argon_sets["train"],
        "test_fraction": orm.Float(0.2),
        "physics_baseline": orm.Dict({**LJ, "params": {**LJ["params"], "cutoff": 1000.0}}),
    }
    message = TrainingWorkChain.spec().inputs.validator(inputs, None)
    assert message is not None and "physics_baseline: lj params['cutoff'] must be at most 20 Å" in message


@pytest.mark.parametrize("cutoff", [1000.0, "7\nrm"])
def test_an_archived_potential_with_a_huge_or_textual_cutoff_is_refused_when_read(tmp_path, cutoff):
    """Altered with a content_hash recomputed to match (a plain sha256 anyone can redo): only the bound stops it."""
    original = deployable(LJ)
    yaml_bytes, yace_bytes = (original.read_file(name) for name in ("potential.yaml", "potential.yace"))
    baseline = {**LJ, "params": {**LJ["params"], "cutoff": cutoff}}
    forged = potential_hash(yaml_bytes, yace_bytes, None, baseline)
    node = tampered(original, tmp_path, attributes={"baseline": baseline, "content_hash": forged})
    message = rf"PacePotentialData<{node.pk}> \(.*\) attribute 'baseline': lj params\['cutoff'\] must be"
    with pytest.raises(PotentialError, match=message):
        node.baseline  # noqa: B018 - reading it is the check
    with pytest.raises(PotentialError, match=message):
        node.get_calculator()
    with pytest.raises(PotentialError, match=message):
        node.lammps_commands()


def test_an_archived_residual_set_with_a_huge_cutoff_is_refused_when_verified(tmp_path):
    residual = TrainingSetData([argon_start()], labelled=False)
    residual.base.attributes.set("baseline", validate_baseline(LJ))
    residual.store()
    node = tampered(residual, tmp_path, attributes={"baseline": {**LJ, "params": {**LJ["params"], "cutoff": 1e6}}})
    with pytest.raises(TrainingSetError, match=rf"TrainingSetData<{node.pk}>.* attribute 'baseline'.*at most 20 Å"):
        node.verify()


# ------------------------------------------------------------------------------------------------------- the loop
def test_the_loop_checks_the_exploration_sizes_before_the_first_fit(argon_sets):
    """ActiveLearningWorkChain would otherwise train first and fail when it launches the first exploration."""
    from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain

    validator = ActiveLearningWorkChain.spec().inputs.validator
    base = {
        "structures": argon_sets["train"],
        "test_fraction": orm.Float(0.2),
        "max_rounds": orm.Int(1),
        "explore_count": orm.Int(2),
    }
    big = TrainingSetData([_argon_cell(8)], labelled=False).store()  # 2048 atoms
    message = validator(
        {**base, "explore_from": big, "exploration": {"parameters": orm.Dict({"temperatures": [300]})}}, None
    )
    assert message == (
        "exploration: starting structure 0 has 2048 atoms, more than max_atoms (2000): explore smaller cells, or "
        "raise max_atoms in the parameters if you mean it"
    )
    # drawn from the data: explore_count (2) trajectories per temperature and pressure
    parameters = orm.Dict({"temperatures": [300], "pressures": [0.0] * 5001, "steps": 1000})
    message = validator({**base, "exploration": {"parameters": parameters}}, None)
    assert message is not None and "10002000 MD steps (1000 steps x 10002 trajectories" in message
