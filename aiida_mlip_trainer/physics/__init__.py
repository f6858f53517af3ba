"""Physics without AiiDA: pair baselines, short-range dimer scans, reference data and reference energies, the
structure generators of exploration (numpy and ASE only)."""

__all__ = ("baselines", "generators", "reference_data", "reference_energy", "short_range", "training_arrays")
