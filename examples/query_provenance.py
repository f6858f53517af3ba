"""Ask the provenance graph: which potentials were trained from a dataset, and where a potential came from.

Run with:  verdi run examples/query_provenance.py
"""

from aiida import orm
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

# 2. The full lineage of the newest deployable potential (with .yace), back to its structures.
query = orm.QueryBuilder().append(PacePotentialData, filters={"attributes.has_yace": True}, project="*")
query.order_by({PacePotentialData: {"ctime": "desc"}})
potential = query.first(flat=True)
if potential is None:
    raise SystemExit("no deployable potential yet: run examples/train_from_extxyz.py first")
print(f"\nlineage of potential {potential.uuid}:")
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
