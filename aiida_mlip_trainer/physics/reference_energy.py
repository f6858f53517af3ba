"""Per-element reference energies (E0): the constant per atom that pacemaker subtracts before a fit.

DFT total energies are large per atom (CP2K's silicon: about -107 eV/atom with GTH pseudopotentials), and an ACE
potential has no constant term of its own: fitted on them raw, its energies are off by about that much. pacemaker
fits ``energy_corrected = energy - sum_i E0(element_i)`` when ``data: reference_energy`` is given (``auto``: a
least-squares E0 per element plus a shift that puts the most expanded structure of the data at zero), and records
what it used in the potential's metadata. A prediction must add the same ``sum_i E0(element_i)`` back: in Python
with :class:`ReferenceEnergyCalculator`, in LAMMPS with the ``E0`` of the ``.yace`` file (which ``pace_yaml2yace``
leaves at zero; see :func:`aiida_mlip_trainer.formats.basis.set_yace_reference_energies`).

The energies are eV per atom; forces and stress of a constant per atom are zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class ReferenceEnergyError(ValueError):
    """A reference energy that is not a finite number, or a structure with an element that has none."""


def effective_reference_energies(spec: Mapping, elements: list[str]) -> dict[str, float]:
    """The E0 per element (eV/atom) that pacemaker's dictionary ``spec`` subtracts from each atom of ``elements``.

    pacemaker subtracts ``spec.get(element, 0)`` per atom and adds ``spec.get("shift", 0)`` per atom (its ``auto``
    option returns both), so the energy to add back per atom is ``spec.get(element, 0) - spec.get("shift", 0)``.
    """
    values = finite_energies(spec)
    shift = values.get("shift", 0.0)
    return {element: values.get(element, 0.0) - shift for element in elements}


def finite_energies(spec: Mapping) -> dict[str, float]:
    """``spec`` as ``{str: float}``; ReferenceEnergyError unless every value is a finite number (eV)."""
    values = {}
    for key, value in spec.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ReferenceEnergyError(f"reference energy of {key!r} must be a finite number (eV), got {value!r}")
        values[str(key)] = float(value)
    return values


def least_squares_reference_energies(arrays: Mapping[str, np.ndarray]) -> dict[str, float]:
    """E0 per element (eV/atom) by least squares of the total energies on the numbers of atoms of each element (what
    gracemaker's and pacemaker's ``reference_energy: auto`` compute), from labelled training-set arrays."""
    from ase.data import chemical_symbols

    numbers, counts = arrays["numbers"], arrays["natoms"]
    owners = np.repeat(np.arange(len(counts)), counts)
    species = sorted(set(int(z) for z in numbers))
    composition = np.zeros((len(counts), len(species)))
    for column, z in enumerate(species):
        np.add.at(composition[:, column], owners[numbers == z], 1.0)
    solution, *_ = np.linalg.lstsq(composition, np.asarray(arrays["energy"], dtype=float), rcond=None)
    return {chemical_symbols[z]: float(value) for z, value in zip(species, solution, strict=True)}


class ReferenceEnergyCalculator(Calculator):
    """ASE calculator of the constant ``sum_i E0(element_i)``: zero forces and stress. Add it to an ACE calculator
    with :class:`ase.calculators.mixing.SumCalculator` to turn pacemaker's corrected energies into total ones."""

    implemented_properties = ("energy", "free_energy", "energies", "forces", "stress")

    def __init__(self, reference_energies: Mapping[str, float], **kwargs):
        """``reference_energies``: E0 per element (eV/atom), as :func:`effective_reference_energies` gives them."""
        super().__init__(**kwargs)
        if "shift" in reference_energies:
            raise ReferenceEnergyError(
                "give E0 per element (fold pacemaker's shift in with effective_reference_energies)"
            )
        self.reference_energies = finite_energies(reference_energies)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        symbols = self.atoms.get_chemical_symbols()
        missing = sorted(set(symbols) - set(self.reference_energies))
        if missing:
            raise ReferenceEnergyError(f"no reference energy for {missing}: the potential was not fitted on them")
        energies = np.array([self.reference_energies[symbol] for symbol in symbols])
        self.results = {
            "energy": float(energies.sum()),
            "free_energy": float(energies.sum()),
            "energies": energies,
            "forces": np.zeros((len(symbols), 3)),
            "stress": np.zeros(6),
        }
