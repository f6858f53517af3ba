"""Physics without AiiDA: pair baselines, short-range dimer scans, reference data and reference energies, the DFT
settings of a training set compared, the structure generators of exploration, materials properties of any
calculator, and the geometries an oracle recomputes them on (numpy, ASE, matscipy, phonopy)."""

__all__ = (
    "baselines",
    "dft_settings",
    "generators",
    "properties",
    "property_geometries",
    "reference_data",
    "reference_energy",
    "short_range",
    "training_arrays",
)
