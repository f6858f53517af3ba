"""Direct fit against delta learning on an LJ and on a ZBL baseline, in and outside the training domain.

Run (after `make demo`, which creates the profile and the code):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/delta_learning.py

Reference: ASE's EMT for fcc copper (a many-body potential standing in for DFT). Training data have no close
contacts (strain within ±3 %, rattle 0.08 Å). The same ACE basis and iterations are fitted three times with
PaceTrainCalculation: on the labels (direct), on labels minus a Lennard-Jones baseline, and on labels minus a ZBL
baseline switched off at the shortest training distance. The LJ baseline is a soft pair repulsion (epsilon 30 meV,
sigma 2.0 Å, cut at 3.5 Å; a stiffer LJ such as Halicioglu & Pound's 0.41 eV / 2.34 Å leaves a residual the same
basis cannot fit: 83 meV/Å in the domain). Each is evaluated through its node's ASE calculator
(ACE + baseline) on: held-out structures like the training ones; compressed cells (−8 to −12 %); cells with one
close pair (1.5–2.0 Å). Prints energy (meV/atom) and force (meV/Å per component) RMSEs next to each set's own
spread, and writes the Cu–Cu dimer curve to docs/images/dimer_curve.png.
"""

import argparse
import pathlib

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt, shortest_distance
from aiida_mlip_trainer.workflows.functions.baseline import subtract_baseline

parser = argparse.ArgumentParser()
parser.add_argument("--code", default="pacemaker@localhost")
parser.add_argument("--train", type=int, default=40)
parser.add_argument("--maxiter", type=int, default=150)
parser.add_argument("--plot", default="docs/images/dimer_curve.png")
parser.add_argument("--only", default="direct,LJ baseline,ZBL baseline", help="comma-separated subset of the fits")
parser.add_argument("--lj", default="0.03,2.0,3.5", help="LJ baseline epsilon (eV), sigma (Å), cutoff (Å)")
args = parser.parse_args()
code = orm.load_code(args.code)


def labelled(atoms):
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def close_pair_structures(count, seed):
    """Training-like cells in which one atom is pushed towards a neighbour to 1.5–2.0 Å."""
    rng = np.random.default_rng(seed)
    structures = []
    for atoms in copper_emt(count, seed=seed):
        atoms = atoms.copy()
        distances = atoms.get_distances(0, range(1, len(atoms)), mic=True, vector=True)
        neighbour = int(np.argmin(np.linalg.norm(distances, axis=1)))
        vector = distances[neighbour]
        target = rng.uniform(1.5, 2.0)
        atoms.positions[0] += vector * (1 - target / np.linalg.norm(vector))
        structures.append(labelled(atoms))
    return structures


def compressed(count, seed):
    rng = np.random.default_rng(seed)
    structures = []
    for atoms in copper_emt(count, seed=seed):
        atoms = atoms.copy()
        atoms.calc = None
        atoms.set_cell(atoms.cell * (1 - rng.uniform(0.08, 0.12)), scale_atoms=True)
        structures.append(labelled(atoms))
    return structures


training = copper_emt(args.train + 10, seed=21)
d_min = shortest_distance(training)
sets = {
    "in domain": training[args.train :],
    "compressed −8…−12 %": compressed(10, seed=22),
    "close pair 1.5–2.0 Å": close_pair_structures(10, seed=23),
}
epsilon, sigma, lj_cutoff = (float(x) for x in args.lj.split(","))
baselines = {
    "direct": None,
    "LJ baseline": {"type": "lj", "params": {"epsilon": epsilon, "sigma": sigma, "cutoff": lj_cutoff}},
    "ZBL baseline": {"type": "zbl", "params": {"inner_cutoff": 1.0, "cutoff": round(d_min, 2)}},
}
baselines = {label: spec for label, spec in baselines.items() if label in args.only.split(",")}
parameters = {
    "potential": {
        "deltaSplineBins": 0.001,
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": [8, 4, 3], "lmax_by_orders": [0, 3, 2]}},
    },
    "fit": {"loss": {"kappa": 0.3, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS", "maxiter": args.maxiter},
    "backend": {"evaluator": "tensorpot", "batch_size": 50, "display_step": 50},
}

train_node = TrainingSetData(training[: args.train]).store()
potentials = {}
for label, spec in baselines.items():
    fit_set = train_node if spec is None else subtract_baseline(train_node, orm.Dict(spec))
    results, node = run_get_node(PaceTrainCalculation, code=code, training_set=fit_set, parameters=parameters)
    if not node.is_finished_ok:
        raise SystemExit(f"{label}: [{node.exit_status}] {node.exit_message}")
    potentials[label] = results["potential"]
    print(f"{label}: fitted in {results['metrics']['wall_time']:.0f} s (calculation {node.pk})", flush=True)


def errors(potential, structures):
    calculator = potential.get_calculator()
    de, df = [], []
    for atoms in structures:
        copy = atoms.copy()
        copy.calc = calculator
        de.append((copy.get_potential_energy() - atoms.get_potential_energy()) / len(atoms))
        df.append(copy.get_forces() - atoms.get_forces())
    return 1000 * np.sqrt(np.mean(np.square(de))), 1000 * np.sqrt(np.mean(np.concatenate(df) ** 2))


print(f"\ntraining: {args.train} Cu structures (EMT), shortest distance {d_min:.2f} Å, maxiter {args.maxiter}")
header = f"{'test set':24s} {'spread E / F':>18s} " + " ".join(f"{label:>22s}" for label in potentials)
print(header)
print(" " * 24 + f" {'meV/atom / meV/Å':>18s} " + " ".join(f"{'E RMSE / F RMSE':>22s}" for _ in potentials))
for name, structures in sets.items():
    energies = np.array([a.get_potential_energy() / len(a) for a in structures])
    forces = np.concatenate([a.get_forces() for a in structures])
    spread = f"{1000 * energies.std():.1f} / {1000 * np.sqrt(np.mean(forces**2)):.0f}"
    cells = " ".join(f"{e:10.1f} / {f:9.1f}" for e, f in (errors(p, structures) for p in potentials.values()))
    print(f"{name:24s} {spread:>18s} {cells}")

distances = np.linspace(0.6, 5.0, 221)
curves = {}
for label, potential in {"EMT (reference)": None, **potentials}.items():
    calculator = EMT() if potential is None else potential.get_calculator()
    values = []
    for r in distances:
        dimer = Atoms("Cu2", positions=[[0, 0, 0], [r, 0, 0]])
        dimer.calc = calculator
        values.append(dimer.get_potential_energy())
    # relative to the separated atoms (EMT's isolated atoms are not at zero energy)
    curves[label] = np.array(values) - values[-1]
below = distances <= d_min
for label, values in curves.items():
    rising = bool(np.all(np.diff(values[below]) < 0))
    print(
        f"dimer {label:16s} E(0.6 Å) = {values[0]:9.1f} eV, E(1.5 Å) = {np.interp(1.5, distances, values):7.2f} eV, "
        f"monotonic repulsive below {d_min:.2f} Å: {rising}"
    )

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

figure, axis = plt.subplots(figsize=(6, 4))
for label, values in curves.items():
    axis.plot(distances, values, label=label, linestyle="--" if label.startswith("EMT") else "-")
axis.axvspan(distances[0], d_min, color="0.9", label="no training data")
axis.set_ylim(-8, 40)
axis.set_xlabel("Cu–Cu distance (Å)")
axis.set_ylabel("dimer energy E(r) − E(5 Å) (eV)")
axis.legend()
figure.tight_layout()
pathlib.Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
figure.savefig(args.plot, dpi=120)
print(f"dimer curve written to {args.plot}")
