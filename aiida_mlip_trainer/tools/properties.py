"""``mlip-trainer-properties``: materials properties of a potential (or of an ASE calculator chosen by name), and
the geometries they were computed on, for an oracle to recompute them on the same geometries.

Run by :class:`~aiida_mlip_trainer.calculations.properties.PropertyCalculation` in the job's folder::

    mlip-trainer-properties --settings settings.json --structure structure.json \\
        [--potential potential.yaml [--model ace|grace-fs] [--baseline baseline.json]] \\
        --output properties.json --geometries geometries.json

``settings.json`` is ``{"properties": {...}, "calculator": {"name", "parameters"} or null, "reference_energy":
{element: eV} or null}``: the property settings of :mod:`aiida_mlip_trainer.physics.property_geometries`; without
``--potential``, the ASE calculator by its registered name (:mod:`.calculators`); with it, the reference energies
per element the fit subtracted (added back, so that energies are total ones). Writes ``properties.json``
(``{"properties", "plan"}``) and ``geometries.json`` (a structures file of :mod:`.structures`, named as in the
plan). Exits with status 1 and the traceback on stderr when it cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from .calculators import make_calculator
from .structures import read_one_structure, write_structures


def _calculator(args, settings: dict):
    """The potential's calculator (ACE or GRACE-FS, plus its baseline and the reference energies its fit
    subtracted: total energies, as the labels were), or the ASE calculator named in settings."""
    if args.potential is None:
        calculator = settings.get("calculator")
        if not isinstance(calculator, dict) or not isinstance(calculator.get("name"), str):
            raise ValueError("settings.json names no calculator and no --potential was given")
        return make_calculator(calculator["name"], calculator.get("parameters") or {})
    from .explore import fitted_calculator

    ace = fitted_calculator(args.potential, args.model)
    parts = [ace]
    if args.baseline is not None:
        from ..physics.baselines import baseline_calculator, validate_baseline

        with open(args.baseline, encoding="utf8") as handle:
            parts.append(baseline_calculator(validate_baseline(json.load(handle))))
    if settings.get("reference_energy"):
        from ..physics.reference_energy import ReferenceEnergyCalculator

        parts.append(ReferenceEnergyCalculator(settings["reference_energy"]))
    if len(parts) == 1:
        return ace
    from ase.calculators.mixing import SumCalculator

    return SumCalculator(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="settings.json")
    parser.add_argument("--structure", default="structure.json")
    parser.add_argument("--potential", default=None)
    parser.add_argument("--model", default="ace", choices=("ace", "grace-fs"))
    parser.add_argument("--baseline", default=None)
    parser.add_argument("--output", default="properties.json")
    parser.add_argument("--geometries", default="geometries.json")
    args = parser.parse_args(argv)
    try:
        from ..physics.property_geometries import compute_properties

        with open(args.settings, encoding="utf8") as handle:
            settings = json.load(handle)
        crystal = read_one_structure(args.structure)
        calculator = _calculator(args, settings)
        properties, plan, geometries = compute_properties(crystal, calculator, settings.get("properties"))
    except Exception:  # the traceback goes to stderr; its last line is what the parser reports
        traceback.print_exc()
        return 1
    write_structures(args.geometries, geometries)
    with open(args.output, "w", encoding="utf8") as handle:
        json.dump({"properties": properties, "plan": plan}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
