"""Storing 10⁴-10⁵ structures, and selecting from 10⁵ candidates through `SelectionWorkChain` under a memory limit.

Run (after `make demo`):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/scale.py --sizes 10000 100000
    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/scale.py --sizes 100000 \
        --select --protocol fast --memory-limit 4GB

Every measurement runs in a fresh child process (`verdi run` of this script), so that its peak resident memory
(ru_maxrss) is its own; the pool is 32-atom copper cells (`benchmarks/copper_pool.py`).
- ``build``: the structures are made first, then the measured step is ``TrainingSetData(structures).store()``
  (validation, the .npz in the repository, attributes). Its node is the pool of the selections.
- ``--select`` (on the largest size), two routes to 100 structures with the unfitted basis of a protocol of
  `TrainingWorkChain` (`--protocol`), both under the same memory limit (`--memory-limit`):
  - ``work chain``: `SelectionWorkChain` with the inputs `TrainingWorkChain` gives it (the protocol's `selection`
    namespace: strategy "dopt", rounds "extend") and `memory_limit`, from which it derives the chunk size with its
    cost model and which it passes to its jobs;
  - ``one job``: a single `PaceSelectCalculation` on the whole pool with the same `memory_limit` (plain
    `pace_select`, with the limit the plugin passes to it: half).
  The `pace_select` and `pace_activeset` codes are wrapped in `/usr/bin/time`, so every job's peak RSS and wall
  time is recorded; the Python process that runs the work chain (or the job) reports its own peak: it loads the
  stored pool and writes each job's pool file.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(sys.argv[0]).resolve()  # under `verdi run`, __file__ is not the path
sys.path.insert(0, str(HERE.parent))

parser = argparse.ArgumentParser()
parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
parser.add_argument("--select", action="store_true", help="select from the largest pool: work chain and one job")
parser.add_argument("--protocol", default="fast", help="protocol whose unfitted basis selects")
parser.add_argument("--max-structures", type=int, default=100)
parser.add_argument("--memory-limit", default="4GB", help="memory_limit of the selection")
parser.add_argument("--output", default=None, help="also write the printed tables here")
parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
parser.add_argument("--pool", type=int, default=0, help=argparse.SUPPRESS)
parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
args = parser.parse_args()
LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def peak_gib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def child_build(count: int) -> dict:
    import time

    from copper_pool import copper_cells

    structures = copper_cells(count)
    before = peak_gib()
    from aiida_mlip_trainer.data import TrainingSetData

    start = time.perf_counter()
    node = TrainingSetData(structures).store()
    elapsed = time.perf_counter() - start
    return {
        "pk": node.pk,
        "structures": node.num_structures,
        "atoms": node.num_atoms,
        "seconds": elapsed,
        "peak_rss_gib": peak_gib(),
        "rss_before_gib": before,
        "npz_mib": len(node.base.repository.get_object_content("training_set.npz", mode="rb")) / 2**20,
    }


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_code(tool: str, plugin: str, log: pathlib.Path):
    """An InstalledCode of ``tool`` wrapped in /usr/bin/time: each job appends "tool seconds KiB" to ``log``."""
    from aiida import orm

    wrapper = log.parent / f"{tool}_timed"
    wrapper.write_text(
        f'#!/bin/bash\nexec /usr/bin/time -f "{tool} %e %U %S %M" -a -o {log} {shutil.which(tool)} "$@"\n'
    )
    wrapper.chmod(0o755)
    return orm.InstalledCode(
        label=f"{tool}_timed_{os.getpid()}",
        computer=orm.load_computer("localhost"),
        filepath_executable=str(wrapper),
        default_calc_job_plugin=plugin,
    ).store()


def child_select(route: str, pool_pk: int, workdir: str) -> dict:
    """One selection route on the stored pool, in this fresh process."""
    import time

    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_mlip_trainer.calculations import PaceSelectCalculation
    from aiida_mlip_trainer.workflows.selection import SelectionWorkChain
    from aiida_mlip_trainer.workflows.training import TrainingWorkChain

    log = pathlib.Path(workdir) / f"jobs_{route.replace(' ', '_')}.txt"
    codes = {
        "pacemaker": orm.load_code("pacemaker@localhost"),
        "pace_select": timed_code("pace_select", "mlip_trainer.pace_select", log),
        "pace_activeset": timed_code("pace_activeset", "mlip_trainer.pace_activeset", log),
        "pace_yaml2yace": orm.load_code("pace_yaml2yace@localhost"),
    }
    pool = orm.load_node(pool_pk)
    overrides = {"selection": {"max_structures": args.max_structures, "memory_limit": args.memory_limit}}
    builder = TrainingWorkChain.get_builder_from_protocol(codes, pool, protocol=args.protocol, overrides=overrides)
    start = time.perf_counter()
    if route == "work chain":
        # as TrainingWorkChain.run_selection: its selection namespace, the pool, the training parameters as selector
        inputs = builder.selection._inputs(prune=True)
        results, node = run_get_node(
            SelectionWorkChain, pool=pool, parameters=builder.training.pace.parameters, **inputs
        )
        extra = {"chunking": results["summary"].get_dict().get("chunking")} if node.is_finished_ok else {}
    else:
        from aiida_mlip_trainer.workflows.functions.selection import unfitted_potential

        selector = unfitted_potential(builder.training.pace.parameters, orm.List(pool.elements))
        results, node = run_get_node(
            PaceSelectCalculation,
            code=codes["pace_select"],
            pool=pool,
            potential=selector,
            max_structures=orm.Int(args.max_structures),
            parameters=orm.Dict({"memory_limit": args.memory_limit}),
        )
        extra = {}
    elapsed = time.perf_counter() - start
    if not node.is_finished_ok:
        raise SystemExit(f"{route}: {node.process_label}<{node.pk}> [{node.exit_status}] {node.exit_message}")
    jobs = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return {
        "seconds": elapsed,
        "returned": len(results["indices"].get_list()),
        "jobs": [
            {
                "tool": tool,
                "seconds": float(wall),
                "cpu_seconds": float(user) + float(system),
                "peak_gib": int(kib) / 2**20,
            }
            for tool, wall, user, system, kib in jobs
        ],
        "python_peak_gib": peak_gib(),
        "python_cpu_seconds": cpu_seconds(),
        **extra,
    }


if args.child == "build":
    print(json.dumps(child_build(args.count)))
    sys.exit(0)
if args.child in ("work chain", "one job"):
    print(json.dumps(child_select(args.child, args.pool, args.workdir)))
    sys.exit(0)


def run_child(kind: str, **options) -> dict:
    command = ["verdi", "-p", os.environ.get("AIIDA_PROFILE", "mlip-trainer-demo"), "run", "--", str(HERE)]
    command += ["--child", kind, "--protocol", args.protocol, "--memory-limit", args.memory_limit]
    command += ["--max-structures", str(args.max_structures)]
    for key, value in options.items():
        command += [f"--{key}", str(value)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


say(f"{'N':>7s} {'atoms':>9s} {'build s':>8s} {'peak GiB (atoms list)':>22s} {'npz MiB':>8s}")
pools = {}
for count in args.sizes:
    build = run_child("build", count=count)
    pools[count] = build["pk"]
    peak = f"{build['peak_rss_gib']:.2f} ({build['rss_before_gib']:.2f})"
    say(f"{count:7d} {build['atoms']:9d} {build['seconds']:8.1f} {peak:>22s} {build['npz_mib']:8.0f}")

if args.select:
    count = max(args.sizes)
    say()
    say(
        f"Selection of {args.max_structures} of {count} structures, protocol {args.protocol!r}, memory_limit "
        f"{args.memory_limit}:"
    )
    say()
    say(
        "| route | wall (s) | jobs | jobs' CPU (s) | largest job peak (GiB) | Python process: CPU (s), peak (GiB) | "
        "returned | chunks |"
    )
    say("|---|---|---|---|---|---|---|---|")
    details = {}
    for route in ("work chain", "one job"):
        with tempfile.TemporaryDirectory() as workdir:
            result = run_child(route, pool=pools[count], workdir=workdir)
        details[route], jobs = result, result["jobs"]
        chunking = result.get("chunking")
        chunks = f"{chunking['chunks']} of {chunking['chunk_size']}" if chunking else "none"
        say(
            f"| {route} | {result['seconds']:.0f} | {len(result['jobs'])} | "
            f"{sum(job['cpu_seconds'] for job in jobs):.0f} | {max(job['peak_gib'] for job in jobs):.2f} | "
            f"{result['python_cpu_seconds']:.0f}, {result['python_peak_gib']:.2f} | "
            f"{result['returned']} | {chunks} |"
        )
    say()
    say("Every job of the work chain, in order (tool, wall s, CPU s, peak GiB):")
    for job in details["work chain"]["jobs"]:
        say(f"  {job['tool']:15s} {job['seconds']:7.1f} {job['cpu_seconds']:7.1f} {job['peak_gib']:6.2f}")

if args.output:
    path = pathlib.Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([" ".join(sys.argv), *LINES]) + "\n")
