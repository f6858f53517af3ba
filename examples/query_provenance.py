"""Ask the provenance graph: which potentials were trained from a dataset, and where a potential came from.

Run with:  verdi run examples/query_provenance.py [POTENTIAL]

POTENTIAL (pk or UUID of a PacePotentialData, or of any data node) is the node whose lineage is printed; without
it, the newest deployable potential (one with a .yace). It stops with a one-line message when there is none.
"""

import sys

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent
from aiida.common.links import LinkType

from aiida_mlip_trainer.data import PacePotentialData, TrainingSetData

# 1. Every deployable potential (with .yace) trained, directly or through splitting, baseline subtraction,
#    selection and fine-tuning, from each dataset a user gave: imported from a file, or stored by hand.
datasets = orm.QueryBuilder().append(TrainingSetData, filters={"attributes.labelled": True}, project="*")
for (dataset,) in datasets.all():
    if dataset.creator is not None and dataset.creator.process_label != "import_training_set":
        continue  # a derived set (split, residual, selection): its origin is listed itself
    descendants = orm.QueryBuilder()
    descendants.append(TrainingSetData, filters={"id": dataset.pk}, tag="data")
    descendants.append(PacePotentialData, with_ancestors="data", filters={"attributes.has_yace": True}, project="uuid")
    potentials = descendants.distinct().all(flat=True)
    if potentials:
        print(
            f"dataset {dataset.pk} ({dataset.num_structures} structures, {dataset.elements}): "
            f"{len(potentials)} deployable potential(s): {', '.join(potentials)}"
        )

# 2. The full lineage of a potential (the one given, or the newest deployable one), back to its structures.
if len(sys.argv) > 1:
    try:  # any data node has a lineage: a potential, a training set, ...
        potential, why = orm.load_node(sys.argv[1]), "given on the command line"
    except (NotExistent, MultipleObjectsError) as error:
        sys.exit(f"query_provenance.py: {error}")
else:
    query = orm.QueryBuilder().append(PacePotentialData, filters={"attributes.has_yace": True}, project="*")
    query.order_by({PacePotentialData: {"ctime": "desc"}})
    potential = query.first(flat=True)
    if potential is None:
        sys.exit("query_provenance.py: no deployable potential yet: run examples/train_from_extxyz.py first")
    why = "the newest deployable potential (with .yace)"
print(f"\nlineage of {potential.__class__.__name__} {potential.uuid} ({why}):")
frontier, seen = [potential], set()
while frontier:
    node = frontier.pop()
    if node.pk in seen:
        continue
    seen.add(node.pk)
    creator = getattr(node, "creator", None)
    if creator is None:
        if isinstance(node, (TrainingSetData, PacePotentialData, orm.SinglefileData)):
            print(f"  origin: {node.__class__.__name__}<{node.pk}>")
        continue
    inputs = creator.base.links.get_incoming(link_type=(LinkType.INPUT_CALC, LinkType.INPUT_WORK)).all()
    print(
        f"  {node.__class__.__name__}<{node.pk}> <- {creator.process_label}<{creator.pk}>("
        + ", ".join(f"{link.link_label}={link.node.__class__.__name__}<{link.node.pk}>" for link in inputs)
        + ")"
    )
    frontier.extend(link.node for link in inputs if isinstance(link.node, orm.Data))
