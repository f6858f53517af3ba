"""The active-learning loop against random picks from reference MD, at equal oracle calls (EMT copper).

Run (any profile with a localhost computer; the codes are created on it if missing):

    verdi run benchmarks/active_learning.py -- --rounds 3 --per-round 4 --seeds 2

Reference: ASE's EMT for copper stands in for DFT. Reference MD (Langevin, EMT itself) of a 32-atom fcc cell at each
temperature gives the pool the random arm draws from and, with another seed, the held-out sets: "near equilibrium"
(frames of the lowest temperature) and "hot" (frames of the highest). Both arms start from the same few
near-equilibrium labelled cells (`copper_emt`, small rattle).

- loop: `ActiveLearningWorkChain` with the EMT oracle (`ase_oracle`), exploring at the same temperatures, up to
  `--per-round` D-optimal picks per round, fine-tuning every round from the previous potential (`--maxiter` BFGS
  iterations per fit);
- random (per seed): at each of the loop's cumulative oracle-call counts, the initial cells plus that many frames of
  the reference MD (one random order per seed, so each fit's data contain the previous fit's), fine-tuned from the
  previous random potential with the same `--maxiter` per fit. At 0 calls both arms have the same data: the random
  arm starts from the loop's first potential.

Printed: the held-out errors of every fit of both arms (the learning curves; with `--plot`, a PNG of them), the
oracle calls random needs to reach the loop's final force error (linear interpolation on random's curve), and the
stability of MD with each final potential (Langevin at the highest temperature, fixed seed: shortest pair distance,
temperature, largest γ). Errors are the potentials' own (``validate_potential``): energy RMSE in meV/atom and force
RMSE in meV/Å per component, each next to the spread of the held-out reference (energy-per-atom standard deviation,
force RMS).
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
from ase.neighborlist import neighbor_list

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.launch import TRAINING_TOOLS, get_or_create_code, get_or_create_codes
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain
from aiida_mlip_trainer.workflows.functions.potential import validate_potential


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


def calls_to_reach(calls: list[int], values: list[float], target: float) -> float | None:
    """The oracle calls at which the curve ``values`` (at ``calls``) first reaches ``target``, linearly interpolated
    between the two fits around the crossing; None when no fit reaches it."""
    if values[0] <= target:
        return float(calls[0])
    for k in range(1, len(calls)):
        if values[k] <= target:
            c0, c1, v0, v1 = calls[k - 1], calls[k], values[k - 1], values[k]
            return c0 + (c1 - c0) * (v0 - target) / (v0 - v1)
    return None


def md_stability(calculator, temperature: float, picoseconds: float, seed: int, min_distance: float = 1.5,
                 band: tuple[float, float] = (0.5, 2.0), timestep: float = 2.0, check: int = 10) -> dict:  # fmt: skip
    """Langevin MD of the 32-atom fcc copper cell with ``calculator`` at ``temperature`` K for ``picoseconds``;
    every ``check`` steps: the shortest pair distance (Å), the temperature and, for an ACE calculator with an active
    set, the largest γ. Stops at the first check where a pair is closer than ``min_distance`` Å, the temperature
    leaves ``band`` (fractions of ``temperature``; from 0.2 ps on) or the energy is not finite; says why in
    ``stopped``."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2)
    atoms.calc = calculator
    # the ACE part reports γ (a SumCalculator with a baseline holds it first)
    ace = calculator.calcs[0] if hasattr(calculator, "calcs") else calculator
    rng = np.random.default_rng(seed)
    # velocities at twice the target: half goes into potential energy at once (equipartition), so the cell starts
    # near the target; the temperature band is checked after the first 0.2 ps
    MaxwellBoltzmannDistribution(atoms, temperature_K=2 * temperature, rng=rng)
    dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.01, rng=rng)
    steps = int(round(picoseconds * 1000 / timestep))
    record = {"steps": 0, "min_distance": np.inf, "T_min": np.inf, "T_max": 0.0, "max_gamma": None, "stopped": None}
    for _ in dynamics.irun(steps):
        step = dynamics.nsteps
        gamma = ace.results.get("gamma")
        if gamma is not None:
            record["max_gamma"] = max(record["max_gamma"] or 0.0, float(np.max(gamma)))
        if step % check:
            continue
        record["steps"] = step
        distances = neighbor_list("d", atoms, 3.0)
        shortest = float(distances.min()) if len(distances) else 3.0
        temperature_now = float(atoms.get_temperature())
        record["min_distance"] = min(record["min_distance"], shortest)
        settled = step * timestep >= 200
        if settled:
            record["T_min"] = min(record["T_min"], temperature_now)
            record["T_max"] = max(record["T_max"], temperature_now)
        if not np.isfinite(atoms.get_potential_energy()):
            record["stopped"] = "energy not finite"
        elif shortest < min_distance:
            record["stopped"] = f"pair closer than {min_distance} Å"
        elif settled and not band[0] * temperature <= temperature_now <= band[1] * temperature:
            record["stopped"] = f"T {temperature_now:.0f} K outside {band[0]:g}-{band[1]:g}×{temperature:.0f} K"
        if record["stopped"]:
            break
    record["time_ps"] = record["steps"] * timestep / 1000
    return record


def plot_curves(curves: dict, calls: dict, held: dict, path: str) -> None:
    """Held-out force and energy errors against cumulative oracle calls, one row per held-out set, every arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(held), 2, figsize=(10, 3.6 * len(held)), squeeze=False)
    for row, (temperature, label) in enumerate(held.items()):
        for column, (key, unit, spread, spread_name) in enumerate(
            (("F", "meV/Å", "F_rms", "force RMS"), ("E", "meV/atom", "E_spread", "energy std"))
        ):
            axis = axes[row][column]
            random_values = []
            for name, points in curves.items():
                values = [point[temperature][key] for point in points]
                loop = name == "loop"
                if not loop:
                    random_values.append(values)
                axis.plot(calls[name], values, "o-" if loop else ".--", color="tab:blue" if loop else "tab:gray",
                          lw=2 if loop else 1, label="loop (D-optimal from exploration)" if loop else None)  # fmt: skip
            if random_values:
                mean = np.mean(random_values, axis=0)
                axis.plot(calls["loop"], mean, "s-", color="tab:orange", label=f"random, mean of {len(random_values)}")
            reference = curves["loop"][0][temperature][spread]
            axis.set_yscale("log")
            axis.set_xlabel("oracle calls (cumulative)")
            axis.set_ylabel(f"held-out {key} RMSE ({unit})")
            axis.set_title(f"{label}: reference {spread_name} {reference:.3g} {unit}", fontsize=10)
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:  # noqa: PLR0915 - one benchmark, printed in order
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--temperatures", type=float, nargs="+", default=[300.0, 1200.0])
    parser.add_argument("--initial", type=int, default=6, help="near-equilibrium labelled cells to start from")
    parser.add_argument("--rounds", type=int, default=3, help="fits of the loop (max_rounds)")
    parser.add_argument("--per-round", type=int, default=4, help="oracle calls per round (D-optimal picks)")
    parser.add_argument("--maxiter", type=int, default=60, help="BFGS iterations of each fit (both arms)")
    parser.add_argument("--gamma-collect", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=2, help="random draws of the random arm")
    parser.add_argument("--held-out", type=int, default=10, help="held-out frames per temperature")
    parser.add_argument("--md-ps", type=float, default=2.0, help="picoseconds of the stability MD")
    parser.add_argument("--plot", default=None, help="write the learning curves as a PNG here")
    args = parser.parse_args()

    codes = get_or_create_codes([*TRAINING_TOOLS, "explore"])
    oracle = ase_oracle(get_or_create_code("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle"), "emt")
    low, high = min(args.temperatures), max(args.temperatures)
    pool = [frame for t in args.temperatures for frame in reference_md(t, 60, seed=1)]
    held = {t: TrainingSetData(reference_md(t, args.held_out, seed=2)).store() for t in (low, high)}
    test_set = TrainingSetData(held[low].to_atoms() + held[high].to_atoms()).store()
    initial_atoms = copper_emt(args.initial, seed=3, rattle=0.05)
    initial = TrainingSetData(initial_atoms).store()
    fit = {"pace": {"parameters": {"fit": {"maxiter": args.maxiter}}}, "max_iterations": 1}

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
        "fast",
        {"training": {"training": fit}, "selection": {"max_structures": args.per_round}},
        oracle=oracle,
        test_set=test_set,
        explore_count=orm.Int(1),
        max_rounds=orm.Int(args.rounds),
    )
    builder.training.short_range_check = orm.Str("warning")
    results, node = run_get_node(builder)
    if "summary" not in results:
        raise SystemExit(f"ActiveLearningWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    summary = results["summary"].get_dict()
    fits = len(summary["rounds"])
    loop_calls = [row["oracle_calls"] for row in summary["rounds"]]
    loop_potentials = [results["potentials"][f"round_{row['round']}"] for row in summary["rounds"]]
    potentials = {"loop": loop_potentials}
    sizes = {"loop": [row["training_structures"] for row in summary["rounds"]]}

    for seed in range(args.seeds):
        order = np.random.default_rng(100 + seed).permutation(len(pool))
        # at 0 calls the data are the loop's first: its potential is the random arm's too
        chain, counts = [loop_potentials[0]], [len(initial_atoms)]
        for calls in loop_calls[1:]:
            data = TrainingSetData(initial_atoms + [pool[i] for i in sorted(order[:calls])]).store()
            training = TrainingWorkChain.get_builder_from_protocol(
                codes, data, "fast", {"training": fit, "selection": None}, test_set=test_set,
                previous_potential=chain[-1],
            )  # fmt: skip
            training.short_range_check = orm.Str("warning")
            trained, training_node = run_get_node(training)
            if not training_node.is_finished_ok:
                raise SystemExit(f"random fit failed: [{training_node.exit_status}] {training_node.exit_message}")
            chain.append(trained["potential"])
            counts.append(data.num_structures)
        potentials[f"random (seed {seed})"] = chain
        sizes[f"random (seed {seed})"] = counts

    print(f"ActiveLearningWorkChain<{node.pk}>: {fits} fits, {summary['oracle_calls']} oracle calls made; stopped: "
          f"{summary['stop_reason']}")  # fmt: skip
    print("loop per round (held-out set of both temperatures, as the work chain reports it):")
    for row in summary["rounds"]:
        gamma = "-" if row["max_gamma"] is None else f"{row['max_gamma']:.2f}"
        print(f"  round {row['round']}: {row['oracle_calls']} calls, E {row['energy_rmse']:.2f} meV/atom, "
              f"F {row['force_rmse']:.1f} meV/Å, max γ of its exploration {gamma}")  # fmt: skip

    curves = {
        name: [{t: errors(potential, held[t]) for t in (low, high)} for potential in chain]
        for name, chain in potentials.items()
    }
    reference = curves["loop"][0]
    print(
        f"\nheld-out reference: {low:.0f} K: E spread {reference[low]['E_spread']:.2f} meV/atom, F RMS "
        f"{reference[low]['F_rms']:.0f} meV/Å; {high:.0f} K: E spread {reference[high]['E_spread']:.2f} meV/atom, "
        f"F RMS {reference[high]['F_rms']:.0f} meV/Å"
    )
    print("learning curves (every fit of each arm):")
    print(f"{'arm':<16s} {'calls':>5s} {'structs':>7s} | {low:>5.0f} K E    F    | {high:>5.0f} K E    F")
    print(f"{'':<16s} {'':>5s} {'':>7s} | meV/atom  meV/Å | meV/atom  meV/Å")
    for name, points in curves.items():
        for calls, structures, point in zip(loop_calls, sizes[name], points, strict=True):
            print(
                f"{name:<16s} {calls:5d} {structures:7d} | {point[low]['E']:8.2f} {point[low]['F']:6.2f} | "
                f"{point[high]['E']:8.2f} {point[high]['F']:6.2f}"
            )
    random_names = [name for name in curves if name != "loop"]
    if random_names:
        mean = [
            {t: {key: float(np.mean([curves[n][k][t][key] for n in random_names])) for key in ("E", "F")}
             for t in (low, high)}
            for k in range(fits)
        ]  # fmt: skip
        for calls, point in zip(loop_calls, mean, strict=True):
            print(
                f"{'random (mean)':<16s} {calls:5d} {'':>7s} | {point[low]['E']:8.2f} {point[low]['F']:6.2f} | "
                f"{point[high]['E']:8.2f} {point[high]['F']:6.2f}"
            )
        curves_for_ratio = {**{n: curves[n] for n in random_names}, "random (mean)": mean}
        final = loop_calls[-1]
        print(f"\noracle calls to the loop's final force error ({final} calls), on each random curve:")
        for name, points in curves_for_ratio.items():
            parts = []
            for t in (low, high):
                target = curves["loop"][-1][t]["F"]
                values = [point[t]["F"] for point in points]
                needed = calls_to_reach(loop_calls, values, target)
                if needed is not None:
                    parts.append(f"{t:.0f} K (F {target:.2f}): random needs {needed:.1f}, ratio random/loop "
                                 f"{needed / final:.2f}")  # fmt: skip
                else:
                    # random never got there: how many calls the loop needs to reach random's final error instead
                    loop_needed = calls_to_reach(loop_calls, [p[t]["F"] for p in curves["loop"]], values[-1])
                    reverse = "loop does not either" if loop_needed is None else f"loop needs {loop_needed:.1f}"
                    parts.append(f"{t:.0f} K (F {target:.2f}): random not reached in {final} (its best "
                                 f"{min(values):.2f}); to random's final {values[-1]:.2f} the {reverse}")  # fmt: skip
            print(f"  {name:<16s} " + "; ".join(parts))
    if args.plot:
        plot_curves(curves, dict.fromkeys(curves, loop_calls),
                    {low: f"near equilibrium ({low:.0f} K)", high: f"hot ({high:.0f} K)"}, args.plot)  # fmt: skip
        print(f"learning curves plotted: {args.plot}")

    print(f"\nMD stability: Langevin at {high:.0f} K for {args.md_ps:g} ps (2 fs, seed 7) with each final potential; "
          "stops at a pair closer than 1.5 Å or T outside 0.5-2× target")  # fmt: skip
    print(f"{'potential':<16s} {'ran (ps)':>8s} {'min d (Å)':>9s} {'T min-max (K)':>14s} {'max γ':>7s}  verdict")
    finals = {name: (chain[-1].get_calculator(), chain[-1]) for name, chain in potentials.items()}
    finals = {"EMT (reference)": (EMT(), None), **finals}
    for name, (calculator, _) in finals.items():
        record = md_stability(calculator, high, args.md_ps, seed=7)
        gamma = "-" if record["max_gamma"] is None else f"{record['max_gamma']:.2f}"
        verdict = "physical" if record["stopped"] is None else f"UNPHYSICAL: {record['stopped']}"
        print(
            f"{name:<16s} {record['time_ps']:8.2f} {record['min_distance']:9.2f} "
            f"{record['T_min']:6.0f}-{record['T_max']:<7.0f} {gamma:>7s}  {verdict}"
        )


if __name__ == "__main__":
    main()
