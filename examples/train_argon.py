"""Train a small ACE potential for Lennard-Jones argon with the real `pacemaker`, through the plugin.

Run with:  verdi run examples/train_argon.py  [code label, default: pacemaker@localhost]
"""

import sys

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import run_get_node

from aiida_mlip_trainer.calculations import PaceTrainCalculation
from aiida_mlip_trainer.data import TrainingSetData
from aiida_mlip_trainer.physics.reference_data import argon_lennard_jones

label = sys.argv[1] if len(sys.argv) > 1 else "pacemaker@localhost"
try:
    code = orm.load_code(label)
except (NotExistent, MultipleObjectsError) as error:
    sys.exit(f"train_argon.py: code {label}: {error}")
print(f"pacemaker code: {code.full_label} ({'given on the command line' if len(sys.argv) > 1 else 'the default'})")

# 16 training and 6 test structures of 32 atoms; the test set comes from another random stream.
training_set = TrainingSetData(argon_lennard_jones(16, seed=1))
test_set = TrainingSetData(argon_lennard_jones(6, seed=2))

parameters = {
    "potential": {
        "deltaSplineBins": 0.001,
        "embeddings": {"ALL": {"npot": "FinnisSinclairShiftedScaled", "fs_parameters": [1, 1], "ndensity": 1}},
        "bonds": {"ALL": {"radbase": "SBessel", "radparameters": [5.25], "rcut": 7.0, "dcut": 0.01}},
        "functions": {"ALL": {"nradmax_by_orders": [8, 3, 2], "lmax_by_orders": [0, 2, 1]}},
    },
    "fit": {"loss": {"kappa": 0.5, "L1_coeffs": 1e-8, "L2_coeffs": 1e-8}, "optimizer": "BFGS", "maxiter": 100},
    "backend": {"evaluator": "tensorpot", "batch_size": 20, "display_step": 20},
}

results, node = run_get_node(
    PaceTrainCalculation,
    code=code,
    training_set=training_set,
    test_set=test_set,
    parameters=parameters,
    metadata={"options": {"max_wallclock_seconds": 1800}},
)
if not node.is_finished_ok:
    print(f"training failed: {node.process_state} [{node.exit_status}] {node.exit_message}")
    sys.exit(1)

metrics = results["metrics"].get_dict()
potential = results["potential"]
print(f"calculation: {node.pk} ({node.uuid})")
print(f"potential node: {potential.uuid} ({potential.num_functions} functions, cutoff {potential.cutoff} Å)")
print(f"iterations: {metrics['iterations']}, wall time: {metrics['wall_time']:.1f} s")
for label in ("train", "test"):
    errors, reference = metrics[label], metrics["reference"][label]
    print(
        f"{label}: energy RMSE {errors['energy_rmse']:.3f} meV/atom "
        f"(reference spread {reference['energy_per_atom_std']:.3f} meV/atom), "
        f"force RMSE {errors['force_rmse']:.2f} meV/Å"
    )
print(
    f"test force RMSE: {metrics['test']['force_rmse']:.2f} meV/Å "
    f"(reference force RMS: {metrics['reference']['test']['force_component_rms']:.2f} meV/Å)"
)
