"""`ExplorationCalculation`: MD with an ACE or GRACE-FS potential and its active set; frames where it extrapolates
come back."""

from __future__ import annotations

import json

from aiida import orm

from ..data.pace_potential import ASI_FILENAME, PacePotentialData
from ..data.training_set import TrainingSetData
from ..tools.explore import check_plan, check_settings
from ..tools.structures import write_structures
from .script import ScriptCalculation, write_potential
from .untrusted import refuses_altered_nodes

__all__ = ("ExplorationCalculation",)


class ExplorationCalculation(ScriptCalculation):
    """Run ``mlip-trainer-explore`` (a script installed with this plugin): molecular dynamics from each starting
    structure at each temperature (and pressure) with the potential's ACE calculator (plus its baseline), recording
    the extrapolation grade γ of every sampled frame.

    Pass the ``potential`` (a :class:`PacePotentialData`, or a GRACE-FS
    :class:`~aiida_mlip_trainer.data.grace_potential.GraceFSPotentialData`, **with** its active set, as
    ``TrainingWorkChain`` and ``PaceActivesetCalculation`` return it), the starting ``structures`` (a
    :class:`TrainingSetData`; labels are not needed), ``parameters`` (see below) and a ``code`` for the
    ``mlip-trainer-explore`` executable on the computer that runs the job. You get:

    - ``candidates``: the frames whose γ lies in ``[gamma_collect, gamma_halt)``, and each starting structure at or
      above ``gamma_halt`` (once; ``<start>_traj<i>_step0``, with ``keep_extrapolating_starts``), an unlabelled
      :class:`TrainingSetData` pool for selection and labelling (absent when there is none);
    - ``resume``: for each trajectory that halted, its last sample (below ``gamma_halt``), an unlabelled
      :class:`TrainingSetData` named ``<start>_traj<i>_resume<step>`` (absent when none halted after a sample): the
      active-learning loop starts the next round's trajectories there;
    - ``gamma``: an ``ArrayData`` with ``gamma``, ``temperature`` (K) and ``energy_per_atom`` (eV) of shape
      (trajectories, samples), NaN after a trajectory stopped, ``steps`` (samples,), ``max_gamma`` (trajectories,)
      and ``halt_step`` (trajectories,; -1 when it ran to the end);
    - ``summary``: the settings used, and per trajectory its structure, temperature, pressure, ensemble, seed, steps
      run, whether it halted (and where, at which γ), its largest γ and the steps of the frames kept; totals.

    ``parameters``: ``temperatures`` (K, required), ``pressures`` (GPa; NPT for cells periodic in all directions),
    ``ramp_to`` (K: each trajectory's thermostat goes linearly from its temperature to this over its steps),
    ``conditions`` (a list of named overrides, ``{name, temperatures, pressures, ramp_to, steps, ...}``: the plan is
    run for each, each trajectory's record names its ``condition``),
    ``steps`` (1000), ``timestep`` (fs, 1), ``sample_interval`` (steps, 10), ``gamma_collect`` (5), ``gamma_halt``
    (25), ``seed`` (42), ``max_frames`` (kept per trajectory, 10), ``keep_extrapolating_starts`` (true),
    ``friction`` (1/fs, 0.01), ``taut``/``taup`` (fs)
    and ``compressibility`` (1/GPa) for NPT. The thresholds 5 and 25 are those pacemaker's and LAMMPS's
    documentation give for collecting a structure and for stopping a run; see :mod:`aiida_mlip_trainer.tools.explore`.

    Bounds, checked before any job with a message naming the parameter: temperatures in (0, 10000] K, pressures
    within ±1000 GPa, timestep at most 10 fs, ``max_frames`` at most 10000, counts (``steps``,
    ``sample_interval``, ``seed``, ``max_frames``) integers. Budgets, defaults that you raise by giving them in
    ``parameters`` (then recorded with the run): ``max_md_steps_total`` (10^7: ``steps`` x trajectories, one
    trajectory per structure, temperature and, for 3D-periodic cells, pressure), ``max_samples_total`` (10^6:
    ``steps // sample_interval`` x trajectories) and ``max_atoms`` (2000 atoms per starting structure).
    """

    SCRIPT = "mlip-trainer-explore"
    SETTINGS_FILENAME = "settings.json"
    STRUCTURES_FILENAME = "structures.json"
    POTENTIAL_FILENAME = "potential.yaml"
    ACTIVE_SET_FILENAME = "potential.asi"
    BASELINE_FILENAME = "baseline.json"
    OUTPUT_FILENAME = "exploration.json"
    CANDIDATES_FILENAME = "candidates.json"
    RESUME_FILENAME = "resume.json"
    STDOUT_FILENAME = "explore.out"
    STDERR_FILENAME = "explore.err"
    EXIT_STATUS_FILENAME = "explore.exit_status"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("potential", valid_type=PacePotentialData, help="The potential, with its active set (.asi).")
        spec.input("structures", valid_type=TrainingSetData, help="Starting structures (labels not needed).")
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="temperatures (K), pressures (GPa), ramp_to (K), conditions, steps, timestep (fs), sample_interval, "
            "gamma_collect, gamma_halt, seed, max_frames, keep_extrapolating_starts, friction, taut, taup, "
            "compressibility; budgets "
            "max_md_steps_total, max_samples_total, max_atoms.",
        )
        spec.inputs.validator = refuses_altered_nodes(cls.validate_inputs)
        spec.inputs["metadata"]["options"]["parser_name"].default = "mlip_trainer.explore"

        spec.output(
            "candidates",
            valid_type=TrainingSetData,
            required=False,
            help="Frames in the collect band [gamma_collect, gamma_halt), and starts at or above gamma_halt (once): "
            "an unlabelled pool.",
        )
        spec.output(
            "resume",
            valid_type=TrainingSetData,
            required=False,
            help="The last sample below gamma_halt of each halted trajectory: where the next round starts again.",
        )
        spec.output("gamma", valid_type=orm.ArrayData, help="γ, temperature and energy along each trajectory.")
        spec.output("summary", valid_type=orm.Dict, help="Per trajectory: settings, halted or not, largest γ, kept.")
        spec.default_output_node = "summary"

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse bad input before any job runs: parameters, a potential without active set, foreign elements."""
        if "parameters" in inputs:
            try:
                settings = check_settings(inputs["parameters"].get_dict())
            except ValueError as exc:
                return str(exc)
            if "structures" in inputs:
                message = _check_sizes(settings, inputs["structures"])
                if message:
                    return message
        potential = inputs.get("potential")
        if potential is not None and not potential.has_active_set:
            return (
                "the potential has no active set (.asi), so no extrapolation grade: compute it with "
                "PaceActivesetCalculation (the potential TrainingWorkChain returns has one)"
            )
        structures = inputs.get("structures")
        if potential is not None and structures is not None:
            foreign = sorted(set(structures.elements) - set(potential.elements))
            if foreign:
                return f"the structures contain {foreign}, which the potential (elements {potential.elements}) lacks"
        return None

    def prepare_for_submission(self, folder):
        settings = check_settings(self.inputs.parameters.get_dict())
        with folder.open(self.SETTINGS_FILENAME, "w", encoding="utf8") as handle:
            json.dump(settings, handle)
        structures = self.inputs.structures.to_atoms()
        write_structures(folder.get_abs_path(self.STRUCTURES_FILENAME), structures)
        potential = self.inputs.potential
        with folder.open(self.ACTIVE_SET_FILENAME, "wb") as handle:
            handle.write(potential.base.repository.get_object_content(ASI_FILENAME, mode="rb"))

        cmdline = [
            "--settings",
            self.SETTINGS_FILENAME,
            "--structures",
            self.STRUCTURES_FILENAME,
            "--active-set",
            self.ACTIVE_SET_FILENAME,
            "--output",
            self.OUTPUT_FILENAME,
            "--candidates",
            self.CANDIDATES_FILENAME,
            "--resume",
            self.RESUME_FILENAME,
        ]
        cmdline += write_potential(folder, potential, self.POTENTIAL_FILENAME, self.BASELINE_FILENAME)

        return self.script_calcinfo(cmdline, [self.OUTPUT_FILENAME, self.CANDIDATES_FILENAME, self.RESUME_FILENAME])


def _check_sizes(settings: dict, structures: TrainingSetData) -> str | None:
    """The bounds that need the structures (atoms per structure, the trajectories they give), as a message or None.

    Read from the hash-checked arrays, not from attributes that an archive could have altered."""
    try:
        arrays = structures.get_arrays()
        check_plan(settings, arrays["natoms"].tolist(), arrays["pbc"].all(axis=1).tolist())
    except ValueError as exc:  # TrainingSetError too: an altered node is refused, not a crash
        return str(exc)
    return None
