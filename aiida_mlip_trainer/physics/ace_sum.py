"""An ACE calculator summed with the parts a fit was made on top of (baseline, reference energies), that still
shows ACE's per-atom extrapolation grade: ``calc.results["gamma"]`` on the sum, as on ACE alone."""

from __future__ import annotations

from collections.abc import Sequence

from ase.calculators.mixing import SumCalculator

__all__ = ("AceSumCalculator",)


class AceSumCalculator(SumCalculator):
    """``ace`` plus ``others`` (energies, forces and stress summed, as :class:`ase.calculators.mixing.SumCalculator`),
    with ``ace``'s ``gamma`` (one value per atom, present when ``ace`` has an active set) copied into ``results``:
    ase's sum keeps only the properties every part computes, and γ is ACE's alone."""

    def __init__(self, ace, others: Sequence):
        super().__init__([ace, *others])
        self.ace = ace

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if "gamma" in self.ace.results:
            self.results["gamma"] = self.ace.results["gamma"].copy()
