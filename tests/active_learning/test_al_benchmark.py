"""benchmarks/active_learning.py without fits: the target's conditions are what they say, route c counts every MD
step and grows by prefixes, and the report's bookkeeping (calls to reach a target, ratios, merged seeds) is right on
made-up curves."""

import numpy as np
import pytest
from ase import units
from ase.calculators.emt import EMT

from aiida_mlip_trainer.physics.generators import has_vacuum
from tests.active_learning.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("active_learning.py")


def pressure(atoms) -> float:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return -atoms.get_stress()[:3].mean() / units.GPa


@pytest.mark.parametrize("system", ["copper", "cuni"])
def test_the_target_conditions_are_the_cells_and_pressures_they_name(bench, system):
    conditions = bench.target_conditions(system)
    hottest = max(t for _, t in conditions.values())
    assert hottest == 1500 and min(t for _, t in conditions.values()) == 300
    assert all(len(atoms) <= 32 for atoms, _ in conditions.values())
    assert pressure(conditions["bulk_300K"][0]) == pytest.approx(0.0, abs=0.05)
    assert pressure(conditions["p+5GPa_600K"][0]) == pytest.approx(5.0, abs=0.1)
    assert pressure(conditions["p-5GPa_600K"][0]) == pytest.approx(-5.0, abs=0.1)
    assert len(conditions["vacancy_900K"][0]) == 31
    slab = conditions["slab111_600K"][0]
    assert has_vacuum(slab) and len(slab) == 20
    elements = {element for atoms, _ in conditions.values() for element in atoms.get_chemical_symbols()}
    assert elements == ({"Cu"} if system == "copper" else {"Cu", "Ni"})


def test_route_c_counts_every_md_step_and_grows_by_prefixes(bench):
    conditions = bench.target_conditions("copper")
    few, more = bench.route_c_frames(conditions, 9, seed=0), bench.route_c_frames(conditions, 16, seed=0)
    assert len(few) == 9 and len(more) == 16  # one frame per call
    for a, b in zip(few, more, strict=False):
        assert np.allclose(a.positions, b.positions) and a.get_potential_energy() == b.get_potential_energy()
    names = list(conditions)
    # round-robin: call i is step i // n of condition i % n, one MD step (2 fs) after the previous of its condition
    first, second = more[0], more[len(names)]
    assert first.info["name"].startswith(f"c_{names[0]}") and second.info["name"].startswith(f"c_{names[0]}")
    step = np.linalg.norm(second.positions - first.positions, axis=1).max()
    assert 0 < step < 0.05  # Å: one 2 fs step at 300 K (ten steps move an atom about 0.1 Å)
    assert not np.allclose(bench.route_c_frames(conditions, 2, seed=1)[0].positions, first.positions)


def test_calls_to_reach_interpolates_between_budgets(bench):
    assert bench.calls_to_reach([0, 25, 50], [100.0, 60.0, 20.0], 40.0) == pytest.approx(37.5)
    assert bench.calls_to_reach([0, 25, 50], [30.0, 60.0, 20.0], 40.0) == 0.0
    assert bench.calls_to_reach([0, 25, 50], [100.0, 60.0, 50.0], 40.0) is None


def record(seeds, loop_f, other_f, maxiter=60):
    """A made-up results file: every arm's force error the same on each of two conditions."""

    def points(values):
        return [{"calls": c, "errors": {n: {"E": 1.0, "F": v} for n in ("hot", "cold")}, "max_gamma": 2.0}
                for c, v in zip((0, 25, 50), values, strict=True)]  # fmt: skip

    runs = {}
    for seed in seeds:
        runs[f"a/{seed}"] = {"points": points(loop_f), "done": True, "workchain": 1, "seconds": 1,
                             "stop_reason": "max_rounds (3) reached"}  # fmt: skip
        runs[f"c/{seed}"] = {"points": points(other_f), "done": True}
    settings = {"system": "copper", "batch": 25, "rounds": 2, "maxiter": maxiter, "initial": 6, "target_frames": 50,
                "seeds": list(seeds), "json": "x.json"}  # fmt: skip
    spread = {n: {"E_std": 1.0, "F_rms": 500.0, "P": 0.0, "frames": 50} for n in ("hot", "cold")}
    return {"settings": settings, "spread": spread, "runs": runs}


def test_the_report_gives_the_calls_to_the_targets_and_their_ratio(bench, capsys):
    # loop reaches F 100 at 12.5 calls, route c at 37.5: ratio 1/3 on both conditions, every seed
    loop, route_c = [150.0, 50.0, 40.0], [150.0, 150.0, 50.0]
    merged = bench.merge([record([0], loop, route_c), record([1, 2], loop, route_c)])
    assert merged["settings"]["seeds"] == [0, 1, 2] and sorted(merged["runs"]) == [
        "a/0", "a/1", "a/2", "c/0", "c/1", "c/2"]  # fmt: skip
    reach = bench.reach_table(merged, {"E": 5.0, "F": 100.0})
    assert reach["a", 1]["hot"]["F"] == pytest.approx(12.5) and reach["c", 2]["cold"]["F"] == pytest.approx(37.5)
    assert reach["a", 0]["hot"]["E"] == 0.0
    bench.report(merged, {"E": 5.0, "F": 100.0})
    out = capsys.readouterr().out
    assert "a/c: hot: 0.33 [0.33-0.33]; cold: 0.33 [0.33-0.33]" in out
    assert "a/c 0.80 a/b" not in out and "a/c 0.80" in out  # at 50 calls: 40 against 50; no arm b here
    # relative targets: half the error at 0 calls (150), reached by the loop at 18.75 calls and by c at 43.75
    targets = bench.relative_targets(merged, 0.5)
    assert targets["F"] == {"hot": 75.0, "cold": 75.0} and targets["E"]["hot"] == 0.5
    reach = bench.reach_table(merged, targets)
    assert reach["a", 0]["hot"]["F"] == pytest.approx(18.75) and reach["c", 0]["cold"]["F"] == pytest.approx(43.75)


def test_route_c_run_further_is_compared_at_the_common_budget_and_reaches_its_target_there(bench, capsys):
    """With ``--c-beyond`` route c has fits past the loop's last budget: the errors are compared at the largest budget
    every arm reached, and the calls to a target come from the whole curve (c reaches F 100 at 75 calls here)."""
    merged = record([0], [150.0, 50.0, 40.0], [150.0, 150.0, 120.0])
    merged["runs"]["c/0"]["points"].append(
        {"calls": 100, "errors": {n: {"E": 1.0, "F": 80.0} for n in ("hot", "cold")}, "max_gamma": 2.0}
    )
    assert bench.reach_table(merged, {"E": 5.0, "F": 100.0})["c", 0]["hot"]["F"] == pytest.approx(75.0)
    bench.at_budget(merged)
    out = capsys.readouterr().out
    assert "(calls {'a': [50], 'c': [50]})" in out and "a/c 0.33" in out  # 40 against 120, not against 80


def test_a_results_file_can_give_only_some_of_its_arms(bench, tmp_path):
    """``PATH::ARMS`` keeps only those arms: a loop of one version and route c of another results file merge."""
    import json

    old, new = record([0], [150.0, 50.0, 40.0], [150.0, 150.0, 120.0]), record([0], [150.0, 40.0, 30.0], [1.0] * 3)
    for name, content in (("old.json", old), ("new.json", new)):
        (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(SystemExit, match="more than one results file"):
        bench.merge([bench.read_results(str(tmp_path / "old.json")), bench.read_results(str(tmp_path / "new.json"))])
    merged = bench.merge(
        [bench.read_results(f"{tmp_path / 'old.json'}::cd"), bench.read_results(f"{tmp_path / 'new.json'}::a")]
    )
    assert sorted(merged["runs"]) == ["a/0", "c/0"]
    assert merged["runs"]["a/0"]["points"][-1]["errors"]["hot"]["F"] == 30.0  # the new loop
    assert merged["runs"]["c/0"]["points"][-1]["errors"]["hot"]["F"] == 120.0  # the old file's route c


def test_results_of_other_settings_or_the_same_run_twice_are_not_merged(bench):
    with pytest.raises(SystemExit, match="other settings"):
        bench.merge([record([0], [1, 1, 1], [1, 1, 1]), record([1], [1, 1, 1], [1, 1, 1], maxiter=30)])
    with pytest.raises(SystemExit, match=r"runs \['a/0', 'c/0'\] are in more than one"):
        bench.merge([record([0], [1, 1, 1], [1, 1, 1]), record([0], [1, 1, 1], [1, 1, 1])])
