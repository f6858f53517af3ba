"""``mlip-trainer-explore``: molecular dynamics with an ACE potential and its active set, watching the extrapolation
grade γ (the script of :class:`~aiida_mlip_trainer.calculations.explore.ExplorationCalculation`).

Run in the job's folder::

    mlip-trainer-explore --settings settings.json --structures structures.json --output exploration.json \
        --candidates candidates.json

It reads ``potential.yaml`` and ``potential.asi`` (the potential and its active set: pacemaker's ACE, or with
``--model grace-fs`` gracemaker's GRACE-FS exported to its FS YAML), ``baseline.json`` when
the potential was fitted on top of a physical baseline (checked by
``aiida_mlip_trainer.physics.baselines.validate_baseline``),
the starting structures (JSON, :mod:`.structures`) and the settings (JSON, checked by :func:`check_settings`). For
every structure and temperature (and pressure, for cells periodic in all three directions without vacuum, when
pressures are given)
it runs one trajectory: Langevin NVT (ASE), or Berendsen NPT (ASE's ``NPTBerendsen``: weak coupling, enough to let
the cell breathe, not an exact isobaric ensemble). With ``ramp_to`` the thermostat's temperature goes linearly from
the trajectory's temperature to ``ramp_to`` over its steps (a heating or cooling ramp). With ``conditions`` (a list of
named overrides of temperatures, pressures, ramp_to, steps, ...) it runs this plan for each condition in turn, every
record naming its condition: one job explores a whole protocol. pyace evaluates γ for every atom at every step; the
largest γ of the structure is the frame's grade. Every ``sample_interval`` steps the frame is recorded and, when its
grade lies in the collect band ``gamma_collect <= γ < gamma_halt``, kept as a candidate (at most ``max_frames`` per
trajectory, the first ones). A trajectory stops as soon as a step reaches ``gamma_halt``: beyond it the potential
is extrapolating so far that its forces, and so the rest of the trajectory, are not to be trusted. Its last sample
(all samples lie below ``gamma_halt``) is kept as its resume frame: the next round, with a potential that has learned
from this round's picks, starts a trajectory there. A trajectory that halts at its start (the starting structure
itself at or above ``gamma_halt``: a surface or defect the data have never seen) has no frame to keep or resume from;
with ``keep_extrapolating_starts`` (the default) that starting structure is kept as a candidate instead, once per
structure (name ``<start>_traj<i>_step0``, kept step 0): it is a structure given or generated, not one the
potential's MD made, so it is physical, and labelling it is how a region the data have never seen gets its first
labels (without it the region stays a blind spot round after round).

Writes ``exploration.json`` (per trajectory: its settings, the sampled steps with γ, temperature and energy, whether
and where it halted, its ``resume_step``, which samples it kept), ``candidates.json`` (the kept frames, JSON
structures) and ``resume.json`` (the resume frames of the halted trajectories, in trajectory order).
Random numbers: one generator per trajectory, seeded with ``[seed, trajectory index]``, so a run is reproducible
and each trajectory is independent of the others.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence

import numpy as np

from ..physics.generators import has_vacuum
from .structures import bounded_number, finite_number, read_structures, write_structures

__all__ = (
    "CONDITION_KEYS",
    "DEFAULTS",
    "LIMITS",
    "MODELS",
    "check_plan",
    "check_settings",
    "condition_settings",
    "explore",
    "fitted_calculator",
    "main",
)

# The kinds of potential the MD runs with (``--model``): pacemaker's ACE and gracemaker's GRACE-FS (its FS YAML).
MODELS = ("ace", "grace-fs")

# gamma_collect 5 and gamma_halt 25: the thresholds of pacemaker's and LAMMPS's documentation for the extrapolation
# grade (above 5 a structure is worth labelling, above 25 a simulation is no longer reliable). pacemaker's own
# active-exploration defaults (2 and 15) collect more, and more redundant, frames; 5 keeps the labelling budget for
# clearly new environments and 25 lets a trajectory go far enough to find them.
DEFAULTS = {
    "pressures": None,  # GPa; None: NVT only
    "ramp_to": None,  # K; None: each trajectory at its temperature, else ramped linearly to this over its steps
    "conditions": None,  # None: one condition (these settings); else a list of named overrides of them
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
    # A starting structure at or above gamma_halt is kept as a candidate (once): see the module's docstring.
    "keep_extrapolating_starts": True,
    # Starting structures that continue one halted trajectory each (the loop's resume frames): a list of
    # {"structure", "condition", "temperature", "pressure"}; each such structure runs that trajectory only.
    "resume_trajectories": None,
}
# Sizes a job can finish. These are defaults, not laws of nature: a user who means a bigger run raises them
# explicitly in the same parameters (so the larger budget is recorded in the provenance with the run).
LIMITS = {
    # MD steps of the whole job: steps x trajectories (structures x temperatures x pressures). 10^7 steps of a
    # 100-atom cell with ACE is of the order of a day on one core.
    "max_md_steps_total": 10_000_000,
    # Sampled frames of the whole job: (steps // sample_interval) x trajectories. Each is a row of exploration.json
    # and of the `gamma` array; 10^6 keeps both in the tens of MB.
    "max_samples_total": 1_000_000,
    # Atoms per starting structure: an ACE step and a kept frame grow with it; 2000 atoms is well beyond the cells
    # active learning explores (tens to hundreds of atoms).
    "max_atoms": 2000,
}
DEFAULTS.update(LIMITS)
REQUIRED = ("temperatures",)
# What a condition of ``conditions`` may change; the sampling grid (sample_interval), the thresholds, the seed and the
# budgets are the job's.
CONDITION_KEYS = (
    "temperatures",
    "pressures",
    "ramp_to",
    "steps",
    "timestep",
    "max_frames",
    "friction",
    "taut",
    "taup",
    "compressibility",
)
# Fixed physical and sanity bounds (not raisable: beyond them the run is meaningless, not just long).
MAX_TEMPERATURE = 10_000.0  # K; well above any melt, below plasma
MAX_PRESSURE = 1_000.0  # GPa, either sign; above the Earth's core (360 GPa), within diamond-anvil reach
MAX_TIMESTEP = 10.0  # fs
MAX_FRAMES = 10_000  # kept per trajectory
MAX_SEED = 2**63 - 1


def _integer(value, where: str, minimum: int, maximum: int | None = None) -> int:
    # bool is an int in Python, and 1000.0 is not a count: both are refused.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{where} must be an integer <= {maximum}, got {value!r}")
    return int(value)


def _positive(value, where: str) -> float:
    number = finite_number(value, where)
    if number <= 0:
        raise ValueError(f"{where} must be positive, got {value!r}")
    return number


def check_settings(settings: Mapping) -> dict:
    """The exploration settings with defaults filled in; ValueError with a one-line message that names the setting.

    ``temperatures`` (K, required, a non-empty list, each in (0, 10000]), ``pressures`` (GPa, optional list, each
    within ±1000: NPT for periodic cells), ``steps``, ``timestep`` (fs, at most 10), ``sample_interval`` (steps),
    ``gamma_collect`` (default 5), ``gamma_halt`` (default 25, above ``gamma_collect``), ``seed``, ``max_frames``
    (kept per trajectory, at most 10000), ``friction`` (1/fs), ``taut``, ``taup`` (fs) and ``compressibility``
    (1/GPa); ``resume_trajectories`` (the starting structures that each continue one halted trajectory, its
    condition, temperature and pressure, and run only that one); and the budgets of :data:`LIMITS`
    (``max_md_steps_total``, ``max_samples_total``, ``max_atoms``), which a user raises by giving them. Counts must be
    integers (no bool, no float). The budgets are checked here with the fewest trajectories the settings allow (one
    structure, no pressure); :func:`check_plan` checks them exactly.
    """
    if not isinstance(settings, Mapping):
        raise ValueError(f"the exploration parameters must be a dict, got {type(settings).__name__}")
    if settings.get("conditions") is not None:
        return _check_conditions(settings)
    unknown = sorted(set(settings) - set(DEFAULTS) - set(REQUIRED), key=str)
    if unknown:
        raise ValueError(f"unknown exploration parameters {unknown}: known are {sorted({*DEFAULTS, *REQUIRED})}")
    result = {**DEFAULTS, **settings}
    for key in LIMITS:
        result[key] = _integer(result[key], key, 1)
    temperatures = result.get("temperatures")
    if not isinstance(temperatures, list | tuple) or not temperatures:
        raise ValueError("temperatures must be a non-empty list of temperatures in K")
    result["temperatures"] = [bounded_number(t, "each temperature (K)", 0.0, MAX_TEMPERATURE) for t in temperatures]
    if result["ramp_to"] is not None:
        result["ramp_to"] = bounded_number(result["ramp_to"], "ramp_to (K)", 0.0, MAX_TEMPERATURE)
    if result["pressures"] is not None:
        if not isinstance(result["pressures"], list | tuple) or not result["pressures"]:
            raise ValueError("pressures must be a non-empty list of pressures in GPa, or left out for NVT")
        result["pressures"] = [
            bounded_number(p, "each pressure (GPa)", -MAX_PRESSURE, MAX_PRESSURE, open_below=False)
            for p in result["pressures"]
        ]
    result["steps"] = _integer(result["steps"], "steps", 1)
    result["sample_interval"] = _integer(result["sample_interval"], "sample_interval", 1)
    if result["sample_interval"] > result["steps"]:
        raise ValueError(f"sample_interval ({result['sample_interval']}) is longer than the run ({result['steps']})")
    result["seed"] = _integer(result["seed"], "seed", 0, MAX_SEED)
    result["max_frames"] = _integer(result["max_frames"], "max_frames", 0, MAX_FRAMES)
    if not isinstance(result["keep_extrapolating_starts"], bool):
        raise ValueError(
            f"keep_extrapolating_starts must be true or false, got {result['keep_extrapolating_starts']!r}"
        )
    for key in ("timestep", "gamma_collect", "gamma_halt", "friction", "taut", "taup", "compressibility"):
        result[key] = _positive(result[key], key)
    if result["timestep"] > MAX_TIMESTEP:
        raise ValueError(f"timestep is in fs; {result['timestep']} fs is too long for atomistic MD (at most 10)")
    if result["gamma_halt"] <= result["gamma_collect"]:
        raise ValueError(
            f"gamma_halt ({result['gamma_halt']}) must be above gamma_collect ({result['gamma_collect']}): "
            "frames are collected in [gamma_collect, gamma_halt)"
        )
    _check_budget([(result, len(result["temperatures"]))], "one structure")
    result["resume_trajectories"] = _check_resume_trajectories(result["resume_trajectories"], [""])
    return result


def _check_resume_trajectories(value, conditions: Sequence[str]) -> list[dict] | None:
    """``resume_trajectories`` checked: None, or a list of ``{"structure", "condition", "temperature",
    "pressure"}`` (structure indices unique, each condition one of ``conditions``, ``""`` without conditions)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ValueError("resume_trajectories must be a list of {structure, condition, temperature, pressure}")
    checked, seen = [], set()
    for index, entry in enumerate(value):
        where = f"resume_trajectories[{index}]"
        if not isinstance(entry, Mapping) or set(entry) != {"structure", "condition", "temperature", "pressure"}:
            raise ValueError(f"{where} must be a mapping of exactly structure, condition, temperature and pressure")
        structure = _integer(entry["structure"], f"{where}.structure", 0)
        if structure in seen:
            raise ValueError(f"{where}: structure {structure} continues two trajectories")
        seen.add(structure)
        if entry["condition"] not in conditions:
            raise ValueError(f"{where}: condition {entry['condition']!r} is not one of {list(conditions)}")
        pressure = entry["pressure"]
        if pressure is not None:
            pressure = bounded_number(
                pressure, f"{where}.pressure (GPa)", -MAX_PRESSURE, MAX_PRESSURE, open_below=False
            )
        checked.append(
            {
                "structure": structure,
                "condition": entry["condition"],
                "temperature": bounded_number(entry["temperature"], f"{where}.temperature (K)", 0.0, MAX_TEMPERATURE),
                "pressure": pressure,
            }
        )
    return checked


def _resumed(settings: dict) -> dict[int, dict]:
    """The entries of checked settings' ``resume_trajectories`` by the index of the structure each continues."""
    return {entry["structure"]: entry for entry in settings["resume_trajectories"] or ()}


def _check_conditions(settings: Mapping) -> dict:
    """Settings with ``conditions``: each a mapping with a unique ``name`` and any of :data:`CONDITION_KEYS`, checked
    merged over the other settings (``temperatures`` may then be left out of them); the budgets hold for all
    conditions together."""
    conditions = settings["conditions"]
    if not isinstance(conditions, list | tuple) or not conditions:
        raise ValueError("conditions must be a non-empty list of mappings (name, temperatures, ...), or left out")
    # resume_trajectories name conditions: checked once all of them are known, below
    base = {key: value for key, value in settings.items() if key not in ("conditions", "resume_trajectories")}
    checked, names = [], []
    for index, condition in enumerate(conditions):
        if not isinstance(condition, Mapping) or not isinstance(condition.get("name"), str) or not condition["name"]:
            raise ValueError(f"condition {index} must be a mapping with a `name` (a non-empty string)")
        name = condition["name"]
        if name in names:
            raise ValueError(f"condition name {name!r} is given twice")
        names.append(name)
        unknown = sorted(set(condition) - {"name", *CONDITION_KEYS}, key=str)
        if unknown:
            raise ValueError(f"condition {name!r}: unknown key(s) {unknown}; a condition sets {list(CONDITION_KEYS)}")
        merged = {**base, **{key: value for key, value in condition.items() if key != "name"}}
        merged.setdefault("temperatures", None)
        try:
            result = check_settings(merged)
        except ValueError as exc:
            raise ValueError(f"condition {name!r}: {exc}") from None
        checked.append({"name": name, **{key: result[key] for key in CONDITION_KEYS}})
    result = {**check_settings({**base, **{key: checked[0][key] for key in CONDITION_KEYS}}), "conditions": checked}
    for key in CONDITION_KEYS:  # each trajectory's come from its condition
        result[key] = None
    result["resume_trajectories"] = _check_resume_trajectories(settings.get("resume_trajectories"), names)
    return result


def condition_settings(settings: dict) -> list[tuple[str, dict]]:
    """``(name, settings)`` of each condition of checked settings: one (named ``""``) without ``conditions``."""
    if settings["conditions"] is None:
        return [("", settings)]
    return [
        (condition["name"], {**settings, **{key: condition[key] for key in CONDITION_KEYS}})
        for condition in settings["conditions"]
    ]


def _check_budget(runs: Sequence[tuple[dict, int]], what: str) -> None:
    """ValueError when the trajectories of ``runs`` (the settings of a condition, its number of trajectories) exceed
    the job's budgets (the same in every condition's settings)."""
    settings = runs[0][0]
    trajectories = sum(count for _, count in runs)
    steps = sum(run["steps"] * count for run, count in runs)
    lengths = {run["steps"] for run, _ in runs}
    per_trajectory = f"{lengths.pop()} steps" if len(lengths) == 1 else "the steps of each condition"
    if steps > settings["max_md_steps_total"]:
        raise ValueError(
            f"the exploration would run {steps} MD steps ({per_trajectory} x {trajectories} "
            f"trajectories for {what}), more than max_md_steps_total ({settings['max_md_steps_total']}): shorten it, "
            "or raise max_md_steps_total in the parameters if you mean it"
        )
    samples = sum(run["steps"] // run["sample_interval"] * count for run, count in runs)
    if samples > settings["max_samples_total"]:
        raise ValueError(
            f"the exploration would sample {samples} frames (steps // sample_interval x {trajectories} "
            f"trajectories for {what}), more than max_samples_total ({settings['max_samples_total']}): raise "
            "sample_interval, or raise max_samples_total in the parameters if you mean it"
        )


def check_plan(settings: dict, sizes: Sequence[int], periodic: Sequence[bool]) -> None:
    """ValueError when checked ``settings`` (from :func:`check_settings`) do not fit the starting structures: a
    structure with more than ``max_atoms`` atoms (``sizes``: atoms per structure), or more MD steps or samples than
    the budgets for the trajectories these structures give (``periodic``: whether each structure is periodic in all
    three directions, the ones that run at every pressure)."""
    for index, size in enumerate(sizes):
        if size > settings["max_atoms"]:
            raise ValueError(
                f"starting structure {index} has {size} atoms, more than max_atoms ({settings['max_atoms']}): "
                "explore smaller cells, or raise max_atoms in the parameters if you mean it"
            )
    resumed = _resumed(settings)
    beyond = sorted(index for index in resumed if index >= len(sizes))
    if beyond:
        raise ValueError(f"resume_trajectories name structure(s) {beyond}, but there are {len(sizes)} structures")
    runs = []
    for name, condition in condition_settings(settings):
        pressures = len(condition["pressures"]) if condition["pressures"] is not None else 1
        per_temperature = sum(pressures if full else 1 for index, full in enumerate(periodic) if index not in resumed)
        continued = sum(entry["condition"] == name for entry in resumed.values())
        runs.append((condition, per_temperature * len(condition["temperatures"]) + continued))
    _check_budget(runs, f"{len(sizes)} structure(s)")


def fitted_calculator(potential: str, model: str = "ace"):
    """The fitted part alone, by the potential's kind ``model``: ``ace`` (pacemaker's YAML, python-ace's
    ``PyACECalculator``) or ``grace-fs`` (gracemaker's FS YAML, ``PyGRACEFSCalculator``)."""
    if model not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)}, got {model!r}")
    if model == "grace-fs":
        from pyace.asecalc import PyGRACEFSCalculator

        return PyGRACEFSCalculator(potential)
    from pyace import PyACECalculator

    return PyACECalculator(potential)


def ace_calculator(potential: str, active_set: str, baseline: Mapping | None, model: str = "ace"):
    """``(calculator for the MD, the ACE part whose results hold γ)``: ACE alone, or ACE plus the baseline.
    ``model`` is the kind of ``potential``: ``ace`` (pacemaker's YAML, python-ace's ``PyACECalculator``) or
    ``grace-fs`` (gracemaker's FS YAML, ``PyGRACEFSCalculator``; its E0 per element, a constant per atom, is left out:
    it moves no atom). The active set is checked against the potential's basis first
    (:func:`.active_set.check_active_set`): a matrix of zeros would give γ = 0 everywhere (read as converged), a NaN
    would give NaN grades; ValueError naming the element instead."""
    from .active_set import basis_layout, check_active_set

    ace = fitted_calculator(potential, model)
    with open(active_set, "rb") as handle:
        check_active_set(handle.read(), basis_layout(ace.basis))
    # The `active_set=` keyword of PyACECalculator is silently ignored in python-ace 0.4.0rc1: set it explicitly.
    ace.set_active_set(active_set)
    if baseline is None:
        return ace, ace
    from ase.calculators.mixing import SumCalculator

    from ..physics.baselines import baseline_calculator, validate_baseline

    return SumCalculator([ace, baseline_calculator(validate_baseline(baseline))]), ace


def _trajectories(structures, settings: dict) -> list[tuple[dict, dict]]:
    """``(plan, settings)`` of every trajectory: each condition, structure, temperature and (3D-periodic cells)
    pressure."""
    resumed = _resumed(settings)
    plan = []
    for name, condition in condition_settings(settings):
        for index, atoms in enumerate(structures):
            periodic = bool(atoms.pbc.all()) and not has_vacuum(atoms)  # no barostat on a slab's vacuum
            if index in resumed:  # a resume frame: its own trajectory only, not every condition
                entry = resumed[index]
                if entry["condition"] == name:
                    trajectory = {"condition": name, "structure": index, "temperature": entry["temperature"]}
                    trajectory.update(pressure=entry["pressure"] if periodic else None, ramp_to=condition["ramp_to"])
                    plan.append((trajectory, condition))
                continue
            pressures = condition["pressures"] if condition["pressures"] is not None and periodic else [None]
            for temperature in condition["temperatures"]:
                for pressure in pressures:
                    trajectory = {"condition": name, "structure": index, "temperature": temperature}
                    trajectory.update(pressure=pressure, ramp_to=condition["ramp_to"])
                    plan.append((trajectory, condition))
    return plan


def run_trajectory(
    atoms, calculator, ace, plan: dict, index: int, settings: dict, keep_start: bool = False
) -> tuple[dict, list, object]:
    """One trajectory; returns its record, the frames kept (``ase.Atoms``) and its resume frame (the last sample
    before it halted; None when it ran to the end, or halted before its first sample). With ``keep_start``, a start
    at or above ``gamma_halt`` is the one frame kept (step 0)."""
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
        "resume_step": None,
        "max_gamma": 0.0,
    }
    frames, last_sample = [], None
    for _ in dynamics.irun(settings["steps"]):
        step = dynamics.nsteps
        gamma = float(np.max(ace.results["gamma"]))
        record["max_gamma"] = max(record["max_gamma"], gamma)
        if gamma >= settings["gamma_halt"]:
            record.update(halted=True, halt_step=step, halt_gamma=gamma)
            if step == 0 and keep_start and settings["max_frames"] > 0:  # the start itself: given or generated
                frame = atoms.copy()
                frame.calc = None
                frame.set_constraint()
                frame.info = {"name": f"{record['name']}_traj{index}_step0"}
                frames.append(frame)
                record["kept"].append(0)
            break
        if plan["ramp_to"] is not None:  # the thermostat's temperature for the next step
            target = temperature + (plan["ramp_to"] - temperature) * (step + 1) / settings["steps"]
            dynamics.set_temperature(temperature_K=target)
        if step % settings["sample_interval"]:
            continue
        last_sample = atoms.copy()  # the resume frame, should a later step halt
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
    resume_frame = None
    if record["halted"] and last_sample is not None:
        resume_frame = last_sample
        resume_frame.calc = None
        resume_frame.set_constraint()
        resume_frame.info = {"name": f"{record['name']}_traj{index}_resume{record['steps'][-1]}"}
        record["resume_step"] = record["steps"][-1]
    record["steps_run"] = int(dynamics.nsteps)
    return record, frames, resume_frame


def explore(structures, settings: dict, calculator, ace) -> tuple[list[dict], list, list]:
    """Run every trajectory of the plan; returns the records, all kept frames and the resume frames of the halted
    trajectories, in trajectory order."""
    records, frames, resumes = [], [], []
    starts_kept = set()  # the structures whose start is a candidate already: each is kept once, not per condition
    for index, (plan, condition) in enumerate(_trajectories(structures, settings)):
        keep_start = settings["keep_extrapolating_starts"] and plan["structure"] not in starts_kept
        record, kept, resume = run_trajectory(
            structures[plan["structure"]], calculator, ace, plan, index, condition, keep_start
        )
        if 0 in record["kept"]:
            starts_kept.add(plan["structure"])
        records.append(record)
        frames.extend(kept)
        if resume is not None:
            resumes.append(resume)
    return records, frames, resumes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="settings.json")
    parser.add_argument("--structures", default="structures.json")
    parser.add_argument("--potential", default="potential.yaml")
    parser.add_argument("--active-set", default="potential.asi")
    parser.add_argument("--model", default="ace", choices=MODELS, help="the potential's kind: ACE or GRACE-FS")
    parser.add_argument("--baseline", default=None, help="baseline.json, when the potential has a baseline")
    parser.add_argument("--output", default="exploration.json")
    parser.add_argument("--candidates", default="candidates.json")
    parser.add_argument("--resume", default="resume.json")
    args = parser.parse_args(argv)

    with open(args.settings, encoding="utf8") as handle:
        settings = check_settings(json.load(handle))
    baseline = None
    if args.baseline is not None:
        with open(args.baseline, encoding="utf8") as handle:
            baseline = json.load(handle)
    structures = read_structures(args.structures)
    # Checked again here: the settings file is the job's input, whatever wrote it.
    check_plan(settings, [len(atoms) for atoms in structures], [bool(atoms.pbc.all()) for atoms in structures])
    calculator, ace = ace_calculator(args.potential, args.active_set, baseline, args.model)
    records, frames, resumes = explore(structures, settings, calculator, ace)
    if frames:
        write_structures(args.candidates, frames)
    if resumes:
        write_structures(args.resume, resumes)
    halted = sum(record["halted"] for record in records)
    summary = {
        "settings": settings,
        "trajectories": records,
        "num_candidates": len(frames),
        "num_halted": halted,
        "num_resume": len(resumes),
        "max_gamma": max(record["max_gamma"] for record in records),
    }
    with open(args.output, "w", encoding="utf8") as handle:
        json.dump(summary, handle, allow_nan=False)
    print(f"{len(records)} trajectories, {halted} halted, {len(frames)} frames kept", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
