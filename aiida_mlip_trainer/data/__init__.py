"""Data nodes: training sets and ACE potentials, an oracle's labels (:mod:`.labels`) and plain
operations on training sets (:mod:`.operations`)."""

from .pace_potential import PacePotentialData, PotentialError
from .training_set import TrainingSetData, TrainingSetError

__all__ = ("PacePotentialData", "PotentialError", "TrainingSetData", "TrainingSetError", "labels", "operations")
