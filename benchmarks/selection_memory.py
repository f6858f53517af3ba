"""Peak memory of `pace_select` jobs against the pool's atoms and the basis size: the cost model of SelectionWorkChain.

Run (after `make demo`, which creates the profile and the codes):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/selection_memory.py \
        --cache benchmarks/results/selection_memory.json

Each measurement is one real `PaceSelectCalculation` (the job `SelectionWorkChain` submits for a pool or a chunk:
same files, same command line), selecting 100 structures from a pool of 32-atom copper cells
(`benchmarks/copper_pool.py`) with the unfitted basis of a protocol of `PaceTrainBaseWorkChain` ("fast": 36 functions,
rcut 5 Å; "moderate": 276 functions, rcut 6 Å; `--variants` adds others, e.g. the fast basis at rcut 6 Å). The
`pace_select` code is wrapped in `/usr/bin/time`, which records the job's peak resident memory (maximum RSS) and
wall time. The job is given a memory limit far above what it needs, so that pace_select holds the whole pool's
projections at once ("single-shot", the largest peak; with a tighter limit it works in batches and peaks lower):
the model is an upper bound.

The script fits peak = base + atoms · (a + b · functions) over all measurements, by least squares and as the upper
envelope (the model closest to the measurements that lies at or above every one of them: the one to size chunks
with, since a job must stay under its limit), and prints the table with each model's prediction next to each peak,
the constants in `aiida_mlip_trainer/workflows/selection.py` (`SELECT_BASE_BYTES`, `SELECT_BYTES_PER_ATOM`,
`SELECT_BYTES_PER_ATOM_FUNCTION`) included. The cache keeps finished
measurements (by basis and pool size), so that a rerun only measures what is missing.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np
from aiida import orm
from aiida.engine import run_get_node
from scipy.optimize import linprog

HERE = pathlib.Path(sys.argv[0]).resolve().parent  # under `verdi run`, __file__ is not the path
sys.path.insert(0, str(HERE))

from copper_pool import copper_cells  # noqa: E402

from aiida_mlip_trainer.calculations import PaceSelectCalculation  # noqa: E402
from aiida_mlip_trainer.data import TrainingSetData  # noqa: E402
from aiida_mlip_trainer.workflows import selection as selection_module  # noqa: E402
from aiida_mlip_trainer.workflows.functions.selection import unfitted_potential  # noqa: E402
from aiida_mlip_trainer.workflows.pace_train_base import PaceTrainBaseWorkChain  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000, 20000, 50000])
parser.add_argument(
    "--variants",
    nargs="+",
    default=["fast", "moderate"],
    help="protocol bases, optionally with another rcut and a largest pool size: fast, moderate:20000, fast@6",
)
parser.add_argument("--cache", default=None, help="JSON file of finished measurements")
parser.add_argument("--output", default=None, help="also write the printed table here")
args = parser.parse_args()
LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def parse_variant(text: str) -> tuple[str, str, float | None, int | None]:
    """``protocol[@rcut][:largest size]`` → (name, protocol, rcut or None, largest size or None)."""
    name, _, largest = text.partition(":")
    protocol, _, rcut = name.partition("@")
    return name, protocol, float(rcut) if rcut else None, int(largest) if largest else None


def basis_parameters(protocol: str, rcut: float | None) -> dict:
    parameters = PaceTrainBaseWorkChain.get_protocol_inputs(protocol)["pace"]["parameters"]
    if rcut is not None:
        for bond in parameters["potential"]["bonds"].values():
            bond["rcut"] = rcut
    return parameters


workdir = pathlib.Path(tempfile.mkdtemp(prefix="selection_memory_"))
peaks = workdir / "peaks.txt"
wrapper = workdir / "pace_select_timed"
wrapper.write_text(f'#!/bin/bash\nexec /usr/bin/time -f "%e %M" -a -o {peaks} {shutil.which("pace_select")} "$@"\n')
wrapper.chmod(0o755)
code = orm.InstalledCode(
    label=f"pace_select_timed_{workdir.name}",
    computer=orm.load_computer("localhost"),
    filepath_executable=str(wrapper),
    default_calc_job_plugin="mlip_trainer.pace_select",
).store()

cache_path = pathlib.Path(args.cache) if args.cache else None
cache = json.loads(cache_path.read_text()) if cache_path and cache_path.exists() else {}


def measure(pool: TrainingSetData, selector) -> dict:
    """One pace_select job on the pool: its peak RSS and wall time from /usr/bin/time, and whether it ran in one
    shot or in batches (from its log)."""
    before = peaks.read_text().splitlines() if peaks.exists() else []
    started = time.time()
    _, node = run_get_node(
        PaceSelectCalculation,
        code=code,
        pool=pool,
        potential=selector,
        max_structures=orm.Int(100),
        parameters=orm.Dict({"memory_limit": "256GB"}),  # single shot: the whole pool's projections at once
    )
    if not node.is_finished_ok:
        raise SystemExit(f"PaceSelectCalculation<{node.pk}> failed: [{node.exit_status}] {node.exit_message}")
    seconds, kib = peaks.read_text().splitlines()[len(before)].split()
    log = node.outputs.retrieved.base.repository.get_object_content("pace_select.err")
    mode = "single-shot" if "Single-shot mode" in log else "batches" if "Batch mode" in log else "?"
    return {
        "peak_bytes": int(kib) * 1024,
        "seconds": float(seconds),
        "engine_seconds": time.time() - started,
        "mode": mode,
        "pk": node.pk,
    }


variants = [parse_variant(text) for text in args.variants]
pools: dict[int, TrainingSetData] = {}
rows = []
for size in sorted(args.sizes):
    for name, protocol, rcut, largest in variants:
        if largest is not None and size > largest:
            continue
        key = f"{name}/{size}"
        if key not in cache:
            if size not in pools:
                pools[size] = TrainingSetData(copper_cells(size, labelled=False), labelled=False).store()
            parameters = basis_parameters(protocol, rcut)
            selector = unfitted_potential(orm.Dict(parameters), orm.List(["Cu"]))
            cache[key] = {
                "variant": name,
                "structures": size,
                "atoms": pools[size].num_atoms,
                "functions": selector.num_functions,
                "rcut": selector.cutoff,
                **measure(pools[size], selector),
            }
            if cache_path:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                cache_path.write_text(json.dumps(cache, indent=1))
            entry = cache[key]
            print(
                f"  {name} ({entry['functions']} functions) {size} structures: {entry['peak_bytes'] / 2**20:.0f} MiB, "
                f"{entry['seconds']:.0f} s, {entry['mode']}",
                flush=True,
            )
        rows.append(cache[key])

# peak = base + atoms * a + atoms * functions * b, two ways: least squares, and the upper envelope (the model with
# the least total excess over the measurements that lies at or above every one of them: a chunk size derived from
# it keeps every measured job under its limit).
atoms = np.array([row["atoms"] for row in rows], dtype=float)
functions = np.array([row["functions"] for row in rows], dtype=float)
peak = np.array([row["peak_bytes"] for row in rows], dtype=float)
design = np.column_stack([np.ones_like(atoms), atoms, atoms * functions])
least_squares = np.linalg.lstsq(design, peak, rcond=None)[0]
envelope = linprog(design.sum(axis=0), A_ub=-design, b_ub=-peak, bounds=[(0, None)] * 3).x
in_code = np.array(
    [
        selection_module.SELECT_BASE_BYTES,
        selection_module.SELECT_BYTES_PER_ATOM,
        selection_module.SELECT_BYTES_PER_ATOM_FUNCTION,
    ],
    dtype=float,
)
models = {"least squares": least_squares, "upper envelope": envelope, "in code": in_code}

say(
    "| basis | functions | rcut (Å) | structures | atoms | job wall (s) | peak RSS (MiB) | least squares (MiB) | "
    "upper envelope (MiB) | in code (MiB) |"
)
say("|---|---|---|---|---|---|---|---|---|---|")
predictions = {name: design @ constants for name, constants in models.items()}
for index, row in enumerate(rows):
    mode = "" if row["mode"] == "single-shot" else f" ({row['mode']})"
    say(
        f"| {row['variant']} | {row['functions']} | {row['rcut']:g} | {row['structures']} | {row['atoms']} | "
        f"{row['seconds']:.0f} | {row['peak_bytes'] / 2**20:.0f}{mode} | "
        + " | ".join(f"{predictions[name][index] / 2**20:.0f}" for name in models)
        + " |"
    )
say()
for name, (base, per_atom, per_atom_function) in models.items():
    error = (predictions[name] - peak) / peak
    say(
        f"{name}: base {base / 2**20:.0f} MiB, per atom {per_atom:.0f} B + {per_atom_function:.2f} B per basis "
        f"function; model minus peak {100 * error.min():+.1f} % to {100 * error.max():+.1f} % of the peak"
    )
if args.output:
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([" ".join(sys.argv), *LINES]) + "\n")
