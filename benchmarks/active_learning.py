"""The active-learning loop against three other routes to a potential, at equal oracle calls (EMT copper and Cu-Ni).

Run (any profile with a localhost computer; the codes are created on it if missing):

    verdi run benchmarks/active_learning.py -- --system copper --json benchmarks/results/al_copper.json

and print the tables again from the results alone (no AiiDA needed), with the plot:

    python benchmarks/active_learning.py --report-only --json benchmarks/results/al_copper.json --plot out.png

ASE's EMT stands in for DFT. **Held-out target** (what a user wants the potential for, never seen by any arm):
Langevin MD (EMT itself) of small cells under each condition of :func:`target_conditions`: the bulk at 300, 900 and
1500 K, the bulk strained to about ±5 GPa at 600 K, a vacancy cell at 900 K and a (111) slab at 600 K (for the alloy
also an equiatomic cell at 900 K), ``--target-frames`` frames each. Every arm starts from the same ``--initial``
near-equilibrium labelled cells (not counted as calls) and fits the same way: the "fast" basis, ``--maxiter`` BFGS
iterations per fit, every fit after the first fine-tuned from the arm's previous potential, one fit at each
cumulative budget (``--batch`` calls per round, ``--rounds`` rounds). Arms, ``--seeds`` seeds each:

- **a, loop**: ``ActiveLearningWorkChain`` with its defaults and the system's exploration protocol (``copper`` or
  ``cuni``, from one perfect cell), the EMT oracle (``ase_oracle``), ``--batch`` as every round's selection budget;
  seed ``s`` is the exploration's seed;
- **b, random from the loop's candidates**: at each budget, that many frames drawn at random (one order per seed)
  from every candidate of loop seed ``s``'s explorations pooled, labelled by EMT. Drawn from the pooled candidates
  rather than by a second loop with random selection: the same exploration, without paying for it again; the pool
  holds later rounds' candidates too, found by better potentials, so this is if anything generous to random;
- **c, reference MD with every step counted**: MD (EMT) of the target's conditions, one trajectory per condition,
  calls assigned round-robin, every step a training frame: what a user pays for reference MD with DFT;
  ``--c-beyond`` adds fits of this arm at larger budgets, to find where it reaches the targets;
- **d, random frames from long reference MD, steps not counted**: frames every 10 steps of long MD of the target's
  conditions, drawn at random: an optimistic bound (exact test-distribution data for free).

Arms b, c and d fine-tune from loop seed ``s``'s first potential (the initial cells only, as every arm's). Results go
to ``--json`` after every fit (``--resume`` goes on from it). The arms of one seed may run in parallel processes on
one profile: ``--arms a b`` for the loop and arm b, ``--arms c --first-potential PK`` (the loop's round-0 potential)
and ``--arms d --first-potential PK`` beside it, each with its own ``--json``; ``--loop`` names the loop's results
file for arm b run apart from it. The report merges any number of results files.

Printed: the errors of every fit per condition (energy RMSE meV/atom, force RMSE meV/Å per component, each next to
the condition's spread), the calls each arm needs to reach the fixed targets (``--target-e``, ``--target-f``:
linear interpolation between budgets), their ratios and spread over seeds, MD stability of each final potential at
the hottest condition and its largest γ on the target.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time
import warnings

import ase.io
import numpy as np
from ase import units
from ase.build import bulk, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

from aiida_mlip_trainer.physics.properties import md_stability

warnings.filterwarnings("ignore", category=FutureWarning, module="ase")

ARMS = {
    "a": "loop (D-optimal)",
    "b": "random from the loop's candidates",
    "c": "reference MD, steps counted",
    "d": "random from long MD, not counted",
}
LATTICE = 3.61  # Å, EMT copper
BULK_MODULUS = 140.0  # GPa, about EMT copper's: the strain of ±5 GPa


# ---------------------------------------------------------------------------------------------------- structures
def alloy(atoms, fraction: float, seed: int):
    """``atoms`` with ``fraction`` of its sites Ni, drawn at random (seeded)."""
    atoms = atoms.copy()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(atoms), max(1, round(fraction * len(atoms))), replace=False)
    symbols = atoms.get_chemical_symbols()
    for index in chosen:
        symbols[index] = "Ni"
    atoms.set_chemical_symbols(symbols)
    return atoms


def cell(system: str, seed: int = 0, fraction: float = 0.25):
    """The 32-atom fcc cell of ``system``: copper, or Cu-Ni with ``fraction`` Ni at random sites."""
    atoms = bulk("Cu", "fcc", a=LATTICE, cubic=True).repeat(2)
    return atoms if system == "copper" else alloy(atoms, fraction, seed)


def at_pressure(atoms, gigapascal: float, iterations: int = 6):
    """``atoms`` scaled isotropically until EMT's pressure (no thermal part) is ``gigapascal``."""
    atoms = atoms.copy()
    for _ in range(iterations):
        atoms.calc = EMT()
        pressure = -atoms.get_stress()[:3].mean() / units.GPa
        atoms.set_cell(atoms.cell * (1 + (pressure - gigapascal) / (3 * BULK_MODULUS)), scale_atoms=True)
    atoms.calc = None
    return atoms


def target_conditions(system: str) -> dict:
    """Name -> (starting cell, temperature K) of the held-out target, each cell at EMT's zero pressure but for the
    strained ones: bulk 300/900/1500 K, the bulk at +5 and -5 GPa (at 0 K) at 600 K, a vacancy cell at 900 K, a (111)
    slab (2x2, 5 layers, 8 Å vacuum; 20 atoms) at 600 K; for the alloy also an equiatomic cell at 900 K."""
    base = at_pressure(cell(system, seed=11), 0.0)
    conditions = {f"bulk_{t}K": (base, t) for t in (300, 900, 1500)}
    for gigapascal in (5.0, -5.0):
        conditions[f"p{gigapascal:+.0f}GPa_600K"] = (at_pressure(base, gigapascal), 600)
    vacancy = base.copy()
    del vacancy[0]
    conditions["vacancy_900K"] = (vacancy, 900)
    slab = fcc111("Cu", (2, 2, 5), a=base.cell[0, 0] / 2, vacuum=8.0, periodic=True)
    conditions["slab111_600K"] = (slab if system == "copper" else alloy(slab, 0.25, 12), 600)
    if system != "copper":
        conditions["ni50_900K"] = (at_pressure(cell(system, seed=13, fraction=0.5), 0.0), 900)
    return conditions


def labelled(atoms, name: str):
    """A copy of ``atoms`` with EMT's energy, forces and stress attached."""
    frame = atoms.copy()
    frame.calc = EMT()
    results = {"energy": frame.get_potential_energy(), "forces": frame.get_forces(), "stress": frame.get_stress()}
    frame.calc = SinglePointCalculator(frame, **results)
    frame.info = {"name": name}
    return frame


def reference_md(start, temperature: float, frames: int, seed: int, interval: int, name: str,
                 equilibrate: int = 0, timestep: float = 2.0) -> list:  # fmt: skip
    """``frames`` EMT-labelled frames of Langevin MD (EMT itself) from ``start`` at ``temperature`` K, one every
    ``interval`` steps after ``equilibrate`` steps (interval 1, no equilibration: every step, as a user labels MD)."""
    atoms = start.copy()
    atoms.calc = EMT()
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    dynamics = Langevin(atoms, timestep * units.fs, temperature_K=temperature, friction=0.02, rng=rng)
    if equilibrate:
        dynamics.run(equilibrate)
    result = []
    for index in range(frames):
        dynamics.run(interval)
        result.append(labelled(atoms, f"{name}_{seed}_{index}"))
    return result


def initial_cells(system: str, count: int, seed: int = 3) -> list:
    """``count`` near-equilibrium labelled cells: isotropic strain up to 2 %, rattle 0.05 Å (alloy: 20-35 % Ni)."""
    rng = np.random.default_rng(seed)
    cells = []
    for index in range(count):
        fraction = float(rng.uniform(0.2, 0.35))
        atoms = cell(system, seed=100 + index, fraction=fraction)
        atoms.set_cell(atoms.cell * (1 + rng.uniform(-0.02, 0.02)), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(2**31)))
        cells.append(labelled(atoms, f"{system}_initial_{index}"))
    return cells


# ------------------------------------------------------------------------------------------------------ metrics
def evaluate(calculator, target: dict) -> dict:
    """Per condition the energy RMSE (meV/atom) and force RMSE (meV/Å per component) of ``calculator`` on the target
    frames; and its largest extrapolation grade γ over all of them (None without an active set)."""
    ace = calculator.calcs[0] if hasattr(calculator, "calcs") else calculator
    errors, gammas = {}, []
    for name, frames in target.items():
        de, df = [], []
        for frame in frames:
            atoms = frame.copy()
            atoms.calc = calculator
            de.append((atoms.get_potential_energy() - frame.get_potential_energy()) / len(atoms))
            df.append((atoms.get_forces() - frame.get_forces()).ravel())
            gamma = ace.results.get("gamma")
            if gamma is not None:
                gammas.append(float(np.max(gamma)))
        errors[name] = {
            "E": 1000 * float(np.sqrt(np.mean(np.square(de)))),
            "F": 1000 * float(np.sqrt(np.mean(np.square(np.concatenate(df))))),
        }
    return {"errors": errors, "max_gamma": max(gammas) if gammas else None}


def spread(target: dict) -> dict:
    """Per condition: the standard deviation of the energy per atom (meV/atom), the force RMS (meV/Å) and the mean
    pressure of the labels (GPa; EMT's stress, without the kinetic part)."""
    return {
        name: {
            "E_std": 1000 * float(np.std([f.get_potential_energy() / len(f) for f in frames])),
            "F_rms": 1000 * float(np.sqrt(np.mean(np.concatenate([f.get_forces().ravel() for f in frames]) ** 2))),
            "P": float(np.mean([-f.get_stress()[:3].mean() / units.GPa for f in frames])),
            "frames": len(frames),
        }
        for name, frames in target.items()
    }


def calls_to_reach(calls: list, values: list, target: float) -> float | None:
    """The oracle calls at which the curve ``values`` (at ``calls``) first reaches ``target``, linearly interpolated
    between the two fits around the crossing; None when no fit reaches it."""
    if values[0] <= target:
        return float(calls[0])
    for k in range(1, len(calls)):
        if values[k] <= target:
            c0, c1, v0, v1 = calls[k - 1], calls[k], values[k - 1], values[k]
            return c0 + (c1 - c0) * (v0 - target) / (v0 - v1)
    return None


# ----------------------------------------------------------------------------------------------------- the arms
def route_c_frames(conditions: dict, calls: int, seed: int) -> list:
    """Arm c: ``calls`` frames of reference MD, every step one call, assigned round-robin to one trajectory per
    condition (the first ``n`` calls of a seed are a prefix of the first ``n + 1``)."""
    names = list(conditions)
    per = {name: -(-calls // len(names)) for name in names}
    runs = {
        name: reference_md(start, t, per[name], seed=1000 * seed + k, interval=1, name=f"c_{name}")
        for k, (name, (start, t)) in enumerate(conditions.items())
    }
    return [runs[names[i % len(names)]][i // len(names)] for i in range(calls)]


def route_d_pool(conditions: dict, per_condition: int, seed: int) -> list:
    """Arm d's pool: ``per_condition`` frames of long reference MD per condition, one every 10 steps."""
    return [
        frame
        for k, (name, (start, t)) in enumerate(conditions.items())
        for frame in reference_md(
            start, t, per_condition, seed=2000 * seed + k + 7, interval=10, equilibrate=50, name=f"d_{name}"
        )  # fmt: skip
    ]


def budgets(batch: int, rounds: int) -> list[int]:
    """The cumulative oracle calls of every fit after the first: batch, 2 batch, ..., rounds x batch."""
    return [batch * k for k in range(1, rounds + 1)]


class Bench:
    """The run of one system: AiiDA codes, the fixed sets, the JSON record (written after every fit)."""

    def __init__(self, args):
        from aiida import orm

        from aiida_mlip_trainer.data import TrainingSetData
        from aiida_mlip_trainer.launch import TRAINING_TOOLS, get_or_create_code, get_or_create_codes
        from aiida_mlip_trainer.oracles import ase_oracle

        self.args, self.orm, self.TrainingSetData = args, orm, TrainingSetData
        self.codes = get_or_create_codes([*TRAINING_TOOLS, "explore"])
        self.oracle = ase_oracle(get_or_create_code("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle"), "emt")
        self.conditions = target_conditions(args.system)
        started = time.time()
        # the held-out target and the fits' own held-out set (their `metrics`, the loop's learning curve: other MD),
        # made once and kept beside the results: parallel runs of other seeds read them
        cache = pathlib.Path(args.json).with_name(f"target_{args.system}_{args.target_frames}.extxyz")
        if not cache.exists():
            frames = [
                frame
                for k, (name, (start, t)) in enumerate(self.conditions.items())
                for frame in reference_md(
                    start, t, args.target_frames, seed=1 + k, interval=10, equilibrate=50, name=f"target_{name}"
                )  # fmt: skip
            ]
            frames += [reference_md(s, t, 1, seed=500 + k, interval=10, equilibrate=50, name=f"monitor_{n}")[0]
                       for k, (n, (s, t)) in enumerate(self.conditions.items())]  # fmt: skip
            ase.io.write(cache.with_suffix(".tmp.extxyz"), frames)
            cache.with_suffix(".tmp.extxyz").rename(cache)
        frames = ase.io.read(cache, ":")
        self.target = {
            name: [f for f in frames if f.info["name"].startswith(f"target_{name}_")] for name in self.conditions
        }
        self.monitor = TrainingSetData([f for f in frames if f.info["name"].startswith("monitor_")]).store()
        self.initial = initial_cells(args.system, args.initial)
        print(f"target and initial cells made in {time.time() - started:.0f} s")
        self.path = pathlib.Path(args.json)
        record = json.loads(self.path.read_text()) if args.resume and self.path.exists() else {}
        self.record = record or {"settings": vars(args), "spread": spread(self.target), "runs": {}}
        if args.loop:  # the loop's runs of another results file: arms b-d of its seeds run here, in parallel
            other = json.loads(pathlib.Path(args.loop).read_text())["runs"]
            self.record["loops"] = {key: run for key, run in other.items() if key.startswith("a/") and run.get("done")}
        self.save()

    def loop_run(self, seed: int) -> dict:
        """Loop seed ``seed``'s record, from this results file or from ``--loop``'s."""
        key = f"a/{seed}"
        run = self.record["runs"].get(key) or self.record.get("loops", {}).get(key)
        if run is None or not run.get("done"):
            raise SystemExit(f"no finished loop {key}: run arm a first, or give its results file with --loop")
        return run

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.record, indent=1))

    def fit_settings(self):
        return {"pace": {"parameters": {"fit": {"maxiter": self.args.maxiter}}}, "max_iterations": 1}

    def point(self, key: str, calls: int, potential, structures: int, seconds: float, **extra):
        measured = evaluate(potential.get_calculator(), self.target)
        run = self.record["runs"].setdefault(key, {"points": []})
        run["points"].append({"calls": calls, "structures": structures, "potential": potential.pk,
                              "seconds": round(seconds, 1), **measured, **extra})  # fmt: skip
        self.save()
        errors = measured["errors"]
        worst = max(errors, key=lambda n: errors[n]["F"])
        print(f"  {key} {calls:4d} calls: F median {np.median([e['F'] for e in errors.values()]):7.1f} meV/Å, "
              f"worst {worst} {errors[worst]['F']:.1f}; {seconds:.0f} s")  # fmt: skip

    def loop(self, seed: int):
        """Arm a, one seed: the real work chain, its rounds' potentials evaluated on the target."""
        from aiida.engine import run_get_node

        from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain

        key = f"a/{seed}"
        if key in self.record["runs"] and self.record["runs"][key].get("done"):
            return
        self.record["runs"].pop(key, None)
        orm, started = self.orm, time.time()
        start = cell(self.args.system, seed=21)
        start.info["name"] = f"{self.args.system}_explore_start"
        builder = ActiveLearningWorkChain.get_builder_from_protocol(
            self.codes,
            self.TrainingSetData(self.initial).store(),
            {"seed": 1000 * seed},
            "fast",
            {
                "training": {"training": self.fit_settings()},
                "selection": {"max_structures": self.args.batch},
                "labeling": {"max_concurrent": 8},
            },
            exploration_protocol="copper" if self.args.system == "copper" else "cuni",
            oracle=self.oracle,
            test_set=self.monitor,
            explore_from=self.TrainingSetData([start], labelled=False).store(),
            max_rounds=orm.Int(self.args.rounds + 1),
        )
        builder.training.short_range_check = orm.Str("warning")
        results, node = run_get_node(builder)
        seconds = time.time() - started
        if "summary" not in results:
            raise SystemExit(f"ActiveLearningWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
        summary = results["summary"].get_dict()
        rows = summary["rounds"]
        for row in rows:
            potential = results["potentials"][f"round_{row['round']}"]
            self.point(key, row["oracle_calls"], potential, row["training_structures"], seconds / len(rows),
                       exploration_max_gamma=row["max_gamma"])  # fmt: skip
        run = self.record["runs"][key]
        run.update(workchain=node.pk, stop_reason=summary["stop_reason"], seconds=round(seconds), done=True)
        self.save()
        print(f"  {key}: ActiveLearningWorkChain<{node.pk}>, {summary['oracle_calls']} calls, "
              f"{summary['stop_reason']}, {seconds:.0f} s")  # fmt: skip

    def candidates(self, seed: int) -> list:
        """Every candidate of loop seed ``seed``'s explorations, in round order."""
        from aiida_mlip_trainer.calculations.explore import ExplorationCalculation

        node = self.orm.load_node(self.loop_run(seed)["workchain"])
        explorations = sorted(
            (n for n in node.called_descendants if n.process_class is ExplorationCalculation and n.is_finished_ok),
            key=lambda n: n.pk,
        )
        return [atoms for n in explorations if "candidates" in n.outputs for atoms in n.outputs.candidates.to_atoms()]

    def chain(self, arm: str, seed: int, calls: int, frames_at) -> None:
        """Arms b, c, d, one seed, one budget: a fit on the initial cells plus ``frames_at(calls)``, fine-tuned from
        the arm's previous fit (the first from loop seed ``seed``'s first potential)."""
        from aiida.engine import run_get_node

        from aiida_mlip_trainer.workflows import TrainingWorkChain

        key = f"{arm}/{seed}"
        run = self.record["runs"].setdefault(key, {"points": []})
        if not run["points"] and self.args.first_potential:  # the loop's first fit, before the loop is done
            self.point(key, 0, self.orm.load_node(self.args.first_potential), len(self.initial), 0.0)
        elif not run["points"]:
            run["points"].append({**self.loop_run(seed)["points"][0], "seconds": 0.0})
        if any(p["calls"] == calls for p in run["points"]):
            return
        previous = self.orm.load_node(run["points"][-1]["potential"])
        started = time.time()
        data = self.TrainingSetData(self.initial + frames_at(calls)).store()
        builder = TrainingWorkChain.get_builder_from_protocol(
            self.codes, data, "fast", {"training": self.fit_settings(), "selection": None},
            test_set=self.monitor, previous_potential=previous,
        )  # fmt: skip
        if previous.baseline is not None:
            builder.physics_baseline = self.orm.Dict(previous.baseline)
        builder.short_range_check = self.orm.Str("warning")
        trained, node = run_get_node(builder)
        if not node.is_finished_ok:
            raise SystemExit(f"{key} fit at {calls} calls failed: [{node.exit_status}] {node.exit_message}")
        self.point(key, calls, trained["potential"], data.num_structures, time.time() - started)
        run.pop("md", None)  # measured for the arm's last potential, which this fit replaces

    def run(self):
        total = self.args.batch * self.args.rounds
        for seed in self.args.seeds:
            if "a" in self.args.arms:
                self.loop(seed)
            arms = {}
            if "b" in self.args.arms:
                pool = self.candidates(seed)
                order = np.random.default_rng(300 + seed).permutation(len(pool))
                labels = {}

                def drawn(calls, pool=pool, order=order, labels=labels, seed=seed):
                    for i in order[:calls]:
                        if i not in labels:
                            labels[i] = labelled(pool[i], f"b_{seed}_{i}")
                    return [labels[i] for i in order[:calls]]

                self.record["runs"].setdefault(f"b/{seed}", {"points": []})["pool"] = len(pool)
                arms["b"] = drawn
            if "c" in self.args.arms:
                c_frames = route_c_frames(self.conditions, max([total, *self.args.c_beyond]), seed)
                arms["c"] = lambda calls, frames=c_frames: frames[:calls]
            if "d" in self.args.arms:
                d_pool = route_d_pool(self.conditions, self.args.d_frames, seed)
                d_order = np.random.default_rng(400 + seed).permutation(len(d_pool))
                arms["d"] = lambda calls, p=d_pool, o=d_order: [p[i] for i in o[:calls]]
            # budget by budget, every arm: a partial run has each arm at the same budgets
            for calls in budgets(self.args.batch, self.args.rounds):
                for arm, frames_at in arms.items():
                    self.chain(arm, seed, calls, frames_at)
            for calls in sorted(c for c in self.args.c_beyond if c > total and "c" in arms):
                self.chain("c", seed, calls, arms["c"])  # route c further on: where it reaches the targets
            for arm in arms:
                self.record["runs"][f"{arm}/{seed}"]["done"] = True
            self.save()
        hottest = max(self.conditions.values(), key=lambda c: c[1])
        for run in self.record["runs"].values():
            if "md" in run or not run.get("done"):
                continue
            final = self.orm.load_node(run["points"][-1]["potential"])
            run["md"] = md_stability(final.get_calculator(), hottest[0], hottest[1], self.args.md_ps, seed=7)
            self.save()
        if "a" in self.args.arms and "md_reference" not in self.record:
            self.record["md_reference"] = md_stability(EMT(), hottest[0], hottest[1], self.args.md_ps, seed=7)
            self.save()


# ------------------------------------------------------------------------------------------------------ report
def merge(records: list[dict]) -> dict:
    """One record of the runs of several (one per seed, run in parallel); their settings must agree but for the
    seeds, and no run may appear twice."""
    merged = json.loads(json.dumps(records[0]))
    # what defines the runs; parallel runs of one benchmark differ in the rest (seeds, arms, files, report options)
    defining = ("system", "batch", "rounds", "initial", "maxiter", "target_frames", "d_frames", "md_ps")
    same = {key: merged["settings"].get(key) for key in defining}
    for record in records[1:]:
        other = {key: record["settings"].get(key) for key in defining}
        if other != same:
            raise SystemExit(f"the results files were run with other settings: {same} and {other}")
        twice = sorted(set(record["runs"]) & set(merged["runs"]))
        if twice:
            raise SystemExit(f"runs {twice} are in more than one results file")
        merged["runs"].update(record["runs"])
        if not merged.get("md_reference"):
            merged["md_reference"] = record.get("md_reference")
        merged["settings"]["seeds"] = sorted({*merged["settings"]["seeds"], *record["settings"]["seeds"]})
    return merged


def read_results(path: str) -> dict:
    """A results file; ``PATH::ARMS`` (e.g. ``al_copper_0.json::cd``) keeps only the runs of those arms: to report the
    arms that do not depend on the loop (c, d) beside another version of the loop and its arm b."""
    path, _, arms = path.partition("::")
    record = json.loads(pathlib.Path(path).read_text())
    if arms:
        record["runs"] = {key: run for key, run in record["runs"].items() if key.split("/")[0] in arms}
        if "a" not in arms:
            record.pop("md_reference", None)
    return record


def curves(record: dict) -> dict:
    """(arm, seed) -> (calls, {condition: {"E": [...], "F": [...]}})."""
    result = {}
    for key, run in record["runs"].items():
        points = run["points"]
        if len(points) < 2:
            continue
        arm, seed = key.split("/")
        names = list(points[0]["errors"])
        values = {n: {q: [p["errors"][n][q] for p in points] for q in ("E", "F")} for n in names}
        result[arm, int(seed)] = ([p["calls"] for p in points], values)
    return result


def reach_table(record: dict, targets: dict) -> dict:
    """(arm, seed) -> {condition: {"E": calls or None, "F": calls or None}}, the calls to reach ``targets`` (per
    quantity a number, or a number per condition)."""

    def target(q, n):
        return targets[q][n] if isinstance(targets[q], dict) else targets[q]

    return {
        key: {n: {q: calls_to_reach(calls, v[q], target(q, n)) for q in ("E", "F")} for n, v in values.items()}
        for key, (calls, values) in curves(record).items()
    }


def relative_targets(record: dict, fraction: float) -> dict:
    """Per condition, ``fraction`` of the error at 0 calls (the potential every arm starts from; median over seeds)."""
    starts = [values for (_, _), (calls, values) in curves(record).items() if calls[0] == 0]
    names = list(record["spread"])
    return {q: {n: fraction * float(np.median([v[n][q][0] for v in starts])) for n in names} for q in ("E", "F")}


def at_budget(record: dict) -> None:
    """Each arm's errors at the largest budget every arm has reached (route c may run further: ``--c-beyond``), per
    condition: median over seeds [min-max], and the medians' ratios."""
    found = curves(record)
    names = list(record["spread"])
    arms = sorted({arm for arm, _ in found})
    common = min(c[-1] for c, _ in found.values())

    def upto(calls, values):  # every curve's errors at its last fit within the common budget
        k = max(i for i, c in enumerate(calls) if c <= common)
        return {n: {q: v[q][: k + 1] for q in ("E", "F")} for n, v in values.items()}

    final = {arm: [upto(c, values) for (a, _), (c, values) in found.items() if a == arm] for arm in arms}
    calls = {arm: sorted({max(x for x in c if x <= common) for (a, _), (c, _) in found.items() if a == arm})
             for arm in arms}  # fmt: skip
    for q, unit in (("F", "meV/Å"), ("E", "meV/atom")):
        print(f"\n{q} RMSE ({unit}) of each arm's last fit (calls {calls}), per condition: median [min-max] over "
              "seeds; ratios of the loop's median to c's and b's:")  # fmt: skip
        for n in names:
            medians, parts = {}, []
            for arm in arms:
                last = [v[n][q][-1] for v in final[arm]]
                medians[arm] = float(np.median(last))
                parts.append(f"{arm} {medians[arm]:7.2f} [{min(last):.2f}-{max(last):.2f}]")
            ratios = " ".join(f"a/{o} {medians['a'] / medians[o]:.2f}" for o in ("c", "b") if o in medians and "a" in
                              medians)  # fmt: skip
            print(f"  {n:<13s} " + "  ".join(parts) + f"   {ratios}")


def _fmt(value, digits=0):
    return "–" if value is None else f"{value:.{digits}f}"


def report(record: dict, targets: dict, plot: str | None = None) -> None:  # noqa: PLR0912, PLR0915
    settings, spreads = record["settings"], record["spread"]
    names = list(spreads)
    found = curves(record)
    arms = sorted({arm for arm, _ in found})
    seeds = sorted({seed for _, seed in found})
    budget = settings["batch"] * settings["rounds"]
    print(f"system {settings['system']}: {len(names)} target conditions, {settings['target_frames']} frames each; "
          f"{settings['initial']} initial cells; budgets {budgets(settings['batch'], settings['rounds'])}; "
          f"maxiter {settings['maxiter']}; seeds {seeds}")  # fmt: skip
    print("\ntarget spread (E std meV/atom / F RMS meV/Å / mean pressure GPa): " + "; ".join(
        f"{n} {s['E_std']:.1f}/{s['F_rms']:.0f}/{s['P']:+.1f}" for n, s in spreads.items()))  # fmt: skip
    for key, run in sorted(record["runs"].items()):
        if key.startswith("a/") and run.get("done"):
            print(f"loop seed {key[2:]}: ActiveLearningWorkChain<{run['workchain']}>, {run['seconds']} s, "
                  f"{run['stop_reason']}; calls per fit {[p['calls'] for p in run['points']]}")  # fmt: skip
    print("\nforce RMSE (meV/Å) per condition, every fit (arm/seed, calls):")
    print(f"{'arm/seed':<9s} {'calls':>5s} " + " ".join(f"{n[:12]:>12s}" for n in names) + f" {'max γ':>7s}")
    for key in sorted(record["runs"]):
        for p in record["runs"][key]["points"]:
            print(f"{key:<9s} {p['calls']:5d} " + " ".join(f"{p['errors'][n]['F']:12.1f}" for n in names)
                  + f" {_fmt(p['max_gamma'], 1):>7s}")  # fmt: skip
    print("\nmedian over seeds at each budget, force RMSE (meV/Å) | energy RMSE (meV/atom), median over conditions:")
    for arm in arms:
        by_calls = {}
        for (a, _), (calls, values) in found.items():
            if a != arm:
                continue
            for k, c in enumerate(calls):
                by_calls.setdefault(c, []).append(
                    (np.median([values[n]["F"][k] for n in names]), np.median([values[n]["E"][k] for n in names]))
                )
        row = "  ".join(f"{c}: {np.median([f for f, _ in v]):.1f} | {np.median([e for _, e in v]):.2f}"
                        for c, v in sorted(by_calls.items()))  # fmt: skip
        print(f"  {arm} {ARMS[arm]:<34s} {row}")

    at_budget(record)
    reach = reach_table(record, targets)
    last_c = max((calls[-1] for (arm, _), (calls, _) in found.items() if arm == "c"), default=budget)
    if isinstance(targets["F"], dict):
        named = "; ".join(f"{n} {targets['F'][n]:.1f}/{targets['E'][n]:.2f}" for n in names)
        print(f"\ncalls to reach the targets per condition (F meV/Å / E meV/atom: {named}); '–' not reached by the "
              f"arm's last fit ({budget} calls; route c: {last_c}):")  # fmt: skip
    else:
        print(f"\ncalls to reach the targets (F {targets['F']:g} meV/Å, E {targets['E']:g} meV/atom) per condition; "
              f"'–' not reached by the arm's last fit ({budget} calls; route c: {last_c}):")  # fmt: skip
    print(f"{'arm/seed':<9s} " + " ".join(f"{n[:12]:>12s}" for n in names) + "   (F / E)")
    for key in sorted(reach):
        cells = reach[key]
        print(f"{key[0]}/{key[1]:<7d} " + " ".join(
            f"{_fmt(cells[n]['F']):>6s}/{_fmt(cells[n]['E']):<5s}" for n in names))  # fmt: skip

    print(
        "\nratio of calls to the force target, loop (a) over each other arm, per seed (median [min-max]); "
        "'not reached' counts a curve that never gets there:"
    )
    for other in [arm for arm in arms if arm != "a"]:
        parts = []
        for n in names:
            ratios, unreached = [], {"a": 0, other: 0}
            for seed in seeds:
                mine, theirs = reach.get(("a", seed), {}).get(n, {}).get("F"), reach.get((other, seed), {}).get(
                    n, {}).get("F")  # fmt: skip
                if ("a", seed) not in reach or (other, seed) not in reach:
                    continue
                unreached["a"] += mine is None
                unreached[other] += theirs is None
                if mine is not None and theirs:
                    ratios.append(mine / theirs)
            text = f"{np.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]" if ratios else "–"
            if unreached["a"] or unreached[other]:
                text += f" (unreached: a {unreached['a']}, {other} {unreached[other]})"
            parts.append(f"{n}: {text}")
        print(f"  a/{other}: " + "; ".join(parts))

    print(
        f"\nfinal potentials ({budget} calls): force RMSE over all conditions pooled (meV/Å), per seed; largest γ "
        "on the target; MD at the hottest condition:"
    )
    hot = record.get("md_reference")
    if hot:
        print(f"  EMT (reference): ran {hot['time_ps']:.2f} ps, min d {hot['min_distance']:.2f} Å, "
              f"T {hot['T_min']:.0f}-{hot['T_max']:.0f} K")  # fmt: skip
    for key in sorted(record["runs"]):
        run = record["runs"][key]
        final = run["points"][-1]
        pooled = float(np.sqrt(np.mean([final["errors"][n]["F"] ** 2 for n in names])))
        md = run.get("md")
        text = "MD not run" if md is None else (
            f"MD ran {md['time_ps']:.2f} ps, min d {md['min_distance']:.2f} Å, T {md['T_min']:.0f}-{md['T_max']:.0f} "
            f"K, γ in MD {_fmt(md['max_gamma'], 1)}: " + ("physical" if md["stopped"] is None else
                                                           f"UNPHYSICAL ({md['stopped']})"))  # fmt: skip
        print(
            f"  {key:<5s} {final['calls']:4d} calls: F {pooled:6.1f}, γ max {_fmt(final['max_gamma'], 1):>7s}; {text}"
        )
    if plot:
        plot_curves(record, plot)
        print(f"\nplotted: {plot}")


def plot_curves(record: dict, path: str) -> None:
    """Force RMSE (median over conditions) and the worst condition's against calls; one line per arm and seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"a": "tab:blue", "b": "tab:orange", "c": "tab:red", "d": "tab:gray"}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    labelled_arms = set()
    for (arm, _seed), (calls, values) in sorted(curves(record).items()):
        names = list(values)
        median = [np.median([values[n]["F"][k] for n in names]) for k in range(len(calls))]
        worst = [max(values[n]["F"][k] for n in names) for k in range(len(calls))]
        label = None if arm in labelled_arms else f"{arm}: {ARMS[arm]}"
        labelled_arms.add(arm)
        for axis, curve in zip(axes, (median, worst), strict=True):
            axis.plot(calls, curve, "o-", color=colours[arm], alpha=0.7, lw=1.5, ms=3, label=label)
    for axis, title in zip(axes, ("median over target conditions", "worst target condition"), strict=True):
        axis.set_yscale("log")
        axis.set_xlabel("oracle calls")
        axis.set_ylabel("force RMSE (meV/Å)")
        axis.set_title(f"{record['settings']['system']}: {title}", fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=("copper", "cuni"), default="copper")
    parser.add_argument(
        "--json",
        required=True,
        nargs="+",
        help="results file, written after every fit; to report, several (one per seed) are merged, PATH::ARMS "
        "taking only those arms of a file (e.g. ::cd)",
    )
    parser.add_argument("--resume", action="store_true", help="go on from the results file")
    parser.add_argument("--report-only", action="store_true", help="print the tables from --json and stop")
    parser.add_argument("--plot", default=None, help="write the learning curves as a PNG here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every arm")
    parser.add_argument("--arms", nargs="+", choices=sorted(ARMS), default=sorted(ARMS), help="the arms run here")
    parser.add_argument("--loop", default=None, help="without arm a: the results file of the loop runs")
    parser.add_argument(
        "--first-potential",
        type=int,
        default=None,
        help="arms c, d without arm a: the pk of the loop's first potential, to start from",
    )
    parser.add_argument("--batch", type=int, default=10, help="oracle calls per round (the loop's selection budget)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds with labels: budgets batch, 2 batch, ...")
    parser.add_argument(
        "--c-beyond",
        type=int,
        nargs="*",
        default=[],
        help="arm c only: further budgets beyond batch x rounds (e.g. 60 120), where route c reaches the targets",
    )
    parser.add_argument("--initial", type=int, default=6, help="near-equilibrium labelled cells every arm starts from")
    parser.add_argument("--maxiter", type=int, default=60, help="BFGS iterations of each fit (every arm)")
    parser.add_argument("--target-frames", type=int, default=50, help="held-out frames per condition")
    parser.add_argument("--d-frames", type=int, default=40, help="arm d's pool: frames per condition")
    parser.add_argument("--md-ps", type=float, default=1.0, help="picoseconds of the stability MD")
    parser.add_argument("--target-f", type=float, default=100.0, help="force RMSE target (meV/Å)")
    parser.add_argument("--target-e", type=float, default=5.0, help="energy RMSE target (meV/atom)")
    parser.add_argument(
        "--target-fraction",
        type=float,
        default=None,
        help="instead: per condition this fraction of the errors at 0 calls (every arm's start)",
    )
    args = parser.parse_args(argv)
    if args.first_potential is not None and ("a" in args.arms or "b" in args.arms or len(args.seeds) != 1):
        parser.error("--first-potential is for arms c and d of one seed, run beside that seed's loop")
    if not args.report_only:
        if len(args.json) != 1:
            parser.error("a run writes one results file: give one --json")
        (args.json,) = args.json
    if min(args.batch, args.rounds) < 1 or min(args.seeds) < 0:
        parser.error("batch and rounds must be positive, seeds not negative")
    return args


def main(argv=None) -> None:
    args = parse_arguments(argv)
    targets = {"E": args.target_e, "F": args.target_f}
    if not args.report_only:
        from aiida import load_profile

        load_profile()
        Bench(args).run()
    paths = [args.json] if isinstance(args.json, str) else args.json
    record = merge([read_results(path) for path in paths])
    if args.target_fraction is not None:
        targets = relative_targets(record, args.target_fraction)
    report(record, targets, args.plot)


if __name__ == "__main__":
    main()
