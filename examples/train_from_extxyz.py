"""Train an ACE potential from an extxyz file with TrainingWorkChain: import, test split, ZBL baseline,
D-optimal selection, training with restarts, .yace, active set and validation, all in the provenance graph.

Run with:  verdi run examples/train_from_extxyz.py [structures.extxyz]

Without a file argument it first writes `cu_emt.extxyz`: 60 copper cells labelled by ASE's EMT (standing in for
your DFT data). Codes expected: pacemaker@localhost, pace_select@localhost, pace_activeset@localhost,
pace_yaml2yace@localhost (`make demo` creates them).
"""

import pathlib
import sys

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import run_get_node
from ase.io import write

from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain

if len(sys.argv) > 1:
    path = pathlib.Path(sys.argv[1])
    if not path.is_file():
        sys.exit(f"train_from_extxyz.py: no file {path}")
    print(f"structures: {path} (given on the command line)")
else:
    path = pathlib.Path("cu_emt.extxyz")
    write(path, copper_emt(40, seed=1) + copper_emt(20, seed=2, vacancies=1, strain=0.05), format="extxyz")
    print(f"wrote {path}: 60 labelled copper cells (EMT)")

CODES = {name: f"{name}@localhost" for name in ("pacemaker", "pace_select", "pace_activeset", "pace_yaml2yace")}
# Every input comes from the "fast" protocol; the builder can be read and edited before it runs.
try:
    builder = TrainingWorkChain.get_builder_from_protocol(
        CODES,
        orm.SinglefileData(path.absolute()),
        protocol="fast",
        overrides={"test_fraction": 0.2, "selection": {"max_structures": 30}},
        # ZBL takes over below each element pair's shortest distance in the data (a window per pair, derived by a
        # calcfunction): the potential stays repulsive where the data end, which the work chain checks at the end
        physics_baseline=orm.Dict({"type": "zbl"}),
    )
except (NotExistent, MultipleObjectsError) as error:  # a code missing, or two under one label
    sys.exit(f"train_from_extxyz.py: {error}")
results, node = run_get_node(builder)
if not node.is_finished_ok:
    print(f"TrainingWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    print(f"see: verdi process report {node.pk}")
    sys.exit(1)

potential, metrics = results["potential"], results["metrics"].get_dict()
print(f"TrainingWorkChain<{node.pk}> finished; verdi process report {node.pk}")
print(
    f"trained on {results['training_set'].num_structures} selected structures, "
    f"tested on {results['test_set'].num_structures} held-out ones"
)
print(
    f"potential node: {potential.uuid} (elements {potential.elements}, {potential.num_functions} functions, "
    f"baseline {potential.baseline['type']}, files {potential.base.repository.list_object_names()})"
)
print("LAMMPS:\n  " + "\n  ".join(potential.lammps_commands("cu.yace")))
reference = metrics["reference"]
print(
    f"test energy RMSE: {metrics['energy_rmse']:.2f} meV/atom "
    f"(reference energy spread: {reference['energy_per_atom_std']:.2f} meV/atom)"
)
print(
    f"test stress RMSE: {metrics['stress_rmse']:.3f} GPa "
    f"(reference stress RMS: {reference['stress_component_rms']:.3f} GPa)"
)
print(
    f"test force RMSE: {metrics['force_rmse']:.2f} meV/Å "
    f"(reference force RMS: {reference['force_component_rms']:.2f} meV/Å)"
)
