"""Fine-tune the latest potential of examples/train_from_extxyz.py on new data (cells with vacancies and larger
strain): training starts from its weights, selection counts its active set as covered, and the graph links the
new potential to the previous one.

Run with:  verdi run examples/fine_tune.py [potential UUID]
"""

import sys

from aiida import orm
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain

if len(sys.argv) > 1:
    previous = orm.load_node(sys.argv[1])
else:
    query = orm.QueryBuilder().append(TrainingWorkChain, filters={"attributes.exit_status": 0}, tag="wc")
    query.append(PacePotentialData, with_incoming="wc", edge_filters={"label": "potential"}, project="*")
    query.order_by({PacePotentialData: {"ctime": "desc"}})
    previous = query.first(flat=True)
    if previous is None:
        sys.exit("no finished TrainingWorkChain found: run examples/train_from_extxyz.py first")

new_data = TrainingSetData(copper_emt(24, seed=7, vacancies=2, strain=0.06)).store()
builder = TrainingWorkChain.get_builder_from_protocol(
    {name: f"{name}@localhost" for name in ("pacemaker", "pace_select", "pace_activeset", "pace_yaml2yace")},
    new_data,
    protocol="fast",
    overrides={"selection": {"max_structures": 12}, "training": {"pace": {"parameters": {"fit": {"maxiter": 60}}}}},
    previous_potential=previous,
)
if previous.baseline is not None:
    builder.physics_baseline = orm.Dict(previous.baseline)
results, node = run_get_node(builder)
if not node.is_finished_ok:
    sys.exit(f"TrainingWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
metrics = results["metrics"].get_dict()
print(f"fine-tuned from {previous.uuid}")
print(f"new potential: {results['potential'].uuid}")
print(
    f"test force RMSE: {metrics['force_rmse']:.2f} meV/Å "
    f"(reference force RMS: {metrics['reference']['force_component_rms']:.2f} meV/Å)"
)
