"""A silicon data set labelled with real DFT (CP2K, PBE), for benchmarking structure selection on quantum labels.

Run (CP2K from Debian: `apt-get install cp2k`; one CP2K process at a time, one thread, lowest priority):

    nohup nice -n 19 .venv/bin/python benchmarks/si_dft_dataset.py > benchmarks/data/si_dft.log 2>&1 &
    .venv/bin/python benchmarks/si_dft_dataset.py --report          # cost per structure against its atom count
    .venv/bin/python benchmarks/si_dft_dataset.py --convergence     # the cutoff and k-point checks behind the settings

It writes `benchmarks/data/si_dft_pool.extxyz.xz` and `si_dft_test.extxyz.xz` (energy in eV, forces in eV/Å, stress
in eV/Å³ with ASE's sign, `info["kind"]`) and `si_dft.json` (CP2K version, the exact settings, and per structure its
kind, atoms, k-point mesh, wall and CPU seconds, or why it has no label). A rerun continues where it stopped (every
finished structure is appended to `si_dft_progress.jsonl`); `--max-cpu-hours` stops starting new jobs once CP2K has
used that much CPU time (pool and test structures are labelled in one shuffled order, so a stop keeps their ratio).

Structures (one generator; the pool and the held-out test set use different seeds): diamond silicon (PBE lattice
constant 5.47 Å) in cells of 2, 4, 8 and 16 atoms, randomly strained (isotropic ±4 %, shear ±3 %) and rattled
(Gaussian, 0.02-0.2 Å per component); near-equilibrium cells (strain ≤ 1 %, rattle ≤ 0.03 Å); compressed and
expanded cells (isotropic -8 % to +10 %); vacancies in 8- and 16-atom cells; (100) and (111) slabs of 6-8 layers,
made fully periodic with the vacuum making the cell 21.5 Å long.

Labels: `aiida_mlip_trainer.cp2k.cp2k_parameters(["Si"])` (the settings `cp2k_oracle` uses: PBE, GTH pseudopotential,
DZVP-MOLOPT-SR-GTH, 150/30 Ry, Fermi-Dirac smearing at 1000 K) with the k-point mesh of `kpoint_mesh` (0.3 /Å), the
input rendered by aiida-cp2k's `Cp2kInput` with the cell, coordinates and k-points added as `Cp2kCalculation` adds
them, and the output read by `aiida_mlip_trainer.cp2k.read_cp2k_output` (the reader the CP2K oracle's adapter uses).
CP2K is called directly (no AiiDA profile) so that a long run holds no database.
"""

from __future__ import annotations

import argparse
import json
import lzma
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from ase import Atoms
from ase.build import bulk, diamond100, diamond111
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_mlip_trainer.cp2k import CP2K_DEFAULTS, Cp2kOutputError, cp2k_parameters, kpoint_mesh, read_cp2k_output

A0 = 5.47  # Å, PBE lattice constant of diamond silicon
DATA = pathlib.Path(__file__).parent / "data"
# Kind: share of the structures. Small cells dominate: CP2K's cost grows faster than the number of atoms.
KINDS = {
    "bulk2": 0.22,
    "bulk4": 0.13,
    "bulk8": 0.22,
    "bulk16": 0.08,
    "vacancy": 0.10,
    "eos": 0.10,
    "slab": 0.08,
    "near_eq": 0.07,
}
COORDS_FILENAME = "aiida.coords.xyz"
SLAB_LENGTH = 21.5  # Å: longer than 2π / 0.3 /Å, so the vacuum direction gets a single k-point


def _strain(atoms: Atoms, rng: np.random.Generator, isotropic: float, shear: float) -> Atoms:
    """Scale the cell by 1 + e (e uniform in ±isotropic) and apply a random symmetric shear (±shear)."""
    epsilon = np.eye(3) * rng.uniform(-isotropic, isotropic)
    off = rng.uniform(-shear, shear, size=3)
    epsilon[0, 1] = epsilon[1, 0] = off[0]
    epsilon[0, 2] = epsilon[2, 0] = off[1]
    epsilon[1, 2] = epsilon[2, 1] = off[2]
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + epsilon), scale_atoms=True)
    return atoms


def _rattle(atoms: Atoms, rng: np.random.Generator, low: float, high: float) -> Atoms:
    atoms.positions += rng.normal(scale=rng.uniform(low, high), size=atoms.positions.shape)
    return atoms


def _bulk(natoms: int, a: float = A0) -> Atoms:
    if natoms == 2:
        return bulk("Si", "diamond", a=a)
    if natoms == 4:
        return bulk("Si", "diamond", a=a, orthorhombic=True)
    cubic = bulk("Si", "diamond", a=a, cubic=True)
    return cubic if natoms == 8 else cubic.repeat((2, 1, 1))


def _slab(rng: np.random.Generator) -> Atoms:
    layers = int(rng.integers(6, 9))
    builder = diamond100 if rng.random() < 0.5 else diamond111
    atoms = builder("Si", size=(1, 1, layers), a=A0, vacuum=1.0, periodic=True)
    thickness = atoms.positions[:, 2].max() - atoms.positions[:, 2].min()
    cell = atoms.cell.array.copy()
    cell[2] = [0.0, 0.0, SLAB_LENGTH]
    atoms.set_cell(cell)
    atoms.center(axis=2)
    atoms.pbc = True
    atoms.info["layers"] = layers
    atoms.info["thickness"] = float(thickness)
    return atoms


def build_structures(count: int, seed: int, prefix: str) -> list[Atoms]:
    """``count`` silicon structures of the kinds in :data:`KINDS`, in their shares, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS)
    counts = {kind: int(round(share * count)) for kind, share in KINDS.items()}
    counts["bulk8"] += count - sum(counts.values())
    structures = []
    for kind in kinds:
        for index in range(counts[kind]):
            if kind.startswith("bulk"):
                atoms = _rattle(_strain(_bulk(int(kind[4:])), rng, 0.04, 0.03), rng, 0.02, 0.2)
            elif kind == "near_eq":
                atoms = _rattle(_strain(_bulk(int(rng.choice([2, 8]))), rng, 0.01, 0.005), rng, 0.005, 0.03)
            elif kind == "eos":
                atoms = _bulk(int(rng.choice([2, 8])), a=A0 * (1 + rng.uniform(-0.08, 0.10)))
                atoms = _rattle(atoms, rng, 0.01, 0.05)
            elif kind == "vacancy":
                atoms = _strain(_bulk(8 if rng.random() < 0.75 else 16), rng, 0.02, 0.01)
                del atoms[int(rng.integers(len(atoms)))]
                atoms = _rattle(atoms, rng, 0.02, 0.15)
            else:
                atoms = _rattle(_slab(rng), rng, 0.02, 0.15)
            atoms.wrap()
            atoms.info.update(name=f"{prefix}_{kind}_{index:03d}", kind=kind)
            structures.append(atoms)
    return structures


def render_input(atoms: Atoms, parameters: dict, mesh: list[int], project: str) -> tuple[str, str]:
    """The CP2K input and coordinate file Cp2kCalculation would write for this structure: cell, coordinates (an
    XYZ file read through TOPOLOGY) and k-points added to the parameters the same way."""
    from aiida_cp2k.utils import Cp2kInput

    inp = Cp2kInput(parameters)
    inp.add_keyword("GLOBAL/PROJECT", project)
    for letter, vector in zip("ABC", atoms.cell.array, strict=True):
        inp.add_keyword(f"FORCE_EVAL/SUBSYS/CELL/{letter}", "{:<15} {:<15} {:<15}".format(*vector))
    inp.add_keyword("FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_NAME", COORDS_FILENAME)
    inp.add_keyword("FORCE_EVAL/SUBSYS/TOPOLOGY/COORD_FILE_FORMAT", "XYZ")
    if mesh != [1, 1, 1]:
        kpoints = {"SCHEME": "MONKHORST-PACK {} {} {}".format(*mesh), "EPS_GEO": "1.0E-8"}
        inp.add_keyword("FORCE_EVAL/DFT/KPOINTS", {**kpoints, "FULL_GRID": "OFF", "SYMMETRY": "OFF"})
    rows = [f"{s}{x:25.16f} {y:25.16f} {z:25.16f}" for s, (x, y, z) in zip(atoms.symbols, atoms.positions, strict=True)]
    return inp.render(), f"{len(atoms)}\nNo info\n" + "\n".join(rows)


def run_cp2k(atoms: Atoms, parameters: dict, mesh: list[int], workdir: pathlib.Path, executable: str) -> dict:
    """Label one structure; returns the labels (or the reason there are none) with wall and CPU seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    text, coordinates = render_input(atoms, parameters, mesh, "aiida")
    (workdir / "aiida.inp").write_text(text)
    (workdir / COORDS_FILENAME).write_text(coordinates)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    with open(workdir / "aiida.out", "w") as stdout:
        process = subprocess.Popen(
            [executable, "-i", "aiida.inp"], cwd=workdir, stdout=stdout, stderr=subprocess.STDOUT, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    record = {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "exit_status": status >> 8}
    text = (workdir / "aiida.out").read_text(errors="replace")
    try:
        labels = read_cp2k_output(text, natoms=len(atoms))
    except Cp2kOutputError as exc:
        record["error"] = str(exc)
        return record
    record.update(
        energy=labels["energy"],
        forces=labels["forces"].tolist(),
        stress=None if labels["stress"] is None else labels["stress"].tolist(),
    )
    return record


def cp2k_version(executable: str) -> str:
    output = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    return next((line.strip() for line in output.splitlines() if "CP2K version" in line), "unknown")


def load_progress(path: pathlib.Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            done[record["name"]] = record
    return done


def write_outputs(structures: dict[str, list[Atoms]], done: dict[str, dict], settings: dict) -> None:
    """The labelled structures as extxyz (xz-compressed) and the JSON of settings and per-structure costs."""
    from ase.io import write

    summary = {"settings": settings, "structures": [], "failures": []}
    for role, atoms_list in structures.items():
        labelled = []
        for atoms in atoms_list:
            record = done.get(atoms.info["name"])
            if record is None:
                continue
            entry = {
                "name": atoms.info["name"],
                "set": role,
                "kind": atoms.info["kind"],
                "natoms": len(atoms),
                "kpoints": record["kpoints"],
                "wall_s": record["wall_s"],
                "cpu_s": record["cpu_s"],
            }
            if "error" in record:
                summary["failures"].append({**entry, "error": record["error"]})
                continue
            summary["structures"].append(entry)
            labelled_atoms = atoms.copy()
            results = {"energy": record["energy"], "forces": np.array(record["forces"])}
            if record["stress"] is not None:
                results["stress"] = np.array(record["stress"])
            labelled_atoms.calc = SinglePointCalculator(labelled_atoms, **results)
            labelled.append(labelled_atoms)
        if labelled:
            with tempfile.TemporaryDirectory() as tmp:
                path = pathlib.Path(tmp) / "set.extxyz"
                write(str(path), labelled, format="extxyz")
                with lzma.open(DATA / f"si_dft_{role}.extxyz.xz", "wb", preset=9) as handle:
                    handle.write(path.read_bytes())
    summary["cost_by_atoms"] = cost_by_atoms(summary["structures"] + summary["failures"])
    (DATA / "si_dft.json").write_text(json.dumps(summary, indent=1) + "\n")


def cost_by_atoms(entries: list[dict]) -> dict[str, dict]:
    """Mean wall and CPU seconds per structure, by its number of atoms."""
    table: dict[str, dict] = {}
    for natoms in sorted({entry["natoms"] for entry in entries}):
        rows = [entry for entry in entries if entry["natoms"] == natoms]
        table[str(natoms)] = {
            "structures": len(rows),
            "mean_wall_s": round(float(np.mean([row["wall_s"] for row in rows])), 2),
            "mean_cpu_s": round(float(np.mean([row["cpu_s"] for row in rows])), 2),
        }
    return table


def report() -> None:
    summary = json.loads((DATA / "si_dft.json").read_text())
    entries = summary["structures"] + summary["failures"]
    version = summary["settings"]["cp2k_version"]
    print(f"{version}; {len(summary['structures'])} labelled, {len(summary['failures'])} failed")
    for role in ("pool", "test"):
        rows = [entry for entry in summary["structures"] if entry["set"] == role]
        print(f"  {role}: {len(rows)} structures, {sum(row['natoms'] for row in rows)} atoms")
    cpu, wall = (sum(entry[key] for entry in entries) / 3600 for key in ("cpu_s", "wall_s"))
    print(f"total CPU {cpu:.2f} h, wall {wall:.2f} h")
    print("atoms  structures  mean CPU s  mean wall s  CPU s per atom")
    for natoms, row in summary["cost_by_atoms"].items():
        cpu, wall = row["mean_cpu_s"], row["mean_wall_s"]
        print(f"{natoms:>5}  {row['structures']:>10}  {cpu:>10.1f}  {wall:>11.1f}  {cpu / int(natoms):>14.2f}")
    for failure in summary["failures"]:
        print(f"  no label: {failure['name']}: {failure['error']}")


def convergence(executable: str) -> None:
    """The checks behind the settings: cutoff 150 against 300 Ry, and the k-point distance 0.3 against 0.2 /Å."""
    rng = np.random.default_rng(7)
    cells = {"2 atoms": _rattle(_bulk(2), rng, 0.05, 0.05), "8 atoms": _rattle(_bulk(8), rng, 0.05, 0.05)}
    for label, atoms in cells.items():
        base = {"cutoff": CP2K_DEFAULTS["cutoff"], "distance": CP2K_DEFAULTS["kpoint_distance"]}
        variants = {
            "settings": base,
            "cutoff 300 Ry": {**base, "cutoff": 300.0},
            "k-points 0.2 /Å": {**base, "distance": 0.2},
        }
        results = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, variant in variants.items():
                mesh = kpoint_mesh(atoms.cell.array, atoms.pbc, variant["distance"])
                parameters = cp2k_parameters(["Si"], cutoff=variant["cutoff"])
                results[name] = (
                    mesh,
                    run_cp2k(atoms, parameters, mesh, pathlib.Path(tmp) / name.replace(" ", "_"), executable),
                )
        reference = results["settings"][1]
        for name, (mesh, record) in results.items():
            de = (record["energy"] - reference["energy"]) / len(atoms) * 1000
            df = np.abs(np.array(record["forces"]) - np.array(reference["forces"])).max() * 1000
            cpu = record["cpu_s"]
            print(f"{label:8} {name:16} k {mesh}  {cpu:6.1f} s CPU  ΔE {de:+7.2f} meV/atom  max ΔF {df:6.2f} meV/Å")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=600)
    parser.add_argument("--test", type=int, default=150)
    parser.add_argument("--max-cpu-hours", type=float, default=2.5)
    parser.add_argument("--cp2k", default=shutil.which("cp2k.psmp") or "cp2k.psmp")
    parser.add_argument(
        "--scratch", default=None, help="folder for CP2K's working directories (default: a temporary one)"
    )
    parser.add_argument("--report", action="store_true", help="print the costs of a finished run and stop")
    parser.add_argument("--convergence", action="store_true", help="run the cutoff and k-point checks and stop")
    args = parser.parse_args()
    if args.report:
        return report()
    if shutil.which(args.cp2k) is None:
        sys.exit(f"no CP2K executable {args.cp2k!r}: apt-get install cp2k (Debian), or pass --cp2k")
    if args.convergence:
        return convergence(args.cp2k)

    DATA.mkdir(exist_ok=True)
    structures = {
        "pool": build_structures(args.pool, seed=2026, prefix="pool"),
        "test": build_structures(args.test, seed=4242, prefix="test"),
    }
    parameters = cp2k_parameters(["Si"])
    settings = {
        "cp2k_version": cp2k_version(args.cp2k),
        "parameters": parameters,
        "kpoint_distance_per_angstrom": CP2K_DEFAULTS["kpoint_distance"],
        "omp_num_threads": 1,
        "host": platform.node(),
        "units": {"energy": "eV", "forces": "eV/Å", "stress": "eV/Å³, Voigt xx yy zz yz xz xy, ASE sign"},
    }
    progress = DATA / "si_dft_progress.jsonl"
    done = load_progress(progress)
    order = [atoms for role in structures.values() for atoms in role]
    np.random.default_rng(1).shuffle(order)
    scratch = pathlib.Path(args.scratch or tempfile.mkdtemp(prefix="si_dft_"))
    cpu_used = sum(record["cpu_s"] for record in done.values())
    for position, atoms in enumerate(order):
        name = atoms.info["name"]
        if name in done:
            continue
        if cpu_used > args.max_cpu_hours * 3600:
            print(f"stopping: {cpu_used / 3600:.2f} CPU hours used (--max-cpu-hours {args.max_cpu_hours})", flush=True)
            break
        mesh = kpoint_mesh(atoms.cell.array, atoms.pbc)
        record = run_cp2k(atoms, parameters, mesh, scratch / name, args.cp2k)
        shutil.rmtree(scratch / name, ignore_errors=True)
        record.update(name=name, kpoints=mesh)
        with progress.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        done[name] = record
        cpu_used += record["cpu_s"]
        status = record.get("error", f"E = {record.get('energy', 0):.4f} eV")
        where = f"[{position + 1}/{len(order)}] {name} ({len(atoms)} atoms, k {mesh})"
        print(f"{where}: {record['cpu_s']:.1f} s CPU, {status}", flush=True)
        if len(done) % 25 == 0:
            write_outputs(structures, done, settings)
    write_outputs(structures, done, settings)
    report()


if __name__ == "__main__":
    main()
