"""Physics without AiiDA: pair baselines, short-range dimer scans, reference data (numpy and ASE only)."""
