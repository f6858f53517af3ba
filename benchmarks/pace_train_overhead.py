"""Overhead of PaceTrainCalculation over a plain `pacemaker input.yaml`, on the same fit of about a minute.

Run (after `make demo`, which creates the profile and the code):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run benchmarks/pace_train_overhead.py -- --repeats 3

Both sides run the identical input.yaml on identical dataset files; they alternate, so that drifts of a noisy
machine hit both alike. The plain side is timed from process start to exit; the plugin side from the launch of
`run_get_node` to its return (input folder, pickles, job script, retrieval, parsing and storing included).
Prints every timing, the medians and their ratio.
"""

import argparse
import pathlib
import shutil
import statistics
import subprocess
import tempfile
import time

import yaml
from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.formats.pacemaker_input import build_input_yaml
from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

parser = argparse.ArgumentParser()
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--maxiter", type=int, default=300)
parser.add_argument("--code", default="pacemaker@localhost")
args = parser.parse_args()

code = orm.load_code(args.code)
training_set = TrainingSetData(argon_lennard_jones(40, seed=11)).store()
test_set = TrainingSetData(argon_lennard_jones(10, seed=12)).store()
parameters = {
    "potential": {
        "deltaSplineBins": 0.001,
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 7.0, "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": [8, 3, 2], "lmax_by_orders": [0, 2, 1]}},
    },
    "fit": {"loss": {"kappa": 0.5, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS", "maxiter": args.maxiter},
    "backend": {"evaluator": "tensorpot", "batch_size": 50, "display_step": 50},
}

plain_dir = pathlib.Path(tempfile.mkdtemp(prefix="pace-bench-"))
training_set.write_pacemaker_pickle(plain_dir / PaceTrainCalculation.TRAIN_FILENAME)
test_set.write_pacemaker_pickle(plain_dir / PaceTrainCalculation.TEST_FILENAME)
config = build_input_yaml(
    parameters,
    elements=training_set.elements,
    train_filename=PaceTrainCalculation.TRAIN_FILENAME,
    test_filename=PaceTrainCalculation.TEST_FILENAME,
)
(plain_dir / "input.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
executable = code.get_executable()


def run_plain() -> float:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="pace-plain-"))
    for name in ("input.yaml", PaceTrainCalculation.TRAIN_FILENAME, PaceTrainCalculation.TEST_FILENAME):
        shutil.copy(plain_dir / name, workdir / name)
    start = time.perf_counter()
    with open(workdir / "pacemaker.out", "w") as out, open(workdir / "pacemaker.err", "w") as err:
        subprocess.run([str(executable), "input.yaml"], cwd=workdir, stdout=out, stderr=err, check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(workdir)
    return elapsed


def run_plugin() -> float:
    start = time.perf_counter()
    _, node = run_get_node(
        PaceTrainCalculation, code=code, training_set=training_set, test_set=test_set, parameters=parameters
    )
    elapsed = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f"plugin run failed: [{node.exit_status}] {node.exit_message}")
    return elapsed


plain, plugin = [], []
for repeat in range(args.repeats):
    plain.append(run_plain())
    plugin.append(run_plugin())
    print(
        f"repeat {repeat + 1}: plain pacemaker {plain[-1]:.1f} s, PaceTrainCalculation {plugin[-1]:.1f} s", flush=True
    )

print(f"structures: {training_set.num_structures} train / {test_set.num_structures} test, maxiter {args.maxiter}")
print(f"median plain pacemaker:      {statistics.median(plain):.1f} s")
print(f"median PaceTrainCalculation: {statistics.median(plugin):.1f} s")
print(f"ratio (plugin / plain):      {statistics.median(plugin) / statistics.median(plain):.3f}")
