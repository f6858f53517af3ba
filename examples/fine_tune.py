"""Fine-tune a copper potential on new data (cells with vacancies and larger strain): training starts from its
weights, selection counts its active set as covered, and the graph links the new potential to the previous one.

Run with:  verdi run examples/fine_tune.py [POTENTIAL]

POTENTIAL (pk or UUID of a PacePotentialData) is the potential to start from. Without it the script takes the
potential of the newest finished TrainingWorkChain whose elements are those of the new data (['Cu']): after
`make demo`, the demo's potential. It prints which potential it took and why, and stops with a one-line message
when none fits.
"""

import sys

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.engine import run_get_node

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData
from aiida_mlip_trainer.physics.reference_data import copper_emt
from aiida_mlip_trainer.workflows import TrainingWorkChain

new_cells = copper_emt(24, seed=7, vacancies=2, strain=0.06)
elements = sorted(set(new_cells[0].get_chemical_symbols()))

if len(sys.argv) > 1:
    try:
        previous = orm.load_node(sys.argv[1])
    except (NotExistent, MultipleObjectsError) as error:
        sys.exit(f"fine_tune.py: {error}")
    if not isinstance(previous, PacePotentialData):
        sys.exit(f"fine_tune.py: node {sys.argv[1]} is a {previous.__class__.__name__}, not a PacePotentialData")
    if sorted(previous.elements) != elements:
        sys.exit(f"fine_tune.py: potential {sys.argv[1]} has elements {previous.elements}, the new data {elements}")
    print(f"fine-tuning PacePotentialData<{previous.pk}> {previous.uuid}: given on the command line")
else:
    query = orm.QueryBuilder().append(TrainingWorkChain, filters={"attributes.exit_status": 0}, tag="wc", project="*")
    query.append(PacePotentialData, with_incoming="wc", edge_filters={"label": "potential"}, project="*")
    query.order_by({TrainingWorkChain: {"ctime": "desc"}})
    fitting = [(chain, node) for chain, node in query.iterall() if sorted(node.elements) == elements]
    if not fitting:
        sys.exit(
            f"fine_tune.py: no finished TrainingWorkChain made a potential of {elements}: run "
            "examples/train_from_extxyz.py (make demo) first, or give a potential: verdi run examples/fine_tune.py PK"
        )
    chain, previous = fitting[0]
    print(
        f"fine-tuning PacePotentialData<{previous.pk}> {previous.uuid}: the potential of the newest finished "
        f"TrainingWorkChain<{chain.pk}> with elements {elements} (those of the new data)"
    )

new_data = TrainingSetData(new_cells).store()
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
