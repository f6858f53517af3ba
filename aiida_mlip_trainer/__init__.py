"""AiiDA plugin that trains Atomic Cluster Expansion (ACE) potentials with pacemaker (python-ace).

Its public modules are listed in ``__all__``; the subpackages (``data``, ``calculations``, ``parsers``,
``workflows``, ``formats``, ``physics``, ``tools``, ``cli``) declare their own. Nothing is imported here, so the
AiiDA-free layers (``physics``, ``formats``, ``tools``) import without AiiDA.
"""

__version__ = "0.1.0"

__all__ = ("export", "launch", "monitoring", "oracles")
