"""`PropertyCalculation`: materials properties of a potential or of an ASE calculator, and the geometries they were
computed on."""

from __future__ import annotations

import json

from aiida import orm

from ..data.pace_potential import PacePotentialData
from ..data.training_set import TrainingSetData
from ..physics.property_geometries import MAX_PROPERTY_ATOMS, check_property_settings, check_property_sizes
from ..tools.calculators import check_calculator
from ..tools.structures import write_structures
from .script import ScriptCalculation, write_potential
from .untrusted import refuses_altered_nodes

__all__ = ("PropertyCalculation",)


class PropertyCalculation(ScriptCalculation):
    """Run ``mlip-trainer-properties`` (a script installed with this plugin) on a crystal: the equation of state,
    the cubic elastic constants, the vacancy formation energy, surface energies, phonon frequencies and MD stability
    (see :mod:`aiida_mlip_trainer.physics.property_geometries` for the ``parameters``).

    Pass the ``structure`` (the crystal; its conventional cubic cell for elastic constants and surfaces), the
    ``parameters`` (which properties, and their settings: ``{"eos": {}, "elastic": {"strain": 0.002}, ...}``), a
    ``code`` for the ``mlip-trainer-properties`` executable, and either a ``potential`` (a pacemaker
    :class:`PacePotentialData` or a GRACE-FS potential: ACE plus its baseline and reference energies, total energies
    as the labels were) or an ASE ``calculator`` by its registered name (``emt``, ``lj``, ...) with its JSON
    ``calculator_parameters``. You get ``properties`` (a ``Dict``: per property its values, in eV, Å, GPa, J/m²,
    THz), ``plan`` (which geometry serves which property) and ``geometries`` (an unlabelled
    :class:`TrainingSetData`, named as in the plan): an oracle labels them, and
    :func:`~aiida_mlip_trainer.physics.property_geometries.properties_from_labels` recomputes every property from
    its labels on the same geometries.

    Checked before any job, with a message naming the key: the settings (known keys, typed and bounded), the size of
    every supercell and slab (at most 1000 atoms), the calculator and its parameters, and that the potential knows
    every element of the crystal.
    """

    SCRIPT = "mlip-trainer-properties"
    SETTINGS_FILENAME = "settings.json"
    STRUCTURE_FILENAME = "structure.json"
    POTENTIAL_FILENAME = "potential.yaml"
    BASELINE_FILENAME = "baseline.json"
    OUTPUT_FILENAME = "properties.json"
    GEOMETRIES_FILENAME = "geometries.json"
    STDOUT_FILENAME = "properties.out"
    STDERR_FILENAME = "properties.err"
    EXIT_STATUS_FILENAME = "properties.exit_status"

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The crystal (conventional cubic cell).")
        spec.input(
            "parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            help="The properties and their settings: relax, eos, elastic, vacancy, surface, phonons, md.",
        )
        spec.input("potential", valid_type=PacePotentialData, required=False, help="The potential to evaluate.")
        spec.input(
            "calculator",
            valid_type=orm.Str,
            serializer=orm.to_aiida_type,
            required=False,
            help="Or an ASE calculator by its name in the entry-point group mlip_trainer.ase_calculators.",
        )
        spec.input(
            "calculator_parameters",
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            required=False,
            help="JSON keyword arguments of the calculator.",
        )
        spec.inputs.validator = refuses_altered_nodes(cls.validate_inputs)
        spec.inputs["metadata"]["options"]["parser_name"].default = "mlip_trainer.properties"

        spec.output("properties", valid_type=orm.Dict, help="Per property its values (eV, Å, GPa, J/m², THz).")
        spec.output("plan", valid_type=orm.Dict, help="Which geometry serves which property, and the settings.")
        spec.output(
            "geometries", valid_type=TrainingSetData, help="The geometries of the plan, unlabelled, named as in it."
        )
        spec.default_output_node = "properties"

    @staticmethod
    def validate_inputs(inputs, ctx):
        """Refuse bad settings, oversized geometries, an unknown calculator, a potential missing an element, and
        neither or both of ``potential`` and ``calculator``. Exposed without its ``potential`` port (a work chain
        supplies the potential it made), a ``calculator`` is refused."""
        if ctx is not None and "potential" not in ctx:
            if "calculator" in inputs or "calculator_parameters" in inputs:
                return "the properties are those of the potential this work chain makes: give no calculator"
        elif ("potential" in inputs) == ("calculator" in inputs):
            return "give either a potential or an ASE calculator (by name), not both or neither"
        if "calculator_parameters" in inputs and "calculator" not in inputs:
            return "calculator_parameters are for an ASE calculator: give its name in `calculator`"
        if "calculator" in inputs:
            parameters = inputs["calculator_parameters"].get_dict() if "calculator_parameters" in inputs else {}
            try:
                check_calculator(inputs["calculator"].value, parameters)
            except ValueError as exc:
                return str(exc)
        structure = inputs.get("structure")
        if structure is not None:
            sites = structure.base.attributes.get("sites", [])
            if not isinstance(sites, list) or not 0 < len(sites) <= MAX_PROPERTY_ATOMS:
                return f"the crystal must have 1 to {MAX_PROPERTY_ATOMS} atoms"
            if not all(structure.pbc):
                return "the crystal must be periodic in all three directions"
        if "parameters" in inputs:
            try:
                settings = check_property_settings(inputs["parameters"].get_dict())
                if structure is not None:
                    check_property_sizes(settings, len(structure.sites))
            except ValueError as exc:
                return str(exc)
        potential = inputs.get("potential")
        if potential is not None and structure is not None:
            foreign = sorted(structure.get_symbols_set() - set(potential.elements))
            if foreign:
                return f"the crystal contains {foreign}, which the potential (elements {potential.elements}) lacks"
        return None

    def prepare_for_submission(self, folder):
        settings = {"properties": check_property_settings(self.inputs.parameters.get_dict())}
        cmdline = ["--settings", self.SETTINGS_FILENAME, "--structure", self.STRUCTURE_FILENAME]
        potential = self.inputs.get("potential")
        if potential is None:
            settings["calculator"] = {
                "name": self.inputs.calculator.value,
                "parameters": self.inputs.calculator_parameters.get_dict()
                if "calculator_parameters" in self.inputs
                else {},
            }
        else:
            cmdline += write_potential(folder, potential, self.POTENTIAL_FILENAME, self.BASELINE_FILENAME)
            settings["reference_energy"] = potential.reference_energy or None
        with folder.open(self.SETTINGS_FILENAME, "w", encoding="utf8") as handle:
            json.dump(settings, handle)
        write_structures(folder.get_abs_path(self.STRUCTURE_FILENAME), [self.inputs.structure.get_ase()])
        cmdline += ["--output", self.OUTPUT_FILENAME, "--geometries", self.GEOMETRIES_FILENAME]
        return self.script_calcinfo(cmdline, [self.OUTPUT_FILENAME, self.GEOMETRIES_FILENAME])
