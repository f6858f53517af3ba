"""Retraining each round of an active-learning loop: fine-tuning from the previous potential against a refit from
scratch, with the iterations of each (EMT copper, a data set grown round by round).

Run (any profile with a localhost computer; the codes are created on it if missing):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/retraining.py \
        --results benchmarks/results/retraining.json

The same command with ``--report-only`` prints the tables again from the results file without fitting. The results
are written after every fit, and a rerun skips the fits already there (the chains of fine-tunes go on from the
potential of the last one recorded).

**Data** (ASE's EMT for copper stands in for DFT; every cell has at most 32 atoms). The loop grows its data by the
frames its exploration extrapolates on, which are those of the conditions its data do not cover yet. So here: round
0 fits ``--initial`` near-equilibrium bulk cells (``copper_emt``); each later round adds ``--per-round`` frames drawn
at random (the seed of the data draw) from Langevin MD with EMT itself of the next condition in turn, its starting
cells made by the plugin's structure generators (``physics.generators``, as an exploration protocol makes them):
``strained`` (the 32-atom cell at ±5 % strain, 600 K), ``vacancy`` (one atom removed, 900 K), ``slab`` (a (100) slab
of 32 atoms with 8 Å of vacuum each side, 600 K) and ``hot`` (bulk at 1200 K). The held-out set (fixed, the same for
every seed) has ``--held-out`` frames of independent MD of each of these conditions and of bulk at 300 K
(``near_eq``); errors are reported per condition next to the spread of its reference data.

**Arms** (every fit is the ``PaceTrainCalculation`` that ``TrainingWorkChain`` runs with the "fast" protocol: its
code, parameters and options from the protocol's builder, no selection, the whole held-out set as its ``test_set``,
pacemaker's ``seed`` = the seed; the work chain's other steps, ``.yace``, active set and short-range check, are the
same whichever way a round retrains, and are left out):

- round 0: one fit from scratch with ``--first-iterations`` BFGS iterations, shared by every chain of fine-tunes;
- ``fine-tune N`` (each N of ``--fine-tune-iterations``): from round 1 on, ``previous_potential`` = the same arm's
  potential of the round before (as the loop does with ``fine_tune: true``), ``maxiter`` N;
- ``scratch M`` (each M of ``--scratch-iterations``): every round from scratch on the round's data, ``maxiter`` M.

**Measured per fit**: the held-out energy RMSE (meV/atom) and force RMSE per component (meV/Å) of each condition
(``validate_potential`` on its frames) and of the whole held-out set (``validate_potential``, as the work chain
validates, with its ``learned`` flag: False when an error is at least half the spread of the data), the BFGS
iterations pacemaker actually ran (its ``metrics.txt``), and two wall times: pacemaker's own (its ``log.txt``: the
fit with TensorFlow's start) and the job's (input files, job, retrieval, parsing). Printed per round: the median over
the seeds of each arm, and ratios against ``scratch`` with the first of ``--scratch-iterations`` (what the protocol
uses). Seeds alternate the order of the arms, so that a busy spell of the machine does not fall on one arm only.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CONDITIONS = {
    # name: (generator of the starting cells from the 32-atom fcc cell, or None for the cell itself; temperature K)
    "near_eq": (None, 300.0),
    "strained": ({"type": "strain", "strains": [-0.05, 0.05]}, 600.0),
    "vacancy": ({"type": "vacancy", "count": 1, "samples": 2, "seed": 1}, 900.0),
    "slab": ("slab", 600.0),
    "hot": (None, 1200.0),
}
# The conditions the rounds add, in turn (round k adds the k-th); near_eq is the initial data's.
GROWTH = ("strained", "vacancy", "slab", "hot")


def starting_cells(condition: str) -> list:
    """The starting cells of a condition's MD (each at most 32 atoms), made by the plugin's generators."""
    from ase.build import bulk

    from aiida_mlip_trainer.physics.generators import generate

    cell = bulk("Cu", "fcc", a=3.61, cubic=True)
    cell.info["name"] = "Cu_fcc"
    spec = CONDITIONS[condition][0]
    if spec is None:
        return [cell.repeat(2)]
    if spec == "slab":  # (100) of the conventional cell, 4 cells thick (8 planes), doubled along x: 32 atoms
        (slab,) = generate([cell], {"type": "slab", "miller": [1, 0, 0], "layers": 4, "vacuum": 8.0})
        return [slab.repeat((2, 1, 1))]
    supercell = cell.repeat(2)
    supercell.info["name"] = "Cu_fcc_2x2x2"
    return generate([supercell], spec)


def md_frames(condition: str, frames: int, seed: int, interval: int = 20, timestep: float = 2.0) -> list:
    """``frames`` EMT-labelled frames of Langevin MD (EMT itself) of ``condition``, shared out over its starting
    cells, one every ``interval`` steps after ``5 * interval`` steps of equilibration."""
    from ase import units
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    temperature = CONDITIONS[condition][1]
    starts = starting_cells(condition)
    result = []
    for index, start in enumerate(starts):
        count = frames // len(starts) + (1 if index < frames % len(starts) else 0)
        atoms = start.copy()
        atoms.calc = EMT()
        rng = np.random.default_rng([seed, index])
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
        dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.01, rng=rng)
        dynamics.run(5 * interval)
        for k in range(count):
            dynamics.run(interval)
            frame = atoms.copy()
            frame.calc = SinglePointCalculator(
                frame, energy=atoms.get_potential_energy(), forces=atoms.get_forces(), stress=atoms.get_stress()
            )
            frame.info["name"] = f"Cu_{condition}_{seed}_{index}_{k}"
            result.append(frame)
    return result


def round_data(seed: int, rounds: int, initial: int, per_round: int, pool: int) -> list[list]:
    """The training structures of every round for one seed: the initial cells, then each round's new frames drawn at
    random (seeded) from ``pool`` MD frames of its condition. Each round's data contain the round before's."""
    from aiida_mlip_trainer.physics.reference_data import copper_emt

    data = [copper_emt(initial, seed=100 + seed, strain=0.01, rattle=0.05)]
    rng = np.random.default_rng(200 + seed)
    for k in range(1, rounds):
        frames = md_frames(GROWTH[(k - 1) % len(GROWTH)], pool, seed=300 + 10 * seed + k)
        picked = sorted(rng.choice(len(frames), size=min(per_round, len(frames)), replace=False))
        data.append(data[-1] + [frames[i] for i in picked])
    return data


def held_out_sets(frames: int, rounds: int) -> dict:
    """The fixed held-out frames of each condition the rounds reach (and near_eq), stored."""
    from aiida_mlip_trainer.data import TrainingSetData

    names = ["near_eq", *GROWTH[: max(rounds - 1, 0)]]
    return {name: TrainingSetData(md_frames(name, frames, seed=9000 + i)).store() for i, name in enumerate(names)}


def fit(codes, data, test_set, maxiter: int, seed: int, previous=None) -> dict:
    """One fit: the ``PaceTrainCalculation`` a "fast" ``TrainingWorkChain`` runs (its code, parameters and options,
    from the protocol; ``previous_potential`` when fine-tuning), then ``validate_potential`` on the whole held-out
    set (the work chain's validation, with its ``learned`` flag). The work chain's other steps (``.yace``, active
    set, short-range check) are the same for both ways of retraining and are left out."""
    from aiida.engine import run_get_node

    from aiida_mlip_trainer.calculations import PaceTrainCalculation
    from aiida_mlip_trainer.workflows import TrainingWorkChain
    from aiida_mlip_trainer.workflows.functions.potential import validate_potential

    overrides = {"training": {"pace": {"parameters": {"fit": {"maxiter": maxiter}, "seed": seed}}}, "selection": None}
    pace = TrainingWorkChain.get_builder_from_protocol(codes, data, "fast", overrides, test_set=test_set).training.pace
    inputs = {
        "code": pace.code,
        "parameters": pace.parameters,
        "training_set": data,
        "test_set": test_set,
        "metadata": {"options": dict(pace.metadata.options)},
    }
    if previous is not None:
        inputs["previous_potential"] = previous
    start = time.perf_counter()
    results, node = run_get_node(PaceTrainCalculation, **inputs)
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f"PaceTrainCalculation<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    training = results["metrics"].get_dict()
    metrics = validate_potential(results["potential"], test_set)["metrics"].get_dict()
    return {
        "calculation": node.pk,
        "potential": results["potential"].pk,
        "structures": data.num_structures,
        "maxiter": maxiter,
        "iterations": training.get("iterations"),
        "initial_loss": training.get("initial_loss"),
        "final_loss": training.get("final_loss"),
        "pacemaker_s": training.get("wall_time"),
        "job_s": wall,
        "learned": metrics.get("learned"),
        "all": {"E": metrics["energy_rmse"], "F": metrics["force_rmse"]},
    }


def condition_errors(potential, held: dict) -> dict:
    """Held-out errors of one potential per condition, next to that condition's spread (validate_potential)."""
    from aiida_mlip_trainer.workflows.functions.potential import validate_potential

    errors = {}
    for name, test_set in held.items():
        metrics = validate_potential(potential, test_set)["metrics"].get_dict()
        errors[name] = {
            "E": metrics["energy_rmse"],
            "F": metrics["force_rmse"],
            "E_spread": metrics["reference"]["energy_per_atom_std"],
            "F_rms": metrics["reference"]["force_component_rms"],
            "learned": metrics.get("learned"),
        }
    return errors


def arms(args) -> list[str]:
    return [f"fine-tune {n}" for n in args.fine_tune_iterations] + [f"scratch {m}" for m in args.scratch_iterations]


def run(args, results: dict, save) -> None:
    """Every fit not yet in ``results``, round by round (every seed of a round before the next round)."""
    from aiida import orm

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.launch import TRAINING_TOOLS, get_or_create_codes

    codes = get_or_create_codes(TRAINING_TOOLS)
    if "held_out" not in results:
        held = held_out_sets(args.held_out, args.rounds)
        results["held_out"] = {name: node.pk for name, node in held.items()}
        save()
    held = {name: orm.load_node(pk) for name, pk in results["held_out"].items()}
    test_set = TrainingSetData([atoms for node in held.values() for atoms in node.to_atoms()]).store()
    data = {seed: round_data(seed, args.rounds, args.initial, args.per_round, args.pool) for seed in args.seeds}
    fits = results.setdefault("fits", {})
    for k in range(args.rounds):
        for seed in args.seeds:
            stored = TrainingSetData(data[seed][k]).store()
            names = ["scratch first"] if k == 0 else arms(args)
            if seed % 2:
                names = names[::-1]  # alternate the order of the arms
            for name in names:
                key = f"seed {seed}/round {k}/{name}"
                if key in fits:
                    continue
                kind, _, value = name.partition(" ")
                previous = None
                if kind == "fine-tune":
                    before = "scratch first" if k == 1 else name
                    previous = orm.load_node(fits[f"seed {seed}/round {k - 1}/{before}"]["potential"])
                maxiter = args.first_iterations if value == "first" else int(value)
                record = fit(codes, stored, test_set, maxiter, seed, previous)
                record["conditions"] = condition_errors(orm.load_node(record["potential"]), held)
                fits[key] = record
                save()
                print(
                    f"{time.strftime('%H:%M:%S')} {key}: {record['iterations']} iterations, "
                    f"{record['pacemaker_s']:.0f} s, E {record['all']['E']:.2f} meV/atom, "
                    f"F {record['all']['F']:.1f} meV/Å, learned {record['learned']}",
                    flush=True,
                )


def median(values: list) -> float:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else float("nan")


def whole_spread(results: dict) -> str:
    """The spread of the whole held-out set (what `learned` is judged against), from its stored frames."""
    from aiida import orm

    frames = [atoms for pk in results["held_out"].values() for atoms in orm.load_node(pk).to_atoms()]
    energies = np.array([atoms.get_potential_energy() / len(atoms) for atoms in frames])
    forces = np.concatenate([atoms.get_forces() for atoms in frames])
    return f"; all of them: E {1000 * energies.std():.2f} meV/atom, F {1000 * np.sqrt(np.mean(forces**2)):.0f} meV/Å"


def report(results: dict) -> None:  # noqa: PLR0912 - one table per round, printed in order
    """The tables: per round and arm, the medians over the seeds, and ratios against the protocol's refit."""
    fits = results.get("fits", {})
    if not fits:
        print("no fits recorded yet")
        return
    settings = results["settings"]
    reference_arm = f"scratch {settings['scratch_iterations'][0]}"
    rounds = sorted({int(key.split("/")[1].split()[1]) for key in fits})
    spreads = next(iter(fits.values()))["conditions"]
    conditions = list(spreads)
    print(f"\nsettings: {json.dumps(settings)}")
    print(
        "held-out reference spread: "
        + ", ".join(
            f"{c} E {spreads[c]['E_spread']:.2f} meV/atom, F {spreads[c]['F_rms']:.0f} meV/Å" for c in conditions
        )
        + whole_spread(results)
    )
    header = (
        f"{'round':>5s} {'arm':<14s} {'seeds':>5s} {'structs':>7s} {'iters':>5s} {'pm s':>5s} {'job s':>5s} "
        f"{'learned':>7s} | {'all E':>6s} {'all F':>6s} | "
        + " | ".join(f"{c[:8]:>8s} E      F" for c in conditions)
        + " | E ratio F ratio pm s ratio"
    )
    print(header)
    for k in rounds:
        names = sorted(
            {key.split("/")[2] for key in fits if key.split("/")[1] == f"round {k}"},
            key=lambda n: (n.split()[0] != "fine-tune", n.split()[1] != "first" and int(n.split()[1])),
        )
        rows = {}
        for name in names:
            records = [record for key, record in fits.items() if key.split("/")[1:] == [f"round {k}", name]]
            rows[name] = {
                "seeds": len(records),
                "structures": median([r["structures"] for r in records]),
                "iterations": median([r["iterations"] for r in records]),
                "pacemaker_s": median([r["pacemaker_s"] for r in records]),
                "job_s": median([r["job_s"] for r in records]),
                "learned": sum(r["learned"] is True for r in records),
                "E": median([r["all"]["E"] for r in records]),
                "F": median([r["all"]["F"] for r in records]),
                "conditions": {
                    c: {q: median([r["conditions"][c][q] for r in records]) for q in ("E", "F")} for c in conditions
                },
            }
        reference = rows.get(reference_arm)
        for name, row in rows.items():
            ratio = ""
            if reference is not None and name != reference_arm:
                ratio = (
                    f" | {row['E'] / reference['E']:7.2f} {row['F'] / reference['F']:7.2f} "
                    f"{row['pacemaker_s'] / reference['pacemaker_s']:10.2f}"
                )
            elif name == reference_arm:
                ratio = " |    1.00    1.00       1.00"
            print(
                f"{k:5d} {name:<14s} {row['seeds']:5d} {row['structures']:7.0f} {row['iterations']:5.0f} "
                f"{row['pacemaker_s']:5.0f} {row['job_s']:5.0f} {row['learned']:>3d}/{row['seeds']:<3d} | "
                f"{row['E']:6.2f} {row['F']:6.1f} | "
                + " | ".join(f"{row['conditions'][c]['E']:6.2f} {row['conditions'][c]['F']:6.1f}" for c in conditions)
                + ratio
            )
        results.setdefault("medians", {})[f"round {k}"] = rows
    print(
        f"(medians over the seeds; E and F ratio: the arm's median held-out errors (all conditions) over "
        f"{reference_arm}'s; pm s ratio: "
        "the same for pacemaker's wall time; learned: fits with both held-out errors below half the spread)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="fits of the loop: round 0 and the rounds that add data")
    parser.add_argument("--initial", type=int, default=8, help="near-equilibrium cells of round 0")
    parser.add_argument("--per-round", type=int, default=8, help="frames each later round adds")
    parser.add_argument("--pool", type=int, default=24, help="MD frames of a round's condition to draw them from")
    parser.add_argument("--held-out", type=int, default=8, help="held-out frames per condition")
    parser.add_argument("--first-iterations", type=int, default=100, help="maxiter of round 0 (from scratch)")
    parser.add_argument("--fine-tune-iterations", type=int, nargs="+", default=[30, 60, 100])
    parser.add_argument(
        "--scratch-iterations",
        type=int,
        nargs="+",
        default=[100, 300],
        help="the first is the reference of the ratios (the 'fast' protocol's maxiter is 100)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the fit and the data draw")
    parser.add_argument("--results", default=str(HERE / "results" / "retraining.json"))
    parser.add_argument("--report-only", action="store_true", help="print the tables from --results, fit nothing")
    args = parser.parse_args()

    path = pathlib.Path(args.results)
    results = json.loads(path.read_text()) if path.exists() else {}
    settings = {key: value for key, value in vars(args).items() if key not in ("results", "report_only")}
    if not args.report_only:
        if results.get("settings", settings) != settings:
            raise SystemExit(f"{path} holds results of other settings ({results['settings']}): give another --results")
        results["settings"] = settings
        path.parent.mkdir(parents=True, exist_ok=True)

        def save():
            path.write_text(json.dumps(results, indent=1))

        run(args, results, save)
    report(results)


if __name__ == "__main__":
    main()
