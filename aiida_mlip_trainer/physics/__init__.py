"""Physics without AiiDA: pair baselines, short-range dimer scans, reference data and reference energies, the DFT
settings of a training set compared, the structure generators of exploration, the cubic elastic constants of any
calculator (numpy, ASE and matscipy)."""

__all__ = (
    "baselines",
    "dft_settings",
    "generators",
    "properties",
    "reference_data",
    "reference_energy",
    "short_range",
    "training_arrays",
)
