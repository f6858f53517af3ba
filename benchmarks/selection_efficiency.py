"""Data efficiency of D-optimal structure selection against random choice, at equal structures and equal atoms.

Run (after `make demo`, which creates the profile and the pacemaker code):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/selection_efficiency.py \
        --cache benchmarks/results/selection_efficiency.json

(about 15 min on two cores with 100 BFGS iterations per fit; `--maxiter 400 --methods random,dopt,rounds` about an
hour). The cache keeps finished fits, so that a rerun only fits what changed.

Reference: ASE's EMT for copper (many-body, standing in for DFT). One generator draws the pool (1200 structures)
and, with another seed, the held-out test set (150): fcc cells of 4–48 atoms, near-equilibrium (|strain| ≤ 1 %,
rattle 0.01–0.03 Å), thermal (rattle 0.05–0.15 Å), strained (isotropic ±8 %, shear ±4 %), with one or two
vacancies, and (100)/(110)/(111) slabs with 12 Å of vacuum. "Near-equilibrium" is the first kind: defect-free bulk
within 1 % of EMT's lattice constant and rattled by at most 0.03 Å; its errors are reported separately.

Every training set is fitted through PaceTrainCalculation with the same small basis (the "fast" preset, 36
functions, rcut 5 Å) and the same BFGS iterations; selection runs through the plugin (select_structures /
PaceSelectCalculation). Errors are computed from each potential's ASE calculator on the whole test set and on its
near-equilibrium part: energy RMSE in meV/atom, force RMSE in meV/Å per component.

Methods (--methods): `random` (one run per seed); `dopt`, the plugin's default (select_structures with the
unfitted basis, strategy "extend"), K structures or fewer when it stops; `dopt-layers`, K structures in layers;
`dopt-atoms`, the layered D-optimal order cut at random's mean atom count at K; `mixed`, select_within_atoms at
random's atom count (per seed): half of it D-optimal, half random; `rounds`, active learning at random's atom count
(per seed): the smallest K as `mixed`, each larger K adds to the set of the K before it with select_within_atoms,
its D-optimal share selected by the potential fitted at the K before (its active set over that set counted as
covered). Each fit starts from scratch, so every method gets the same fit at each K. Also available, not in the
runs recorded in docs/benchmarks.md: `small-dopt` (D-optimal among structures of at most --small atoms),
`dopt+core` (3/4 D-optimal, 1/4 the lowest max extrapolation grade against the pool's own active set),
`gamma-strata` (equal atom shares from quartiles of that grade, D-optimal within each). The atom-budget methods
are compared with random at equal atoms, all of them with random's K = 200 force error at equal structure count.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import pathlib
import sys
import time

import numpy as np
import yaml
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk, fcc100, fcc110, fcc111
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mlip_trainer.calculations import PaceActivesetCalculation, PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.launch import get_or_create_code, select_structures, select_within_atoms
from aiida_mlip_trainer.selection import fill_atom_budget, take_structures, unfitted_potential

PROTOCOLS = pathlib.Path(__file__).parent.parent / "aiida_mlip_trainer" / "workflows" / "protocols" / "pace_train.yaml"
A0 = 3.59  # EMT's fcc lattice constant for Cu (energy minimum on a 0.01 Å grid)
BULK_REPEATS = [(1, 1, 1), (2, 1, 1), (3, 1, 1), (2, 2, 1), (3, 2, 1), (2, 2, 2), (3, 2, 2)]  # 4 ... 48 atoms
KINDS = ("near-eq", "thermal", "strained", "vacancy", "surface")
SEEDED = ("random", "mixed", "rounds")  # methods run once per seed

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--code", default="pacemaker@localhost")
parser.add_argument("--pool", type=int, default=1200)
parser.add_argument("--test", type=int, default=150)
parser.add_argument("--ks", default="25,50,100,200")
parser.add_argument("--seeds", default="0,1,2", help="seeds of the random choices")
parser.add_argument("--maxiter", type=int, default=100)
parser.add_argument(
    "--methods",
    default="random,dopt,dopt-atoms,mixed,rounds",
    help="of random, dopt, dopt-layers, dopt-atoms, mixed, rounds, small-dopt, dopt+core, gamma-strata",
)
parser.add_argument("--random-fraction", type=float, default=0.5, help="random share of the atoms in `mixed`")
parser.add_argument("--small", type=int, default=16, help="largest structure (atoms) that small-dopt selects")
parser.add_argument("--cache", default=None, help="JSON file of finished fits, reused when the settings match")
parser.add_argument("--no-fit", action="store_true", help="only show what each method selects")
parser.add_argument("--output", default="benchmarks/results/selection_efficiency.txt")
args = parser.parse_args()

KS = [int(k) for k in args.ks.split(",")]
SEEDS = [int(s) for s in args.seeds.split(",")]
METHODS = args.methods.split(",")
START = time.time()
LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


# ------------------------------------------------------------------------------------------------------ reference
def _label(atoms, kind: str, name: str):
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(name=name, kind=kind)
    return atoms


def _bulk(rng, strain: float, repeats=BULK_REPEATS):
    repeat = repeats[int(rng.integers(len(repeats)))]
    order = rng.permutation(3)
    return bulk("Cu", "fcc", a=A0 * (1 + rng.uniform(-strain, strain)), cubic=True).repeat(
        tuple(repeat[i] for i in order)
    )


def generate(count: int, seed: int) -> list:
    """``count`` Cu structures labelled by EMT, the five kinds in equal shares (in random order)."""
    rng = np.random.default_rng(seed)
    structures = []
    for index in range(count):
        kind = KINDS[index % len(KINDS)]
        if kind == "near-eq":
            atoms, rattle = _bulk(rng, 0.01), rng.uniform(0.01, 0.03)
        elif kind == "thermal":
            atoms, rattle = _bulk(rng, 0.02), rng.uniform(0.05, 0.15)
        elif kind == "strained":
            atoms = _bulk(rng, 0.08)
            shear = rng.uniform(-0.04, 0.04, size=(3, 3))
            atoms.set_cell(atoms.cell @ (np.eye(3) + (shear + shear.T) / 2), scale_atoms=True)
            rattle = rng.uniform(0.02, 0.10)
        elif kind == "vacancy":
            atoms = _bulk(rng, 0.02, repeats=BULK_REPEATS[1:])
            for _ in range(int(rng.integers(1, 3))):
                del atoms[int(rng.integers(len(atoms)))]
            rattle = rng.uniform(0.02, 0.12)
        else:
            build = (fcc100, fcc110, fcc111)[int(rng.integers(3))]
            while True:
                size = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(3, 7)))
                if 4 <= np.prod(size) <= 48:
                    break
            atoms = build("Cu", size=size, a=A0 * (1 + rng.uniform(-0.02, 0.02)), vacuum=6.0)
            atoms.pbc = True  # 12 Å of vacuum between periodic images, more than the 5 Å cutoff
            rattle = rng.uniform(0.02, 0.12)
        atoms.rattle(rattle, seed=int(rng.integers(2**31)))
        structures.append(_label(atoms, kind, f"Cu_{kind}_{seed}_{index}"))
    order = rng.permutation(count)
    return [structures[i] for i in order]


# ---------------------------------------------------------------------------------------------------- evaluation
def errors(potential, structures) -> dict:
    calculator = potential.get_calculator()
    de, df = [], []
    for atoms in structures:
        copy_ = atoms.copy()
        copy_.calc = calculator
        de.append((copy_.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        df.append(copy_.get_forces() - atoms.get_forces())
    return {
        "E": 1000 * float(np.sqrt(np.mean(np.square(de)))),
        "F": 1000 * float(np.sqrt(np.mean(np.concatenate(df) ** 2))),
    }


def fit(indices: list[int]) -> dict:
    training = take_structures(pool_node, orm.List([int(i) for i in indices]))
    results, node = run_get_node(
        PaceTrainCalculation, code=code, training_set=training, test_set=test_node, parameters=parameters
    )
    if not node.is_finished_ok:
        raise SystemExit(f"fit of {len(indices)} structures: [{node.exit_status}] {node.exit_message}")
    potential = results["potential"]
    return {
        "pk": node.pk,
        "uuid": node.uuid,
        "wall_time": results["metrics"].get("wall_time"),
        "pacemaker_test": results["metrics"].get("test"),
        "test": errors(potential, test_structures),
        "near_eq": errors(potential, near_eq),
    }


# ---------------------------------------------------------------------------------------------------- selections
def plugin_selection(pool: TrainingSetData, k: int, **kwargs) -> list[int]:
    selected = select_structures(
        pool, k, parameters=parameters, code=select_code, activeset_code=activeset_code, **kwargs
    )
    return selected.creator.outputs.indices.get_list()


def fill_atoms(order: list[int], budget: float) -> list[int]:
    """The structures of ``order`` (pool positions, best first) that fit an atom ``budget``, each in turn while it
    fits: the plugin's fill_atom_budget with no random share."""
    cut = fill_atom_budget(
        pool_node, orm.Int(int(budget)), orm.Float(0.0), orm.Int(0), ranked=orm.List([int(i) for i in order])
    )
    return cut.get_list()


def random_choice(k: int, seed: int) -> list[int]:
    return [int(i) for i in np.random.default_rng(seed).choice(len(natoms), size=k, replace=False)]


def random_atoms(k: int) -> float:
    return float(np.mean([natoms[random_choice(k, s)].sum() for s in SEEDS]))


_ORDERS: dict[str, list[int]] = {}
_DEFAULT: dict[int, list[int]] = {}


def layered_order(name: str, subset: list[int], count: int | None = None) -> list[int]:
    """D-optimal order (best first) of the first ``count`` (default: the largest K) pool structures at ``subset``,
    in layers (select_structures, strategy="layers")."""
    if name not in _ORDERS:
        sub_pool = pool_node if len(subset) == len(natoms) else take_structures(pool_node, orm.List(subset))
        local = plugin_selection(sub_pool, min(len(subset), count or max(KS)), strategy="layers", max_rounds=50)
        _ORDERS[name] = [subset[i] for i in local]
    return _ORDERS[name]


def mixed(k: int, seed: int) -> list[int]:
    """The plugin's select_within_atoms at random's atom count at (K, seed): 1 - --random-fraction of it in the
    D-optimal (layered) order of the unfitted basis, the rest at random from the rest of the pool."""
    budget = int(natoms[random_choice(k, seed)].sum())
    selected = select_within_atoms(
        pool_node,
        budget,
        random_fraction=args.random_fraction,
        seed=1000 + seed,
        parameters=parameters,
        code=select_code,
        activeset_code=activeset_code,
    )
    return selected.creator.inputs.indices.get_list()


_ROUNDS: dict[tuple[int, int], list[int]] = {}


def rounds(k: int, seed: int) -> list[int]:
    """Active learning at random's atom count at (K, seed): the smallest K as `mixed`; each larger K keeps what the
    K before it picked and adds the rest of the budget with select_within_atoms on the rest of the pool, its
    D-optimal share selected by the potential fitted at the K before (its active set over that training set counted
    as covered), the other share at random."""
    if (k, seed) not in _ROUNDS:
        smaller = [kk for kk in KS if kk < k]
        if not smaller:
            _ROUNDS[k, seed] = mixed(k, seed)
        else:
            previous = rounds(smaller[-1], seed)
            cached = fit_cached(previous)  # a fit of this profile: by UUID where the cache has it
            potential = orm.load_node(uuid=cached["uuid"]) if "uuid" in cached else orm.load_node(cached["pk"])
            potential = potential.outputs.potential
            results, node = run_get_node(
                PaceActivesetCalculation,
                code=activeset_code,
                potential=potential,
                training_set=take_structures(pool_node, orm.List(previous)),
                parameters={"all_atoms": True},
            )
            if not node.is_finished_ok:
                raise SystemExit(f"pace_activeset: [{node.exit_status}] {node.exit_message}")
            chosen = set(previous)
            rest = [i for i in range(len(natoms)) if i not in chosen]
            budget = int(natoms[random_choice(k, seed)].sum()) - int(natoms[previous].sum())
            if budget < natoms.min():  # random's atoms at this K are no more than what the K before took
                _ROUNDS[k, seed] = previous
                return previous
            selected = select_within_atoms(
                take_structures(pool_node, orm.List(rest)),
                budget,
                random_fraction=args.random_fraction,
                seed=1000 + seed,
                potential=results["potential"],
                use_active_set=True,
                code=select_code,
                activeset_code=activeset_code,
            )
            _ROUNDS[k, seed] = previous + [rest[i] for i in selected.creator.inputs.indices.get_list()]
    return _ROUNDS[k, seed]


_GAMMA: list[np.ndarray] = []


def max_gamma() -> np.ndarray:
    """Label-free extremeness of each pool structure: the largest extrapolation grade of its atoms against the
    active set (pace_activeset, all atoms) of the unfitted basis over the whole pool. Near-equilibrium cells are the
    lowest (well inside the pool's distribution), strained cells, surfaces and vacancies the highest."""
    if not _GAMMA:
        selector = unfitted_potential(orm.Dict(parameters), orm.List(pool_node.elements))
        results, node = run_get_node(
            PaceActivesetCalculation,
            code=activeset_code,
            potential=selector,
            training_set=pool_node,
            parameters={"all_atoms": True},
        )
        if not node.is_finished_ok:
            raise SystemExit(f"pace_activeset: [{node.exit_status}] {node.exit_message}")
        calculator = results["potential"].get_ace_calculator()
        values = []
        for atoms in pool_structures:
            copy_ = atoms.copy()
            copy_.calc = calculator
            copy_.get_potential_energy()
            values.append(float(np.max(calculator.results["gamma"])))
        _GAMMA.append(np.array(values))
    return _GAMMA[0]


def dopt_core(k: int, core: float = 0.25) -> list[int]:
    """Random's mean atom count at K: (1 - core) of it in the D-optimal order, the rest from the structures with the
    lowest max gamma (the core of the pool's distribution, near equilibrium)."""
    budget = random_atoms(k)
    dopt = fill_atoms(layered_order("all", list(range(len(natoms)))), (1 - core) * budget)
    chosen = set(dopt)
    order = [int(i) for i in np.argsort(max_gamma()) if int(i) not in chosen]
    return dopt + fill_atoms(order, budget - natoms[dopt].sum())


def gamma_strata(k: int, bins: int = 4) -> list[int]:
    """Random's mean atom count at K, in equal shares from quantile bins of max gamma (core to extremes), each share
    in the D-optimal (layered) order of its bin."""
    budget = random_atoms(k)
    gamma = max_gamma()
    edges = np.quantile(gamma, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, gamma, side="right") - 1, 0, bins - 1)
    picked = []
    for b in range(bins):
        members = [int(i) for i in np.flatnonzero(which == b)]
        picked += fill_atoms(layered_order(f"gamma bin {b}", members, 2 * max(KS) // bins), budget / bins)
    return picked


def select(method: str, k: int, seed: int | None) -> list[int]:
    if method == "random":
        return random_choice(k, seed)
    if method == "dopt":  # the plugin's default: unfitted basis, rounds that extend the active set
        short = [picked for kk, picked in _DEFAULT.items() if kk < k and len(picked) < kk]
        if short:  # it already stopped short of a smaller K: a larger K returns the same (deterministic)
            return short[0]
        _DEFAULT[k] = plugin_selection(pool_node, k)
        return _DEFAULT[k]
    if method == "dopt-layers":  # the unfitted basis, layer after layer until K structures
        return layered_order("all", list(range(len(natoms))))[:k]
    if method == "dopt-atoms":  # the layered D-optimal order, cut at random's atom count at K
        return fill_atoms(layered_order("all", list(range(len(natoms)))), random_atoms(k))
    if method == "small-dopt":  # D-optimal among the small structures only, filling random's atom count at K
        small = [i for i in range(len(natoms)) if natoms[i] <= args.small]
        return fill_atoms(layered_order("small", small), random_atoms(k))
    if method == "mixed":
        return mixed(k, seed)
    if method == "rounds":
        return rounds(k, seed)
    if method == "dopt+core":
        return dopt_core(k)
    if method == "gamma-strata":
        return gamma_strata(k)
    raise SystemExit(f"unknown method {method!r}")


# ----------------------------------------------------------------------------------------------------------- run
code = orm.load_code(args.code)
select_code = get_or_create_code("pace_select", "mlip_trainer.pace_select")
activeset_code = get_or_create_code("pace_activeset", "mlip_trainer.pace_activeset")
parameters = copy.deepcopy(yaml.safe_load(PROTOCOLS.read_text())["presets"]["fast"]["parameters"])
parameters["fit"]["maxiter"] = args.maxiter

pool_structures = generate(args.pool, seed=1)
test_structures = generate(args.test, seed=2)
near_eq = [a for a in test_structures if a.info["kind"] == "near-eq"]
natoms = np.array([len(a) for a in pool_structures])
pool_node = TrainingSetData(pool_structures).store()
test_node = TrainingSetData(test_structures).store()
kinds = [a.info["kind"] for a in pool_structures]
epa = np.array([a.get_potential_energy() / len(a) for a in pool_structures])

say(
    f"pool: {len(natoms)} structures, {natoms.sum()} atoms ({natoms.min()}–{natoms.max()} per structure, mean "
    f"{natoms.mean():.1f}); test: {len(test_structures)} structures, {len(near_eq)} near-equilibrium"
)
say(
    "energy per atom by kind (pool, eV): "
    + ", ".join(f"{kind} {np.mean([e for e, k_ in zip(epa, kinds, strict=True) if k_ == kind]):+.3f}" for kind in KINDS)
)


def spread(structures) -> str:
    """The reference's own spread: standard deviation of the energy per atom (meV/atom), RMS force (meV/Å)."""
    energies = [a.get_potential_energy() / len(a) for a in structures]
    forces = np.concatenate([a.get_forces() for a in structures])
    return f"energy SD {1000 * np.std(energies):.1f} meV/atom, force RMS {1000 * np.sqrt(np.mean(forces**2)):.0f} meV/Å"


say(f"reference spread: test set {spread(test_structures)}; near-equilibrium test structures {spread(near_eq)}")
say(
    f"basis: fast preset, rcut 5 Å, {args.maxiter} BFGS iterations; seeds of random: {SEEDS}; random share of "
    f"`mixed`: {args.random_fraction}"
)

settings = {
    "pool": args.pool,
    "test": args.test,
    "maxiter": args.maxiter,
    "small": args.small,
    "hash": pool_node.content_hash,
}
cache_path = pathlib.Path(args.cache) if args.cache else None
cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}
if cache.get("settings") != settings:
    cache = {"settings": settings, "fits": {}}


def fit_cached(indices: list[int]) -> dict:
    """The fit of these pool structures, from the cache when it has it."""
    key = hashlib.sha1(json.dumps(sorted(int(i) for i in indices)).encode()).hexdigest()
    if key not in cache["fits"]:
        cache["fits"][key] = fit(indices)
        if cache_path:
            cache_path.write_text(json.dumps(cache, indent=1))
    return cache["fits"][key]


runs = []
for k in KS:
    for method in METHODS:
        for seed in SEEDS if method in SEEDED else [None]:
            started = time.time()
            indices = select(method, k, seed)
            selection_time = time.time() - started
            if args.no_fit:
                picked = [kinds[i] for i in indices]
                print(
                    f"  K={k:3d} {method:12s} seed={seed} structures={len(indices):3d} "
                    f"atoms={natoms[indices].sum():5d} ({selection_time:.0f} s) kinds: "
                    + " ".join(f"{kind} {picked.count(kind)}" for kind in KINDS),
                    flush=True,
                )
                continue
            result = fit_cached(indices)
            run = {
                "k": k,
                "method": method,
                "seed": seed,
                "structures": len(indices),
                "atoms": int(natoms[indices].sum()),
                "near_eq_picked": sum(kinds[i] == "near-eq" for i in indices),
                "selection_time": selection_time,
                **result,
            }
            runs.append(run)
            print(
                f"  K={k:3d} {method:12s} seed={seed} structures={run['structures']:3d} atoms={run['atoms']:5d} "
                f"near-eq picked={run['near_eq_picked']:3d} E={run['test']['E']:6.2f} F={run['test']['F']:6.1f} "
                f"near-eq E={run['near_eq']['E']:6.2f} F={run['near_eq']['F']:6.1f} "
                f"(fit {result['wall_time'] or 0:.0f} s, selection {selection_time:.0f} s, "
                f"{(time.time() - START) / 60:.1f} min)",
                flush=True,
            )

if args.no_fit:
    raise SystemExit(0)


def cell(values, digits=1):
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f}±{values.std(ddof=1):.{digits}f}"


say()
say("| K | method | structures | atoms | near-eq picked | test E (meV/atom) | test F (meV/Å) | near-eq E | near-eq F |")
say("|---|---|---|---|---|---|---|---|---|")
summary = {}
for k in KS:
    for method in METHODS:
        group = [r for r in runs if r["k"] == k and r["method"] == method]
        row = {name: [r[name] for r in group] for name in ("structures", "atoms", "near_eq_picked")}
        row.update(
            E=[r["test"]["E"] for r in group],
            F=[r["test"]["F"] for r in group],
            nE=[r["near_eq"]["E"] for r in group],
            nF=[r["near_eq"]["F"] for r in group],
        )
        summary[k, method] = row
        say(
            f"| {k} | {method} | {cell(row['structures'], 0)} | {cell(row['atoms'], 0)} | "
            f"{cell(row['near_eq_picked'], 0)} | {cell(row['E'], 2)} | {cell(row['F'])} | {cell(row['nE'], 2)} | "
            f"{cell(row['nF'])} |"
        )

BUDGETED = ("dopt-atoms", "mixed", "rounds", "small-dopt", "dopt+core", "gamma-strata")  # fill random's atoms at each K
if "random" in METHODS:
    say()
    say(
        "Equal labelled atoms (each method fills random's atom count at K; mean±SD over seeds where seeded). A mean "
        "is called `lower` or `higher` than random's when it differs by more than random's seed-to-seed SD, else "
        "`within spread`:"
    )

    def verdict(mine: list, theirs: list) -> str:
        difference, sd = np.mean(mine) - np.mean(theirs), np.std(theirs, ddof=1)
        return "within spread" if abs(difference) <= sd else "lower" if difference < 0 else "higher"

    for method in [m for m in METHODS if m in BUDGETED]:
        for k in KS:
            mine, theirs = summary[k, method], summary[k, "random"]
            say(
                f"  K={k:3d} {method:12s} {np.mean(mine['atoms']):5.0f} atoms in {np.mean(mine['structures']):5.1f} "
                f"structures vs random {np.mean(theirs['atoms']):5.0f} in {k}: test F {cell(mine['F'])} vs "
                f"{cell(theirs['F'])} ({verdict(mine['F'], theirs['F'])}), near-eq E {cell(mine['nE'], 2)} vs "
                f"{cell(theirs['nE'], 2)} ({verdict(mine['nE'], theirs['nE'])})"
            )
    target = float(np.mean(summary[max(KS), "random"]["F"]))
    say(f"Equal structure count: random's K={max(KS)} test F is {target:.1f} meV/Å; the smallest K that reaches it:")
    for method in [m for m in METHODS if m != "random"]:
        reached = [(k, summary[k, method]) for k in KS if np.mean(summary[k, method]["F"]) <= target]
        if reached:
            k, row = reached[0]
            say(
                f"  {method:12s} K={k}: {np.mean(row['structures']):.0f} structures, {np.mean(row['atoms']):.0f} "
                f"atoms, test F {cell(row['F'])}"
            )
        else:
            say(f"  {method:12s} does not reach it at any K")

say()
say(f"total runtime {(time.time() - START) / 60:.1f} min")
if args.output:
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([" ".join(sys.argv), *LINES]) + "\n")
