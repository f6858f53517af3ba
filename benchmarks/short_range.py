"""Short range on multi-element data: no baseline, one global ZBL window, per-pair ZBL windows from the data.

Run (after `make demo`, which creates the profile and the codes):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/short_range.py

Reference: ASE's EMT on random fcc alloys of Cu, Ni, Au and Pd (`reference_data.alloy_emt`: each cell its own
composition, strain up to ±4 %, rattle 0.1 Å, and in a fifth of the cells one close pair), standing in for DFT.
Each element pair has its own shortest distance. One split (80 % training, 20 % test), then three
`TrainingWorkChain` runs with the real pacemaker, the same basis and iterations, differing only in the baseline:

- no baseline;
- one global ZBL window, as before per-pair windows existed: outer cutoff = the shortest distance of any pair in
  the training data, inner = 0.75 of it;
- `{"type": "zbl"}`: a window per pair, derived from each pair's shortest training distance (the same rule).

`short_range_check="warning"` so that every run returns its potential; the work chain's own `short_range` report
gives each pair's verdict. Prints the test errors (meV/atom, meV/Å, next to the spread of the test data), a table
of the pairs (data minimum, windows, verdicts, well depth) and writes the dimer curves of every pair, with EMT's,
to docs/images/short_range_dimers.png.
"""

import argparse
import math
import pathlib
import time

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from ase import Atoms
from ase.calculators.emt import EMT

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.physics.reference_data import alloy_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain
from aiida_mlip_trainer.workflows.functions.training_set import split_training_set

parser = argparse.ArgumentParser()
parser.add_argument("--structures", type=int, default=100)
parser.add_argument("--maxiter", type=int, default=300)
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--plot", default="docs/images/short_range_dimers.png")
parser.add_argument("--only", default="no baseline,global window,per-pair windows")
parser.add_argument("--close-pairs", default=None, help="comma-separated pairs that get close contacts, e.g. Cu-Ni")
parser.add_argument("--close-fraction", type=float, default=0.2, help="fraction of cells with one close pair")
parser.add_argument("--close-range", default="0.82,0.92", help="close pair distance as a fraction of the nearest")
args = parser.parse_args()

codes = {name: f"{name}@localhost" for name in ("pacemaker", "pace_activeset", "pace_yaml2yace")}
# A small basis (1064 functions for four elements), so one fit takes minutes on two busy cores.
OVERRIDES = {
    "potential": {
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1, 1, 0.5], "ndensity": 2}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 5.0, "dcut": 0.01}},
        # the protocol's per-element cap (40 in "fast") lifted: 266 functions per element
        "functions": {
            "number_of_functions_per_element": 300,
            "ALL": {"nradmax_by_orders": [8, 3], "lmax_by_orders": [0, 2]},
        },
    },
    "fit": {"maxiter": args.maxiter},
}

close = {
    "close_pair_fraction": args.close_fraction,
    "close_pair_range": tuple(float(x) for x in args.close_range.split(",")),
    "close_pairs": args.close_pairs.split(",") if args.close_pairs else None,
}
data = TrainingSetData(alloy_emt(args.structures, seed=args.seed, **close)).store()
split = split_training_set(data, orm.Float(0.2), orm.Int(args.seed))
train, test = split["train"], split["test"]
minima = train.pair_min_distances()
shortest = math.floor(min(minima.values()) * 1000) / 1000
variants = {
    "no baseline": None,
    "global window": {"type": "zbl", "params": {"inner_cutoff": round(0.75 * shortest, 3), "cutoff": shortest}},
    "per-pair windows": {"type": "zbl"},
}
variants = {label: spec for label, spec in variants.items() if label in args.only.split(",")}

runs = {}
for label, baseline in variants.items():
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes, train, "fast", {"selection": None, "training": {"pace": {"parameters": OVERRIDES}}}, test_set=test
    )
    builder.short_range_check = orm.Str("warning")
    if baseline is not None:
        builder.physics_baseline = orm.Dict(baseline)
    start = time.perf_counter()
    results, node = run_get_node(builder)
    if not node.is_finished_ok:
        raise SystemExit(f"{label}: TrainingWorkChain<{node.pk}> [{node.exit_status}] {node.exit_message}")
    runs[label] = results
    print(f"{label}: TrainingWorkChain<{node.pk}> in {time.perf_counter() - start:.0f} s", flush=True)

elements = train.elements
print(f"\nclose contacts: {close}")
print(
    f"{args.structures} alloy cells ({'/'.join(elements)}, EMT), {train.num_structures} training / "
    f"{test.num_structures} test, {runs[next(iter(runs))]['potential'].num_functions} functions, maxiter {args.maxiter}"
)
metrics = next(iter(runs.values()))["metrics"]["reference"]
print(
    f"test data spread: energy {metrics['energy_per_atom_std']:.1f} meV/atom, force RMS "
    f"{metrics['force_component_rms']:.0f} meV/Å, stress RMS {metrics['stress_component_rms']:.2f} GPa"
)
print(f"{'baseline':18s} {'E RMSE':>9s} {'F RMSE':>9s} {'S RMSE':>8s} {'pairs repulsive':>16s}  not repulsive")
print(f"{'':18s} {'meV/atom':>9s} {'meV/Å':>9s} {'GPa':>8s}")
for label, results in runs.items():
    m, report = results["metrics"].get_dict(), results["short_range"].get_dict()
    count = len(report["pairs"]) - len(report["not_repulsive"])
    print(
        f"{label:18s} {m['energy_rmse']:9.2f} {m['force_rmse']:9.1f} {m['stress_rmse']:8.3f} "
        f"{count:>7d} of {len(report['pairs']):<6d}  {', '.join(report['not_repulsive']) or '-'}"
    )

print("\nper pair: shortest training distance, windows (inner/outer, Å), verdict below the data minimum")
print("(the dimer's verdict, and for a pair of one element the compressed fcc's), the deepest spurious well of")
print("either (eV; fcc per atom), E(0.5 d) - E(d) of the dimer (eV)")
derived = runs.get("per-pair windows")
for pair, d_min in minima.items():
    cells = []
    for results in runs.values():
        entry = results["short_range"]["pairs"][pair]
        verdict = "ok" if entry["repulsive"] else "NO"
        fcc = "" if "fcc" not in entry else (" fcc ok" if entry["fcc"]["repulsive"] else " fcc NO")
        depth = max(entry[c]["well_depth"] for c in ("dimer", "fcc") if c in entry)
        cells.append(f"{verdict + fcc:10s} {depth:7.2f} {entry['dimer']['rise_below_minimum']:7.1f}")
    window = derived["short_range"]["pairs"][pair]["window"] if derived else None
    windows = f"{0.75 * shortest:.3f}/{shortest:.3f}" + (f"  {window[0]:.3f}/{window[1]:.3f}" if window else "")
    print(f"{pair:6s} {d_min:6.3f}  {windows:26s} " + " | ".join(cells))
print("columns: " + " | ".join(runs))

# The dimer curves of every pair, relative to the separated atoms, against EMT's.
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

pairs = list(minima)
columns = 5
figure, axes = plt.subplots(-(-len(pairs) // columns), columns, figsize=(3.4 * columns, 5.6), squeeze=False)
emt = EMT()
for axis, pair in zip(axes.ravel(), pairs, strict=False):
    a, b = pair.split("-")
    d_min = minima[pair]
    r = np.linspace(0.6 * d_min, 1.3 * d_min, 141)
    reference = []
    for distance in r:
        dimer = Atoms(a + b, positions=[[0, 0, 0], [distance, 0, 0]])
        dimer.calc = emt
        reference.append(dimer.get_potential_energy())
    far = Atoms(a + b, positions=[[0, 0, 0], [20.0, 0, 0]])
    far.calc = emt
    axis.plot(r, np.array(reference) - far.get_potential_energy(), "k--", label="EMT (reference)")
    for label, results in runs.items():
        curve = results["short_range"].creator.outputs.curves.get_array(f"dimer_{a}_{b}")
        keep = curve[:, 0] >= 0.6 * d_min
        axis.plot(curve[keep, 0], curve[keep, 1], label=label)
    axis.axvline(d_min, color="0.4", linestyle=":", label="shortest in data")
    axis.axvspan(r[0], shortest, color="0.92", label="global window and below")
    axis.set_ylim(-6, 20)
    axis.set_title(pair, fontsize=10)
    axis.set_xlabel("distance (Å)")
axes[0, 0].set_ylabel("dimer energy (eV)")
axes[-1, 0].set_ylabel("dimer energy (eV)")
handles, labels = axes[0, 0].get_legend_handles_labels()
figure.legend(handles, labels, loc="lower center", ncol=6, fontsize=8)
figure.tight_layout(rect=(0, 0.06, 1, 1))
pathlib.Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
figure.savefig(args.plot, dpi=100)
print(f"dimer curves written to {args.plot}")
