"""`AseOracleCalculation`: label one structure with an ASE calculator chosen by name (the ASE oracle)."""

from __future__ import annotations

import json

from aiida import orm

from ..tools.calculators import DEFAULT_MAX_ATOMS, GROUP, check_calculator
from ..tools.structures import write_structures
from .script import ScriptCalculation
from .untrusted import refuses_altered_nodes

__all__ = ("AseOracleCalculation",)


class AseOracleCalculation(ScriptCalculation):
    """Run ``mlip-trainer-ase-oracle`` (a script installed with this plugin) on one structure: energy, forces and,
    for cells periodic in all three directions, stress from an ASE calculator.

    Pass the ``structure``, the ``calculator`` by name (an entry point of ``mlip_trainer.ase_calculators``: ``emt``,
    ``lj``, or one another package registers) and its JSON keyword ``parameters``, and a ``code`` for the
    ``mlip-trainer-ase-oracle`` executable on the computer that runs the job (any computer where the plugin is
    installed, also behind a scheduler). You get ``labels``, an ``ArrayData`` with ``energy`` (1,) in eV, ``forces``
    (N, 3) in eV/Å and, when computed, ``stress`` (6,) in eV/Å³ (Voigt, ASE sign). The oracle's adapter is
    ``ase_oracle`` (see :mod:`aiida_mlip_trainer.oracles`). Meant for demos, tests and benchmarks with a cheap,
    exactly known reference.

    Checked before any job, with a message naming the key: the ``parameters`` of the shipped calculators are typed
    and bounded (``emt``: ``fixed_cutoff`` a boolean; ``lj``: ``sigma`` in (0, 10] Å, ``epsilon`` in [0, 100] eV,
    ``rc`` at most 20 Å, also when derived as 3 ``sigma``, ``ro`` below ``rc``, ``smooth`` a boolean; see
    :mod:`aiida_mlip_trainer.tools.calculators`), and the structure has at most ``max_atoms`` atoms (default 2000;
    pass a larger ``max_atoms`` to label a bigger cell on purpose).
    """

    SCRIPT = "mlip-trainer-ase-oracle"
    SETTINGS_FILENAME = "oracle.json"
    STRUCTURE_FILENAME = "structure.json"
    OUTPUT_FILENAME = "labels.json"
    STDOUT_FILENAME = "ase_oracle.out"
    STDERR_FILENAME = "ase_oracle.err"
    EXIT_STATUS_FILENAME = "ase_oracle.exit_status"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The structure to label.")
        spec.input(
            "calculator",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            help=f"The ASE calculator's name in the entry-point group {GROUP} (emt, lj, ...).",
        )
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help="JSON keyword arguments of the calculator (for lj: sigma, epsilon, rc, ...).",
        )
        spec.input(
            "max_atoms",
            valid_type=orm.Int,
            serializer=orm.to_aiida_type,
            required=False,
            help=f"The most atoms the structure may have (default {DEFAULT_MAX_ATOMS}); raise it on purpose.",
        )
        spec.inputs.validator = refuses_altered_nodes(cls.validate_inputs)
        spec.inputs["metadata"]["options"]["parser_name"].default = "mlip_trainer.ase_oracle"

        spec.output("labels", valid_type=orm.ArrayData, help="energy (1,) eV, forces (N, 3) eV/Å, stress (6,) eV/Å³.")

    @staticmethod
    def validate_inputs(inputs, _):
        """Refuse an unknown calculator, parameters it does not take or out of bounds, and a structure with more
        than ``max_atoms`` atoms, before any job runs."""
        message = _check_size(inputs)
        if message:
            return message
        if "calculator" not in inputs:
            return None
        parameters = inputs["parameters"].get_dict() if "parameters" in inputs else {}
        try:
            check_calculator(inputs["calculator"].value, parameters)
        except ValueError as exc:
            return str(exc)
        return None

    def prepare_for_submission(self, folder):
        settings = {
            "calculator": self.inputs.calculator.value,
            "parameters": self.inputs.parameters.get_dict() if "parameters" in self.inputs else {},
        }
        with folder.open(self.SETTINGS_FILENAME, "w", encoding="utf8") as handle:
            json.dump(settings, handle)
        write_structures(folder.get_abs_path(self.STRUCTURE_FILENAME), [self.inputs.structure.get_ase()])

        cmdline = ["--settings", self.SETTINGS_FILENAME, "--structure", self.STRUCTURE_FILENAME]
        return self.script_calcinfo([*cmdline, "--output", self.OUTPUT_FILENAME], [self.OUTPUT_FILENAME])


def _check_size(inputs) -> str | None:
    """A message when the structure has more atoms than ``max_atoms`` (default :data:`DEFAULT_MAX_ATOMS`)."""
    limit = inputs["max_atoms"].value if "max_atoms" in inputs else DEFAULT_MAX_ATOMS
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return f"max_atoms must be a positive integer, got {limit!r}"
    structure = inputs.get("structure")
    if structure is None:
        return None
    # The sites attribute, not StructureData.sites: counting needs no Site object per atom.
    sites = structure.base.attributes.get("sites", [])
    if not isinstance(sites, list):
        return "the structure has no list of sites: the node is corrupt or was altered"
    if len(sites) > limit:
        return (
            f"the structure has {len(sites)} atoms, more than max_atoms ({limit}): label smaller cells, or pass a "
            "larger max_atoms if you mean it"
        )
    return None
