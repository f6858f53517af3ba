"""Physics without AiiDA: pair baselines, short-range dimer scans, reference data and reference energies (numpy and
ASE only)."""

__all__ = ("baselines", "reference_data", "reference_energy", "short_range", "training_arrays")
