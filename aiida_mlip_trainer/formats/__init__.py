"""pacemaker's file formats: the input.yaml writer and the readers of its log and metrics; CP2K's input and output;
Quantum ESPRESSO's labels, settings and parameters (no AiiDA)."""

__all__ = ("basis", "cp2k", "lammps", "pacemaker_dataset", "pacemaker_input", "pacemaker_output", "quantumespresso")
