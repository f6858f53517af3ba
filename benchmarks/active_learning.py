"""The active-learning loop against random picks from reference MD, at equal oracle calls (EMT copper).

Run (any profile with a localhost computer; the codes are created on it if missing):

    verdi run benchmarks/active_learning.py -- --rounds 3 --per-round 4

Reference: ASE's EMT for copper stands in for DFT. Reference MD (Langevin, EMT itself) of a 32-atom fcc cell at each
temperature gives the pool the random arm draws from and, with another seed, the held-out sets: "near equilibrium"
(frames of the lowest temperature) and "hot" (frames of the highest). Both arms start from the same few
near-equilibrium labelled cells (`copper_emt`, small rattle).

- loop: `ActiveLearningWorkChain` with the EMT oracle (`ase_oracle`), exploring at the same temperatures, up to
  `--per-round` D-optimal picks per round, fine-tuning every round from the previous potential;
- random (per seed): the initial cells plus as many frames of the reference MD, drawn at random, as the loop made
  oracle calls; one `TrainingWorkChain` fit from scratch with the same basis and as many BFGS iterations as the
  loop's fits together.

Errors are the potentials' own (``validate_potential``): energy RMSE in meV/atom and force RMSE in meV/Å per
component, each next to the spread of the held-out reference (energy-per-atom standard deviation, force RMS).
"""

from __future__ import annotations

import argparse

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from ase import units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from aiida_mlip_trainer.calcfunctions import validate_potential
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.launch import get_or_create_code
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain

TOOLS = {
    "pacemaker": "mlip_trainer.pace_train",
    "pace_activeset": "mlip_trainer.pace_activeset",
    "pace_yaml2yace": "core.shell",
    "pace_select": "mlip_trainer.pace_select",
    "explore": "mlip_trainer.explore",
}
EXECUTABLES = {"explore": "mlip-trainer-explore"}


def reference_md(temperature: float, frames: int, seed: int, interval: int = 20, timestep: float = 2.0) -> list:
    """``frames`` EMT-labelled frames of Langevin MD (EMT itself) of a 32-atom fcc copper cell at ``temperature``
    K, one every ``interval`` steps after ``5 * interval`` steps of equilibration."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.01, rng=rng)
    dynamics.run(5 * interval)
    result = []
    for index in range(frames):
        dynamics.run(interval)
        frame = atoms.copy()
        frame.calc = SinglePointCalculator(
            frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress()
        )
        frame.info["name"] = f"Cu_md_{int(temperature)}K_{seed}_{index}"
        result.append(frame)
    return result


def errors(potential, held_out: TrainingSetData) -> dict:
    metrics = validate_potential(potential, held_out)["metrics"].get_dict()
    return {
        "E": metrics["energy_rmse"],
        "F": metrics["force_rmse"],
        "E_spread": metrics["reference"]["energy_per_atom_std"],
        "F_rms": metrics["reference"]["force_component_rms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 1200.0])
    parser.add_argument("--initial", type=int, default=6, help="near-equilibrium labelled cells to start from")
    parser.add_argument("--rounds", type=int, default=3, help="fits of the loop (max_rounds)")
    parser.add_argument("--per-round", type=int, default=4, help="oracle calls per round (D-optimal picks)")
    parser.add_argument("--maxiter", type=int, default=60, help="BFGS iterations of each of the loop's fits")
    parser.add_argument("--gamma-collect", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=2, help="random draws of the random arm")
    parser.add_argument("--held-out", type=int, default=10, help="held-out frames per temperature")
    args = parser.parse_args()

    codes = {name: get_or_create_code(EXECUTABLES.get(name, name), plugin) for name, plugin in TOOLS.items()}
    oracle = ase_oracle(get_or_create_code("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle"), "emt")
    low, high = min(args.temperatures), max(args.temperatures)
    pool = [frame for t in args.temperatures for frame in reference_md(t, 60, seed=1)]
    held = {t: TrainingSetData(reference_md(t, args.held_out, seed=2)).store() for t in (low, high)}
    test_set = TrainingSetData(held[low].to_atoms() + held[high].to_atoms()).store()
    initial_atoms = copper_emt(args.initial, seed=3, rattle=0.05)
    initial = TrainingSetData(initial_atoms).store()
    fit = {"training": {"pace": {"parameters": {"fit": {"maxiter": args.maxiter}}}, "max_iterations": 1}}

    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        initial,
        {
            "temperatures": args.temperatures,
            "steps": 300,
            "timestep": 2.0,
            "sample_interval": 10,
            "gamma_collect": args.gamma_collect,
            "max_frames": 10,
        },  # fmt: skip
        oracle=oracle,
        protocol="fast",
        training_overrides=fit,
        max_structures=args.per_round,
        test_set=test_set,
        explore_count=orm.Int(1),
        max_rounds=orm.Int(args.rounds),
    )
    builder.training.short_range_check = orm.Str("warning")
    results, node = run_get_node(builder)
    if "summary" not in results:
        raise SystemExit(f"ActiveLearningWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    summary = results["summary"].get_dict()
    calls = summary["oracle_calls"]
    fits = len(summary["rounds"])
    rows = [("loop", calls, results["training_set"].num_structures, results["potential"])]

    for seed in range(args.seeds):
        picks = np.random.default_rng(100 + seed).choice(len(pool), size=calls, replace=False)
        data = TrainingSetData(initial_atoms + [pool[i] for i in sorted(picks)]).store()
        random_fit = {"pace": {"parameters": {"fit": {"maxiter": args.maxiter * fits}}}, "max_iterations": 1}
        training = TrainingWorkChain.get_builder_from_protocol(
            codes, data, "fast", {"training": random_fit, "selection": None}, test_set=test_set
        )
        training.short_range_check = orm.Str("warning")
        trained, training_node = run_get_node(training)
        if not training_node.is_finished_ok:
            raise SystemExit(f"random fit failed: [{training_node.exit_status}] {training_node.exit_message}")
        rows.append((f"random (seed {seed})", calls, data.num_structures, trained["potential"]))

    print(f"ActiveLearningWorkChain<{node.pk}>: {fits} fits, {calls} oracle calls; stopped: {summary['stop_reason']}")
    print("learning curve of the loop (held-out set of both temperatures):")
    for row in summary["rounds"]:
        gamma = "-" if row["max_gamma"] is None else f"{row['max_gamma']:.2f}"
        print(f"  round {row['round']}: {row['oracle_calls']} calls, E {row['energy_rmse']:.2f} meV/atom, "
              f"F {row['force_rmse']:.1f} meV/Å, max γ {gamma}")  # fmt: skip
    table = {
        name: (k, n, errors(potential, held[low]), errors(potential, held[high])) for name, k, n, potential in rows
    }
    first_low, first_high = next(iter(table.values()))[2:]
    print(
        f"\nheld-out reference: {low:.0f} K: E spread {first_low['E_spread']:.2f} meV/atom, F RMS "
        f"{first_low['F_rms']:.0f} meV/Å; {high:.0f} K: E spread {first_high['E_spread']:.2f} meV/atom, F RMS "
        f"{first_high['F_rms']:.0f} meV/Å"
    )
    print(f"{'arm':<16s} {'calls':>5s} {'structs':>7s} | {low:>5.0f} K E    F    | {high:>5.0f} K E    F")
    print(f"{'':<16s} {'':>5s} {'':>7s} | meV/atom  meV/Å | meV/atom  meV/Å")
    for name, (k, n, at_low, at_high) in table.items():
        print(
            f"{name:<16s} {k:5d} {n:7d} | {at_low['E']:8.2f} {at_low['F']:6.1f} | {at_high['E']:8.2f} "
            f"{at_high['F']:6.1f}"
        )


if __name__ == "__main__":
    main()
