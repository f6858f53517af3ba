"""Data nodes: training sets and ACE potentials."""

from .pace_potential import PacePotentialData
from .training_set import TrainingSetData, TrainingSetError

__all__ = ("PacePotentialData", "TrainingSetData", "TrainingSetError")
