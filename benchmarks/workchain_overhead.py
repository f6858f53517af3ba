"""Total wall time of TrainingWorkChain against the same steps run by hand with the pacemaker tools.

Run (after `make demo`, which creates the profile and the four codes):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/workchain_overhead.py --repeats 3

The same data (60 EMT copper cells, 12 held out, the rest reduced to 30 by pace_select with the unfitted basis),
the same settings (the "fast" protocol with the given maxiter) and the same steps on both sides:

- by hand, in a fresh directory: write the datasets and input.yaml, `pacemaker -dr` for the unfitted basis
  (what a user without the plugin would run), `pace_select` in rounds on the rest of the pool until 30 are picked
  (as the work chain does), `pacemaker input.yaml`, `pace_yaml2yace`, `pace_activeset`, and the validation on
  the held-out set in Python (ASE calculator);
- through the plugin: `run_get_node(TrainingWorkChain, ...)` (calcfunctions, four CalcJobs, storing everything).

They alternate; the script prints each timing, the medians and their ratio (goal: at most 1.15).
"""

import argparse
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd
import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import PaceTrainBaseWorkChain, TrainingWorkChain
from aiida_mlip_trainer.workflows.protocols import merge

parser = argparse.ArgumentParser()
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--maxiter", type=int, default=150)
args = parser.parse_args()

codes = {
    name: orm.load_code(f"{name}@localhost")
    for name in ("pacemaker", "pace_select", "pace_activeset", "pace_yaml2yace")
}
executables = {name: str(code.get_executable()) for name, code in codes.items()}
structures = copper_emt(48, seed=31) + copper_emt(12, seed=32, vacancies=1)
test_structures, train_structures = structures[::5], [s for i, s in enumerate(structures) if i % 5]
train = TrainingSetData(train_structures).store()
test = TrainingSetData(test_structures).store()
fast = PaceTrainBaseWorkChain.get_protocol_inputs("fast")["pace"]["parameters"]
parameters = merge(fast, {"fit": {"maxiter": args.maxiter}})
MAX_STRUCTURES = 30


def run(command, cwd):
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def by_hand() -> float:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="by-hand-"))
    start = time.perf_counter()
    train.write_pacemaker_pickle(workdir / "train.pckl.gzip")
    test.write_pacemaker_pickle(workdir / "test.pckl.gzip")
    config = build_input_yaml(
        parameters, elements=["Cu"], train_filename="train.pckl.gzip", test_filename="test.pckl.gzip"
    )
    (workdir / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    run([executables["pacemaker"], "input.yaml", "-dr"], workdir)  # writes the unfitted target_potential.yaml
    # selection in rounds on the rest of the pool until MAX_STRUCTURES, as the work chain does
    pool = pd.read_pickle(workdir / "train.pckl.gzip", compression="gzip")
    pool["pool_index"] = range(len(pool))
    picked = []
    for round_index in range(5):
        rest = pool[~pool["pool_index"].isin(picked)]
        rest.to_pickle(workdir / "rest.pckl.gzip", compression="gzip", protocol=4)
        output = f"selected_{round_index}.pkl.gz"
        needed = str(MAX_STRUCTURES - len(picked))
        run(
            [executables["pace_select"], "-p", "target_potential.yaml", "-m", needed, "-o", output, "rest.pckl.gzip"],
            workdir,
        )
        picked += pd.read_pickle(workdir / output)["pool_index"].tolist()
        if len(picked) >= MAX_STRUCTURES:
            break
    selected = pool[pool["pool_index"].isin(picked)].drop(columns="pool_index")
    selected.to_pickle(workdir / "train.pckl.gzip", compression="gzip", protocol=4)
    run([executables["pacemaker"], "input.yaml"], workdir)
    run([executables["pace_yaml2yace"], "output_potential.yaml", "-o", "output_potential.yace"], workdir)
    run([executables["pace_activeset"], "-d", "train.pckl.gzip", "output_potential.yaml"], workdir)
    from pyace import PyACECalculator

    calculator = PyACECalculator(str(workdir / "output_potential.yaml"))
    errors = []
    for atoms in test_structures:
        copy = atoms.copy()
        copy.calc = calculator
        errors.append(copy.get_forces() - atoms.get_forces())
    force_rmse = 1000 * np.sqrt(np.mean(np.concatenate(errors) ** 2))
    elapsed = time.perf_counter() - start
    print(f"  by hand: {len(selected)} selected, test force RMSE {force_rmse:.1f} meV/Å", flush=True)
    shutil.rmtree(workdir)
    return elapsed


def through_plugin() -> float:
    start = time.perf_counter()
    overrides = {
        "training": {"pace": {"parameters": {"fit": {"maxiter": args.maxiter}}}},
        # selection in layers on the rest of the pool, as by hand
        "selection": {"max_structures": MAX_STRUCTURES, "rounds": "layers", "max_rounds": 5},
    }
    builder = TrainingWorkChain.get_builder_from_protocol(
        codes,
        train,
        "fast",
        overrides,
        test_set=test,
        short_range_check=orm.Str("warning"),  # a direct fit, as by hand: reported, not failed
    )
    results, node = run_get_node(builder)
    elapsed = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f"TrainingWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    print(
        f"  plugin: {results['training_set'].num_structures} selected, test force RMSE "
        f"{results['metrics']['force_rmse']:.1f} meV/Å",
        flush=True,
    )
    return elapsed


hand, plugin = [], []
for repeat in range(args.repeats):
    hand.append(by_hand())
    plugin.append(through_plugin())
    print(f"repeat {repeat + 1}: by hand {hand[-1]:.1f} s, TrainingWorkChain {plugin[-1]:.1f} s", flush=True)
print(f"data: {train.num_structures} training / {test.num_structures} test cells, maxiter {args.maxiter}")
print(f"median by hand:           {statistics.median(hand):.1f} s")
print(f"median TrainingWorkChain: {statistics.median(plugin):.1f} s")
print(f"ratio (plugin / by hand): {statistics.median(plugin) / statistics.median(hand):.3f}")
