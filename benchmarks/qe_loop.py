"""The active-learning loop labelled by Quantum ESPRESSO: 2-atom silicon cells, pw.x through the QE oracle.

Run (after `make demo`, which creates the profile; needs Debian's pw.x and quantum-espresso-data, `scripts/qe.sh`):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/qe_loop.py

The loop (`ActiveLearningWorkChain`) starts from ``--cells`` unlabelled 2-atom diamond cells (lattice constant within
±2 % of 5.43 Å, rattled 0.05 Å) and labels them first with the oracle: aiida-quantumespresso's ``PwBaseWorkChain``
built by ``qe_oracle`` (protocol "fast", the family of ``qe_pseudo_family``: Si.pbe-rrkj.UPF at its 20 Ry, forces and
stress on, a k-point mesh of ``--kpoints-distance``; 1.1 /Å gives every one of these cells 2×2×2:
1.0 /Å would give some 3×3×3, their reciprocal vectors of about 2.0 /Å straddling it, and energies inconsistent by
hundreds of meV/atom). A quarter of them is held out
(``test_fraction``). Each round fits a potential (the "fast" protocol's basis cut to ``--functions``: the active set
needs a distinct environment per function, and a 2-atom cell holds one; ``--maxiter`` BFGS iterations, fine-tuned
from the previous round), runs MD with it at 300 and 900 K, and pw.x labels up to ``--per-round`` D-optimal picks
among the frames where it extrapolates (γ ≥ ``--gamma-collect``).

Printed per round: pw.x runs made so far (the loop's oracle calls), training structures, the held-out errors (energy
RMSE in meV/atom, force RMSE in meV/Å per component) next to the held-out data's spread (energy-per-atom standard
deviation, force RMS), the largest γ of the round's exploration; then why the loop stopped, and the PNG of the
learning curve (the work chain's ``learning_curve_plot``) when ``--plot`` names a path.
"""

from __future__ import annotations

import argparse
import shutil
import time

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.launch import TRAINING_TOOLS, get_or_create_code, get_or_create_codes
from aiida_mlip_trainer.oracles import qe_oracle, qe_pseudo_family
from aiida_mlip_trainer.workflows.active_learning import ActiveLearningWorkChain


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=14, help="unlabelled 2-atom cells the loop labels first")
    parser.add_argument("--rounds", type=int, default=2, help="fits of the loop (max_rounds)")
    parser.add_argument("--per-round", type=int, default=3, help="pw.x runs per round at most (D-optimal picks)")
    parser.add_argument("--maxiter", type=int, default=60, help="BFGS iterations of each fit")
    parser.add_argument("--functions", type=int, default=8, help="basis functions per element (the fast protocol: 40)")
    parser.add_argument("--gamma-collect", type=float, default=2.0)
    parser.add_argument("--kpoints-distance", type=float, default=1.1, help="1/Å: 2×2×2 for all these cells")
    parser.add_argument("--plot", default=None, help="copy the loop's learning-curve PNG here")
    args = parser.parse_args(argv)
    # The active set needs a distinct atomic environment per basis function among the fitted cells (three quarters).
    # A 2-atom cell holds one: its two atoms are each other's mirror image (any two points in a periodic cell are
    # centrosymmetric), and ACE's descriptors do not tell mirror images apart.
    held_out = min(args.cells - 1, max(1, round(0.25 * args.cells)))  # as split_training_set cuts test_fraction
    if args.cells - held_out < args.functions:
        parser.error(f"--cells {args.cells}: fewer fitted cells than the {args.functions} functions")
    return args


def silicon_cells(count: int, seed: int = 7) -> list:
    """``count`` 2-atom diamond silicon cells, lattice constant within ±2 % of 5.43 Å, rattled 0.05 Å."""
    rng = np.random.default_rng(seed)
    cells = []
    for index in range(count):
        atoms = bulk("Si", "diamond", a=5.43 * (1 + rng.uniform(-0.02, 0.02)))
        atoms.rattle(0.05, seed=int(rng.integers(2**31)))
        atoms.info["name"] = f"Si2_{index}"
        cells.append(atoms)
    return cells


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    pw = shutil.which("pw.x")
    if pw is None:
        raise SystemExit("no pw.x on PATH: scripts/qe.sh installs Debian's quantum-espresso")
    qe_pseudo_family()
    codes = get_or_create_codes([*TRAINING_TOOLS, "explore"])
    oracle = qe_oracle(get_or_create_code("pw.x", "quantumespresso.pw"), ["Si"],
                       overrides={"kpoints_distance": args.kpoints_distance})  # fmt: skip
    structures = TrainingSetData(silicon_cells(args.cells), labelled=False).store()
    fit = {
        "fit": {"maxiter": args.maxiter},
        "potential": {"functions": {"number_of_functions_per_element": args.functions}},
    }
    builder = ActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        structures,
        {
            "temperatures": [300, 900],
            "steps": 200,
            "timestep": 1.0,
            "sample_interval": 10,
            "gamma_collect": args.gamma_collect,
        },  # fmt: skip
        "fast",
        {
            "training": {"training": {"pace": {"parameters": fit}, "max_iterations": 1}},
            "selection": {"max_structures": args.per_round},
            "labeling": {"max_concurrent": 1},  # one pw.x at a time on a small machine
        },
        oracle=oracle,
        test_fraction=orm.Float(0.25),
        explore_count=orm.Int(1),
        max_rounds=orm.Int(args.rounds),
    )
    builder.training.short_range_check = orm.Str("warning")  # a short fit: report, do not fail on it
    start = time.perf_counter()
    results, node = run_get_node(builder)
    wall = time.perf_counter() - start
    if "summary" not in results:
        raise SystemExit(f"ActiveLearningWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    summary = results["summary"].get_dict()
    pw_runs = sum(1 for n in node.called_descendants if n.process_label == "PwCalculation")
    # the held-out validation of each round: the inputs of the learning-curve calcfunction
    curve = results["learning_curve_plot"].creator
    metrics = {row["round"]: curve.inputs[f"metrics_{row['round']}"].get_dict() for row in summary["rounds"]}

    status = f"[{node.exit_status}] {node.exit_message or 'finished'}"
    print(f"ActiveLearningWorkChain<{node.pk}>: {status} in {wall:.0f} s; {summary['oracle_calls']} oracle calls, "
          f"{pw_runs} pw.x runs (PwCalculation)")  # fmt: skip
    print(f"{'round':>5s} {'pw.x calls':>10s} {'structs':>7s} {'E meV/atom':>10s} {'E spread':>8s} "
          f"{'F meV/Å':>8s} {'F RMS':>6s} {'max γ':>7s}")  # fmt: skip
    for row in summary["rounds"]:
        reference = metrics[row["round"]]["reference"]
        gamma = f"{row['max_gamma']:7.2f}" if row["max_gamma"] is not None else f"{'-':>7s}"
        print(
            f"{row['round']:5d} {row['oracle_calls']:10d} {row['training_structures']:7d} {row['energy_rmse']:10.2f} "
            f"{reference['energy_per_atom_std']:8.2f} {row['force_rmse']:8.1f} {reference['force_component_rms']:6.0f} "
            f"{gamma}"
        )
    print(f"stopped: {summary['stop_reason']}")
    if args.plot:
        with results["learning_curve_plot"].as_path() as path:
            shutil.copyfile(path, args.plot)
        print(f"learning curve plotted: {args.plot}")
    if not node.is_finished_ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
