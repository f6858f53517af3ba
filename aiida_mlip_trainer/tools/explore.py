"""``mlip-trainer-explore``: molecular dynamics with an ACE potential and its active set, watching the extrapolation
grade γ (the script of :class:`~aiida_mlip_trainer.calculations.explore.ExplorationCalculation`).

Run in the job's folder::

    mlip-trainer-explore --settings settings.json --structures structures.json --output exploration.json \
        --candidates candidates.json

It reads ``potential.yaml`` and ``potential.asi`` (pacemaker's potential and its active set), ``baseline.json`` when
the potential was fitted on top of a physical baseline (checked by ``aiida_mlip_trainer.baselines.validate_baseline``),
the starting structures (JSON, :mod:`.structures`) and the settings (JSON, checked by :func:`check_settings`). For
every structure and temperature (and pressure, for cells periodic in all three directions when pressures are given)
it runs one trajectory: Langevin NVT (ASE), or Berendsen NPT (ASE's ``NPTBerendsen``: weak coupling, enough to let
the cell breathe, not an exact isobaric ensemble). pyace evaluates γ for every atom at every step; the largest γ of
the structure is the frame's grade. Every ``sample_interval`` steps the frame is recorded and, when its grade lies
in the collect band ``gamma_collect <= γ < gamma_halt``, kept as a candidate (at most ``max_frames`` per
trajectory, the first ones). A trajectory stops as soon as a step reaches ``gamma_halt``: beyond it the potential
is extrapolating so far that its forces, and so the rest of the trajectory, are not to be trusted.

Writes ``exploration.json`` (per trajectory: its settings, the sampled steps with γ, temperature and energy, whether
and where it halted, which samples it kept) and ``candidates.json`` (the kept frames, JSON structures).
Random numbers: one generator per trajectory, seeded with ``[seed, trajectory index]``, so a run is reproducible
and each trajectory is independent of the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping

import numpy as np

from .structures import finite_number, read_structures, write_structures

__all__ = ("DEFAULTS", "check_settings", "explore", "main")

# gamma_collect 5 and gamma_halt 25: the thresholds of pacemaker's and LAMMPS's documentation for the extrapolation
# grade (above 5 a structure is worth labelling, above 25 a simulation is no longer reliable). pacemaker's own
# active-exploration defaults (2 and 15) collect more, and more redundant, frames; 5 keeps the labelling budget for
# clearly new environments and 25 lets a trajectory go far enough to find them.
DEFAULTS = {
    "pressures": None,  # GPa; None: NVT only
    "steps": 1000,
    "timestep": 1.0,  # fs
    "sample_interval": 10,
    "gamma_collect": 5.0,
    "gamma_halt": 25.0,
    "seed": 42,
    "max_frames": 10,  # kept per trajectory
    "friction": 0.01,  # 1/fs, Langevin
    "taut": 100.0,  # fs, Berendsen temperature coupling (NPT)
    "taup": 1000.0,  # fs, Berendsen pressure coupling (NPT)
    "compressibility": 0.01,  # 1/GPa, Berendsen (NPT); of the order of solids (silicon 0.01, copper 0.007)
}
REQUIRED = ("temperatures",)


def _integer(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(value, where: str) -> float:
    number = finite_number(value, where)
    if number <= 0:
        raise ValueError(f"{where} must be positive, got {value!r}")
    return number


def check_settings(settings: Mapping) -> dict:
    """The exploration settings with defaults filled in; ValueError with a one-line message that names the setting.

    ``temperatures`` (K, required, a non-empty list), ``pressures`` (GPa, optional list: NPT for periodic cells),
    ``steps``, ``timestep`` (fs), ``sample_interval`` (steps), ``gamma_collect`` (default 5), ``gamma_halt``
    (default 25, above ``gamma_collect``), ``seed``, ``max_frames`` (kept per trajectory), ``friction`` (1/fs),
    ``taut``, ``taup`` (fs) and ``compressibility`` (1/GPa).
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"the exploration parameters must be a dict, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(DEFAULTS) - set(REQUIRED))
    if unknown:
        raise ValueError(f"unknown exploration parameters {unknown}: known are {sorted({*DEFAULTS, *REQUIRED})}")
    result = {**DEFAULTS, **settings}
    temperatures = result.get("temperatures")
    if not isinstance(temperatures, list | tuple) or not temperatures:
        raise ValueError("temperatures must be a non-empty list of temperatures in K")
    result["temperatures"] = [_positive(t, "each temperature (K)") for t in temperatures]
    if result["pressures"] is not None:
        if not isinstance(result["pressures"], list | tuple) or not result["pressures"]:
            raise ValueError("pressures must be a non-empty list of pressures in GPa, or left out for NVT")
        result["pressures"] = [finite_number(p, "each pressure (GPa)") for p in result["pressures"]]
    result["steps"] = _integer(result["steps"], "steps", 1)
    result["sample_interval"] = _integer(result["sample_interval"], "sample_interval", 1)
    if result["sample_interval"] > result["steps"]:
        raise ValueError(f"sample_interval ({result['sample_interval']}) is longer than the run ({result['steps']})")
    result["seed"] = _integer(result["seed"], "seed", 0)
    result["max_frames"] = _integer(result["max_frames"], "max_frames", 0)
    for key in ("timestep", "gamma_collect", "gamma_halt", "friction", "taut", "taup", "compressibility"):
        result[key] = _positive(result[key], key)
    if result["timestep"] > 10:
        raise ValueError(f"timestep is in fs; {result['timestep']} fs is too long for atomistic MD")
    if result["gamma_halt"] <= result["gamma_collect"]:
        raise ValueError(
            f"gamma_halt ({result['gamma_halt']}) must be above gamma_collect ({result['gamma_collect']}): "
            "frames are collected in [gamma_collect, gamma_halt)"
        )
    return result


def ace_calculator(potential: str, active_set: str, baseline: Mapping | None):
    """``(calculator for the MD, the ACE part whose results hold γ)``: ACE alone, or ACE plus the baseline. The
    active set is checked against the potential's basis first (:func:`.active_set.check_active_set`): a matrix of
    zeros would give γ = 0 everywhere (read as converged), a NaN would give NaN grades; ValueError naming the
    element instead."""
    from pyace import PyACECalculator

    from .active_set import basis_layout, check_active_set

    ace = PyACECalculator(potential)
    with open(active_set, "rb") as handle:
        check_active_set(handle.read(), basis_layout(ace.basis))
    # The `active_set=` keyword of PyACECalculator is silently ignored in python-ace 0.4.0rc1: set it explicitly.
    ace.set_active_set(active_set)
    if baseline is None:
        return ace, ace
    from ase.calculators.mixing import SumCalculator

    from ..physics.baselines import baseline_calculator, validate_baseline

    return SumCalculator([ace, baseline_calculator(validate_baseline(baseline))]), ace


def _trajectories(structures, settings: dict) -> list[dict]:
    plan = []
    for index, atoms in enumerate(structures):
        periodic = bool(atoms.pbc.all())
        pressures = settings["pressures"] if settings["pressures"] is not None and periodic else [None]
        for temperature in settings["temperatures"]:
            for pressure in pressures:
                plan.append({"structure": index, "temperature": temperature, "pressure": pressure})
    return plan


def run_trajectory(atoms, calculator, ace, plan: dict, index: int, settings: dict) -> tuple[dict, list]:
    """One trajectory; returns its record and the frames kept (``ase.Atoms``)."""
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.nptberendsen import NPTBerendsen
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    rng = np.random.default_rng([settings["seed"], index])
    atoms = atoms.copy()
    atoms.calc = calculator
    temperature = plan["temperature"]
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=rng)
    Stationary(atoms)
    # The centre of mass stays put through a constraint (ASE's `fixcm` option of the integrators is deprecated).
    atoms.set_constraint(FixCom())
    timestep = settings["timestep"] * units.fs
    if plan["pressure"] is None:
        dynamics = Langevin(
            atoms, timestep, temperature_K=temperature, friction=settings["friction"] / units.fs, fixcm=False, rng=rng
        )
        ensemble = "NVT"
    else:
        dynamics = NPTBerendsen(
            atoms,
            timestep,
            temperature_K=temperature,
            pressure_au=plan["pressure"] * units.GPa,
            taut=settings["taut"] * units.fs,
            taup=settings["taup"] * units.fs,
            compressibility_au=settings["compressibility"] / units.GPa,
            fixcm=False,
        )
        ensemble = "NPT"
    record = {
        **plan,
        "name": atoms.info.get("name", ""),
        "ensemble": ensemble,
        "seed": [settings["seed"], index],
        "steps": [],
        "gamma": [],
        "temperature_K": [],
        "energy_per_atom": [],
        "kept": [],
        "halted": False,
        "halt_step": None,
        "halt_gamma": None,
        "max_gamma": 0.0,
    }
    frames = []
    for _ in dynamics.irun(settings["steps"]):
        step = dynamics.nsteps
        gamma = float(np.max(ace.results["gamma"]))
        record["max_gamma"] = max(record["max_gamma"], gamma)
        if gamma >= settings["gamma_halt"]:
            record.update(halted=True, halt_step=step, halt_gamma=gamma)
            break
        if step % settings["sample_interval"]:
            continue
        record["steps"].append(step)
        record["gamma"].append(gamma)
        record["temperature_K"].append(float(atoms.get_temperature()))
        record["energy_per_atom"].append(float(atoms.get_potential_energy()) / len(atoms))
        if gamma >= settings["gamma_collect"] and len(frames) < settings["max_frames"]:
            frame = atoms.copy()
            frame.calc = None
            frame.set_constraint()
            frame.info = {"name": f"{record['name']}_traj{index}_step{step}"}
            frames.append(frame)
            record["kept"].append(step)
    record["steps_run"] = int(dynamics.nsteps)
    return record, frames


def explore(structures, settings: dict, calculator, ace) -> tuple[list[dict], list]:
    """Run every trajectory of the plan; returns the records and all kept frames, in trajectory order."""
    records, frames = [], []
    for index, plan in enumerate(_trajectories(structures, settings)):
        record, kept = run_trajectory(structures[plan["structure"]], calculator, ace, plan, index, settings)
        records.append(record)
        frames.extend(kept)
    return records, frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="settings.json")
    parser.add_argument("--structures", default="structures.json")
    parser.add_argument("--potential", default="potential.yaml")
    parser.add_argument("--active-set", default="potential.asi")
    parser.add_argument("--baseline", default=None, help="baseline.json, when the potential has a baseline")
    parser.add_argument("--output", default="exploration.json")
    parser.add_argument("--candidates", default="candidates.json")
    args = parser.parse_args(argv)

    with open(args.settings, encoding="utf8") as handle:
        settings = check_settings(json.load(handle))
    baseline = None
    if args.baseline is not None:
        with open(args.baseline, encoding="utf8") as handle:
            baseline = json.load(handle)
    structures = read_structures(args.structures)
    calculator, ace = ace_calculator(args.potential, args.active_set, baseline)
    records, frames = explore(structures, settings, calculator, ace)
    if frames:
        write_structures(args.candidates, frames)
    halted = sum(record["halted"] for record in records)
    summary = {
        "settings": settings,
        "trajectories": records,
        "num_candidates": len(frames),
        "num_halted": halted,
        "max_gamma": max(record["max_gamma"] for record in records),
    }
    with open(args.output, "w", encoding="utf8") as handle:
        json.dump(summary, handle, allow_nan=False)
    print(f"{len(records)} trajectories, {halted} halted, {len(frames)} frames kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
