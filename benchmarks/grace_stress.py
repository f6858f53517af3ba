"""Stress fitting: pacemaker (ACE, no stress in its loss) against gracemaker GRACE-FS with stress weight 0 and > 0.

Run (after `make demo`, which creates the profile; the gracemaker code is created here if missing):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/grace_stress.py

Data (reference: ASE's EMT):
- ``sheared``: 4-atom cubic copper cells deformed by a random symmetric strain (each normal and shear component
  uniform in ±``--strain``) and rattled (0.05 Å), ``--train`` for the fit and ``--test`` held out, drawn anew for
  every seed.
- ``demo``: the demo's data (``examples/train_from_extxyz.py``: 40 cells of 32 atoms within ±3 % isotropic strain,
  20 with a vacancy within ±5 %), 20 % held out (seeded split). Isotropic strain only: its stresses are nearly
  hydrostatic, so it says little about shear.

Each fit is one calculation of the plugin (PaceTrainCalculation, GraceTrainCalculation) on the same training
structures; neither trainer is given the held-out structures (gracemaker would export the checkpoint of its best loss
on them, a choice made on the data the errors are then measured on, and evaluate them at every iteration). Every
potential is then evaluated through its node's ASE calculator on the held-out structures
(E per atom, F and stress components) and its cubic elastic constants are computed at its own zero-pressure lattice
(:func:`aiida_mlip_trainer.physics.properties.cubic_elastic_constants`) next to EMT's. Wall time: the calculation's
(from launch to parsed results, fixed costs of TensorFlow tracing and export included), on a shared machine.
Results of each fit are cached (``--cache``), so an interrupted run resumes and ``--print-only`` prints the table.
"""

import argparse
import json
import pathlib
import shutil
import statistics
import time

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

from aiida_mlip_trainer.calculations import GraceTrainCalculation, PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.physics.properties import cubic_elastic_constants
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain

parser = argparse.ArgumentParser()
parser.add_argument("--datasets", default="sheared,demo")
parser.add_argument("--seeds", default="1,2", help="comma-separated; the demo data are fitted with the first only")
parser.add_argument("--train", type=int, default=80)
parser.add_argument("--test", type=int, default=20)
parser.add_argument("--strain", type=float, default=0.03)
parser.add_argument("--epochs", type=int, default=200, help="gracemaker's epochs with Adam (arms 'adam')")
parser.add_argument("--maxiter", type=int, default=300, help="BFGS iterations of pacemaker and gracemaker")
parser.add_argument(
    "--arms",
    default="pacemaker,grace w=0,grace w=1000,grace w=1000 medium",
    help="pacemaker, or grace w=W (stress weight W; BFGS for --maxiter iterations, the plugin's optimizer), each "
    "with options: it=N (BFGS iterations), and for grace: 'adam' (Adam for --epochs epochs, the plugin's optimizer "
    "before BFGS), 'medium' (the moderate protocol's model: body order 4, n_rad_max 8/4/3; else the plugin's small "
    "default), f=F and e=E (the force and energy weights, 32 and 16 by default) and 'nojit' (no XLA compilation, "
    "the plugin's default)",
)
parser.add_argument("--cache", default="benchmarks/results/grace_stress.json")
parser.add_argument("--print-only", action="store_true")
args = parser.parse_args()

PACE_PARAMETERS = {
    "cutoff": 5.0,
    "potential": {
        "deltaSplineBins": 0.001,
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": [8, 4, 3], "lmax_by_orders": [0, 3, 2]}},
    },
    "fit": {"loss": {"kappa": 0.3, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS"},
    "backend": {"evaluator": "tensorpot", "batch_size": 50, "display_step": 50},
}

# The GRACE-FS model of TrainingWorkChain's `moderate` and `precise` protocols (body order 4, radial functions 8/4/3:
# 418 parameters for copper, the size of the pacemaker arm's basis), against the plugin's default (body order 3: 148).
GRACE_MEDIUM = TrainingWorkChain.get_protocol_inputs("moderate")["grace"]["parameters"]["potential"]["kwargs"]


def label(atoms):
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(), "stress": atoms.get_stress()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def sheared(count, seed):
    """4-atom copper cubes under a random symmetric strain (normal and shear components in ±strain), rattled."""
    rng = np.random.default_rng(seed)
    structures = []
    for _ in range(count):
        strain = rng.uniform(-args.strain, args.strain, size=(3, 3))
        strain = (strain + strain.T) / 2
        atoms = bulk("Cu", "fcc", a=3.59, cubic=True)
        atoms.set_cell(atoms.cell @ (np.eye(3) + strain), scale_atoms=True)
        atoms.rattle(0.05, seed=int(rng.integers(2**31)))
        structures.append(label(atoms))
    return structures


def datasets(name, seed):
    if name == "sheared":
        structures = sheared(args.train + args.test, seed)
        return structures[: args.train], structures[args.train :]
    structures = copper_emt(40, seed=1) + copper_emt(20, seed=2, vacancies=1, strain=0.05)
    order = np.random.default_rng(seed).permutation(len(structures))
    test = int(round(0.2 * len(structures)))
    return [structures[i] for i in order[test:]], [structures[i] for i in order[:test]]


def code(name, plugin):
    try:
        return orm.load_code(f"{name}@localhost")
    except Exception:  # noqa: BLE001 - created on first use
        created = orm.InstalledCode(
            label=name,
            computer=orm.load_computer("localhost"),
            filepath_executable=shutil.which(name),
            default_calc_job_plugin=plugin,
        )
        return created.store()


def option(options, key, default):
    """The number of an arm's ``key=value`` option, else ``default``."""
    return next((float(o.removeprefix(f"{key}=")) for o in options if o.startswith(f"{key}=")), default)


def fit(arm, train, seed):
    train_node = TrainingSetData(train).store()
    name, *options = arm.split()
    iterations = int(option(options, "it", args.maxiter))
    if name == "pacemaker":
        parameters = {**PACE_PARAMETERS, "seed": seed}
        parameters["fit"] = {**parameters["fit"], "maxiter": iterations}
        inputs = {"code": code("pacemaker", "mlip_trainer.pace_train"), "parameters": parameters}
        process = PaceTrainCalculation
    else:
        loss = {
            "energy": option(options, "e", 16.0),
            "forces": option(options, "f", 32.0),
            "stress": option(options, "w", 0.0),
        }
        fit_section = {"maxiter": iterations, "jit_compile": "nojit" not in options, "loss": loss}
        if "adam" in options:
            fit_section.update(optimizer="Adam", maxiter=args.epochs)
        parameters = {"seed": seed, "cutoff": 5.0, "fit": fit_section}
        if "medium" in options:
            parameters["potential"] = {"kwargs": GRACE_MEDIUM}
        inputs = {"code": code("gracemaker", "mlip_trainer.grace_train"), "parameters": parameters}
        process = GraceTrainCalculation
    start = time.perf_counter()
    results, node = run_get_node(process, training_set=train_node, **inputs)
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f"{arm}: [{node.exit_status}] {node.exit_message}")
    return results["potential"], wall, node.pk


def errors(calculator, structures):
    de, df, ds = [], [], []
    for atoms in structures:
        copy = atoms.copy()
        copy.calc = calculator
        de.append((copy.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        df.append(copy.get_forces() - atoms.get_forces())
        ds.append(copy.get_stress() - atoms.get_stress())
    return {
        "E": 1000 * float(np.sqrt(np.mean(np.square(de)))),
        "F": 1000 * float(np.sqrt(np.mean(np.concatenate(df) ** 2))),
        "S": float(np.sqrt(np.mean(np.square(ds)))) / GPa,
    }


def spreads(structures):
    energies = np.array([a.get_potential_energy() / len(a) for a in structures])
    forces = np.concatenate([a.get_forces() for a in structures])
    stresses = np.array([a.get_stress() for a in structures])
    return {
        "E": 1000 * float(energies.std()),
        "F": 1000 * float(np.sqrt(np.mean(forces**2))),
        "S": float(np.sqrt(np.mean(stresses**2))) / GPa,
    }


def elastic(calculator):
    constants = cubic_elastic_constants(bulk("Cu", "fcc", a=3.6, cubic=True), calculator)
    return {name: constants[name] for name in ("C11", "C12", "C44", "lattice_constant")}


cache_path = pathlib.Path(args.cache)
cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
reference = cache.setdefault("EMT", elastic(EMT()))
arms = args.arms.split(",")
seeds = [int(s) for s in args.seeds.split(",")]
runs = [(d, s) for d in args.datasets.split(",") for s in (seeds if d == "sheared" else seeds[:1])]
runs.sort(key=lambda run: run[1])  # every dataset's first seed before any second seed
for dataset, seed in runs if not args.print_only else []:
    train, test = datasets(dataset, seed)
    cache.setdefault("spread", {})[f"{dataset}/{seed}"] = spreads(test)
    for arm in arms:
        key = f"{dataset}/{seed}/{arm}"
        if key in cache:
            continue
        potential, wall, pk = fit(arm, train, seed)
        calculator = potential.get_calculator()
        cache[key] = {"wall": wall, "pk": pk, **errors(calculator, test), **elastic(calculator)}
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache, indent=1))
        print(f"{key}: {json.dumps(cache[key])}", flush=True)

print(
    f"\nEMT reference: C11 {reference['C11']:.1f}, C12 {reference['C12']:.1f}, C44 {reference['C44']:.1f} GPa "
    f"at a = {reference['lattice_constant']:.4f} Å. pacemaker and gracemaker: BFGS, {args.maxiter} iterations "
    f"(gracemaker 'adam': {args.epochs} epochs); gracemaker loss weights energy 16, forces 32, stress w."
)
print(
    f"{'data/seed':12s} {'fit':26s} {'E RMSE/spread':>14s} {'F RMSE/spread':>14s} {'S RMSE/RMS (%)':>20s} "
    f"{'wall s':>7s} {'C11 (err %)':>13s} {'C12 (err %)':>13s} {'C44 (err %)':>13s}"
)
print(f"{'':12s} {'':26s} {'meV/atom':>14s} {'meV/Å':>14s} {'GPa':>20s}")
summary = {}
for key, row in cache.items():
    if key.count("/") != 2:
        continue
    dataset, seed, arm = key.split("/")
    spread = cache["spread"][f"{dataset}/{seed}"]
    ratio = 100 * row["S"] / spread["S"]
    relative = {name: 100 * (row[name] - reference[name]) / reference[name] for name in ("C11", "C12", "C44")}
    summary.setdefault((dataset, arm), []).append((ratio, row["wall"], relative, row["E"], row["F"], seed))
    constants = " ".join(f"{row[n]:6.1f} ({relative[n]:+5.1f})" for n in ("C11", "C12", "C44"))
    print(
        f"{dataset + '/' + seed:12s} {arm:26s} {row['E']:6.2f}/{spread['E']:6.2f} {row['F']:6.1f}/{spread['F']:6.1f} "
        f"{row['S']:6.3f}/{spread['S']:5.2f} ({ratio:5.1f}) {row['wall']:7.0f} {constants}"
    )
print(
    "\nmedians over seeds: stress RMSE / RMS (%), wall (s), largest |elastic constant error| (%), E and F RMSE "
    "(meV/atom, meV/Å) and their ratios to pacemaker's medians on the same data and seeds"
)
for (dataset, arm), values in summary.items():
    worst = [max(abs(v) for v in relative.values()) for _, _, relative, *_ in values]
    energy, force = (statistics.median(v[k] for v in values) for k in (3, 4))
    # pacemaker's medians over the seeds this arm has (like for like when an arm has fewer seeds)
    seeds_here = {v[5] for v in values}
    pace = [v for v in summary.get((dataset, "pacemaker"), []) if v[5] in seeds_here]
    ratios = ""
    if pace:
        ratios = (
            f"  E/pacemaker {energy / statistics.median(v[3] for v in pace):4.2f}"
            f"  F/pacemaker {force / statistics.median(v[4] for v in pace):4.2f}"
            f"  wall/pacemaker {statistics.median(v[1] for v in values) / statistics.median(v[1] for v in pace):4.2f}"
        )
    print(
        f"{dataset:8s} {arm:26s} {statistics.median(v[0] for v in values):6.1f} "
        f"{statistics.median(v[1] for v in values):7.0f} {statistics.median(worst):6.1f} {energy:6.2f} {force:6.1f}"
        f"{ratios}  ({len(values)} seed(s))"
    )
