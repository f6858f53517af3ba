"""AiiDA plugin that trains Atomic Cluster Expansion (ACE) potentials with pacemaker (python-ace)."""

__version__ = "0.1.0"
