"""Materials properties of the demo's potential against its oracle (EMT): the table of docs/benchmarks.md.

Run after `make demo`, on its profile:

    PATH=$PWD/.venv/bin:$PATH AIIDA_PATH=$PWD/.aiida-demo verdi -p mlip-trainer-demo run benchmarks/demo_properties.py

It takes the potential of the newest finished TrainingWorkChain of the profile (copper, from
examples/train_from_extxyz.py), runs PropertyWorkChain with every property at its defaults and the EMT oracle (single
points on the potential's geometries, and EMT's own relaxation), and prints the table in Markdown with the work
chain's pk and the wall time.
"""

import sys
import time

from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_mlip_trainer.launch import get_or_create_code
from aiida_mlip_trainer.oracles import ase_oracle
from aiida_mlip_trainer.workflows import PropertyWorkChain, TrainingWorkChain

query = orm.QueryBuilder()
query.append(
    TrainingWorkChain,
    filters={"attributes.exit_status": 0},
    tag="chain",
    project="id",
)
query.append(orm.Data, with_incoming="chain", edge_filters={"label": "potential"}, project="*")
query.order_by({"chain": {"id": "desc"}})
found = query.first()
if found is None:
    sys.exit("demo_properties.py: no finished TrainingWorkChain in this profile: run `make demo` first")
chain_pk, potential = found
if potential.elements != ["Cu"]:
    sys.exit(f"demo_properties.py: the newest potential is of {potential.elements}, not the demo's copper")

SETTINGS = {"eos": {}, "elastic": {}, "vacancy": {}, "surface": {}, "phonons": {}, "md": {}}
builder = PropertyWorkChain.get_builder()
builder.job = {
    "code": get_or_create_code("mlip-trainer-properties", "mlip_trainer.properties"),
    "structure": orm.StructureData(ase=bulk("Cu", "fcc", a=3.61, cubic=True)),
    "parameters": orm.Dict(SETTINGS),
    "potential": potential,
}
builder.labeling = {
    "oracle": ase_oracle(get_or_create_code("mlip-trainer-ase-oracle", "mlip_trainer.ase_oracle"), "emt"),
    "max_concurrent": orm.Int(4),
}
builder.oracle_relaxation = orm.Bool(True)
start = time.perf_counter()
results, node = run_get_node(builder)
wall = time.perf_counter() - start
if not node.is_finished_ok:
    sys.exit(f"PropertyWorkChain<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")

table = results["table"].get_dict()
print(f"potential of TrainingWorkChain<{chain_pk}> ({potential.uuid}); PropertyWorkChain<{node.pk}>, {wall:.0f} s")
print("| property | unit | potential | EMT, same geometries | error | EMT, own relaxation | error |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for row in table["rows"]:
    cells = [row["property"], row["unit"], f"{row['potential']:.4g}"]
    for key in ("reference", "reference_relaxed"):
        relative, error = row.get(f"{key}_relative_error"), row.get(f"{key}_error")
        shown = f"{100 * relative:+.1f} %" if relative is not None else f"{1000 * error:+.2f} meV/atom"
        cells += [f"{row[key]:.4g}" if key in row else "", shown if error is not None else ""]
    print("| " + " | ".join(cells) + " |")
md = table["md"]
print(
    f"MD {md['temperature']:.0f} K, {md['time_ps']:.2f} ps: stopped {md['stopped']}, shortest distance "
    f"{md['min_distance']:.2f} Å, T {md['T_min']:.0f}-{md['T_max']:.0f} K"
)
