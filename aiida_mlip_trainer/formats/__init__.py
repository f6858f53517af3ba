"""pacemaker's and gracemaker's file formats: the input.yaml writers and the readers of their logs and metrics;
CP2K's input and output; Quantum ESPRESSO's labels, settings and parameters (no AiiDA)."""

__all__ = (
    "basis",
    "cp2k",
    "grace_input",
    "grace_output",
    "lammps",
    "pacemaker_dataset",
    "pacemaker_input",
    "pacemaker_output",
    "quantumespresso",
)
