"""``mlip-trainer-ase-oracle``: label one structure with an ASE calculator chosen by name (the ASE oracle's script).

Run by :class:`~aiida_mlip_trainer.calculations.ase_oracle.AseOracleCalculation` in the job's folder::

    mlip-trainer-ase-oracle --settings oracle.json --structure structure.json --output labels.json

``oracle.json`` is ``{"calculator": name, "parameters": {...}}`` (a name of the ``mlip_trainer.ase_calculators``
group and its JSON keyword arguments), ``structure.json`` a one-structure file of :mod:`.structures`. Writes
``labels.json``: ``{"energy": eV, "forces": [[eV/Å]], "stress": [6 × eV/Å³] or null, "calculator": name}``; the
stress (Voigt, ASE sign) only for cells periodic in all three directions and calculators that compute it. Exits
with status 1 and the traceback on stderr when it cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from .calculators import make_calculator
from .structures import read_one_structure


def label(settings: dict, atoms) -> dict:
    """Energy, forces and (for periodic cells, when the calculator has it) stress of ``atoms``."""
    from ase.calculators.calculator import PropertyNotImplementedError

    name = settings.get("calculator")
    if not isinstance(name, str):
        raise ValueError("oracle.json names no calculator")
    atoms.calc = make_calculator(name, settings.get("parameters") or {})
    result = {"calculator": name, "energy": float(atoms.get_potential_energy()), "forces": atoms.get_forces().tolist()}
    result["stress"] = None
    if atoms.pbc.all() and "stress" in atoms.calc.implemented_properties:
        try:
            result["stress"] = atoms.get_stress(voigt=True).tolist()
        except PropertyNotImplementedError:
            pass
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", default="oracle.json")
    parser.add_argument("--structure", default="structure.json")
    parser.add_argument("--output", default="labels.json")
    args = parser.parse_args(argv)
    try:
        with open(args.settings, encoding="utf8") as handle:
            settings = json.load(handle)
        result = label(settings, read_one_structure(args.structure))
    except Exception:  # the traceback goes to stderr; its last line is what the parser reports
        traceback.print_exc()
        return 1
    with open(args.output, "w", encoding="utf8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
