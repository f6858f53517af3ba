"""Time and peak memory of building a TrainingSetData, and of pace_select, for 10⁴ and 10⁵ structures of ~30 atoms.

Run (after `make demo`):

    AIIDA_PATH=.aiida-demo .venv/bin/verdi -p mlip-trainer-demo run -- benchmarks/scale.py --sizes 10000 100000

Every measurement runs in a fresh child process, so that its peak resident memory (ru_maxrss) is its own:
- ``build``: the structures (32-atom copper cells, rattled and strained, labelled) are made first, then the
  measured step is ``TrainingSetData(structures).store()`` (validation, the .npz in the repository, attributes).
  Labels are EMT's for the first 1000 cells and reused cyclically after that: the cost of the node does not depend
  on the values.
- ``select``: ``pace_select`` itself on the pool file the plugin writes (``PaceSelectCalculation``'s command line),
  under /usr/bin/time, with the memory limit the plugin passes (half of the user's, because the tool's limit is
  soft), selecting 100 structures with the 36-function basis of the "fast" preset.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(sys.argv[0]).resolve()  # under `verdi run`, __file__ is not the path

parser = argparse.ArgumentParser()
parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
parser.add_argument("--memory-limit", default="4GB", help="the user's limit for selection (half is passed)")
parser.add_argument(
    "--chunk-size", type=int, default=0, help="also select through the plugin with select_structures(chunk_size=...)"
)
parser.add_argument("--only-chunked", action="store_true", help="skip the plain measurements")
parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
args = parser.parse_args()


def make_structures(count: int) -> list:
    import numpy as np
    from ase.calculators.singlepoint import SinglePointCalculator

    from aiida_mlip_trainer.reference_data import copper_emt

    labelled = copper_emt(min(count, 1000), seed=99, rattle=0.1)
    rng = np.random.default_rng(0)
    structures = []
    for index in range(count):
        source = labelled[index % len(labelled)]
        atoms = source.copy()
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)  # distinct structures
        atoms.calc = SinglePointCalculator(atoms, **source.calc.results)
        atoms.info["name"] = f"cu_{index}"
        structures.append(atoms)
    return structures


def child_build(count: int) -> dict:
    import resource
    import time

    structures = make_structures(count)
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    from aiida_mlip_trainer.data import TrainingSetData

    start = time.perf_counter()
    node = TrainingSetData(structures).store()
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "structures": node.num_structures,
        "atoms": node.num_atoms,
        "seconds": elapsed,
        "peak_rss_gib": peak / 2**20,
        "rss_before_gib": baseline_rss / 2**20,
        "npz_mib": len(node.base.repository.get_object_content("training_set.npz", mode="rb")) / 2**20,
    }


def child_pool(count: int, workdir: str) -> dict:
    """Write the pool and selector files exactly as PaceSelectCalculation does."""
    from aiida import orm

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.selection import unfitted_potential
    from aiida_mlip_trainer.workflows.protocols import get_preset_parameters

    pool = TrainingSetData(make_structures(count), labelled=False)
    frame = pool.to_dataframe()
    frame["pool_index"] = range(len(frame))
    frame.to_pickle(pathlib.Path(workdir) / "pool.pckl.gzip", compression="gzip", protocol=4)
    selector = unfitted_potential(orm.Dict(get_preset_parameters("fast")), orm.List(["Cu"]))
    selector.write_files(workdir)
    return {"functions": selector.num_functions}


def child_chunked(count: int, chunk_size: int, workdir: str) -> dict:
    """select_structures(pool, 100, chunk_size=...) through the plugin, on a pace_select code wrapped in
    /usr/bin/time: every pace_select job the selection runs appends its wall time and peak memory to one file."""
    import resource
    import shutil
    import time

    from aiida import orm

    from aiida_mlip_trainer.data import TrainingSetData
    from aiida_mlip_trainer.launch import select_structures
    from aiida_mlip_trainer.workflows.protocols import get_preset_parameters

    peaks = pathlib.Path(workdir) / "peaks.txt"
    wrapper = pathlib.Path(workdir) / "pace_select_timed"
    wrapper.write_text(f'#!/bin/bash\nexec /usr/bin/time -f "%e %M" -a -o {peaks} {shutil.which("pace_select")} "$@"\n')
    wrapper.chmod(0o755)
    code = orm.InstalledCode(
        label=f"pace_select_timed_{os.getpid()}",
        computer=orm.load_computer("localhost"),
        filepath_executable=str(wrapper),
        default_calc_job_plugin="mlip_trainer.pace_select",
    ).store()
    pool = TrainingSetData(make_structures(count), labelled=False).store()
    start = time.perf_counter()
    selected = select_structures(
        pool,
        100,
        parameters=get_preset_parameters("fast"),
        chunk_size=chunk_size,
        selection_parameters={"memory_limit": args.memory_limit},
        code=code,
    )
    elapsed = time.perf_counter() - start
    runs = [line.split() for line in peaks.read_text().splitlines() if line.strip()]
    return {
        "seconds": elapsed,
        "jobs": len(runs),
        "peak_gib": max(int(kib) for _, kib in runs) / 2**20,
        "returned": selected.num_structures,
        "python_peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


if args.child == "chunked":
    print(json.dumps(child_chunked(args.count, args.chunk_size, args.workdir)))
    sys.exit(0)
if args.child == "build":
    print(json.dumps(child_build(args.count)))
    sys.exit(0)
if args.child == "pool":
    print(json.dumps(child_pool(args.count, args.workdir)))
    sys.exit(0)


def run_child(kind: str, count: int, workdir: str | None = None) -> dict:
    command = ["verdi", "-p", os.environ.get("AIIDA_PROFILE", "mlip-trainer-demo"), "run", "--", str(HERE)]
    command += ["--child", kind, "--count", str(count)] + (["--workdir", workdir] if workdir else [])
    command += ["--chunk-size", str(args.chunk_size), "--memory-limit", args.memory_limit]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


from aiida_mlip_trainer.selection import parse_memory_limit  # noqa: E402

passed_limit = parse_memory_limit(args.memory_limit) // 2
if args.chunk_size:
    print(f"select_structures(pool, 100, chunk_size={args.chunk_size}), user memory limit {args.memory_limit}:")
    for count in args.sizes:
        with tempfile.TemporaryDirectory() as workdir:
            chunked = run_child("chunked", count, workdir)
        print(
            f"  {count:7d} structures: {chunked['seconds']:.1f} s, {chunked['jobs']} pace_select jobs, peak of the "
            f"largest {chunked['peak_gib']:.2f} GiB, {chunked['returned']} structures returned; the Python process "
            f"(pool made, stored and cut into chunks) {chunked['python_peak_gib']:.2f} GiB",
            flush=True,
        )
    if args.only_chunked:
        sys.exit(0)
print(
    f"{'N':>7s} {'atoms':>9s} {'build s':>8s} {'peak GiB (atoms list)':>22s} {'npz MiB':>8s} "
    f"{'select s':>9s} {'select peak GiB':>16s} {'limit passed GiB':>17s}"
)
for count in args.sizes:
    build = run_child("build", count)
    with tempfile.TemporaryDirectory() as workdir:
        run_child("pool", count, workdir)
        command = [
            "/usr/bin/time",
            "-f",
            "%e %M",
            "pace_select",
            "-p",
            "potential.yaml",
            "-m",
            "100",
            "-mem",
            str(passed_limit),
            "-o",
            "selected.pkl.gz",
            "pool.pckl.gzip",
        ]
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"pace_select failed:\n{result.stderr[-2000:]}")
        seconds, peak_kib = result.stderr.strip().splitlines()[-1].split()
    peak = f"{build['peak_rss_gib']:.2f} ({build['rss_before_gib']:.2f})"
    print(
        f"{count:7d} {build['atoms']:9d} {build['seconds']:8.1f} {peak:>22s} "
        f"{build['npz_mib']:8.0f} {float(seconds):9.1f} {int(peak_kib) / 2**20:16.2f} {passed_limit / 2**30:17.2f}",
        flush=True,
    )
