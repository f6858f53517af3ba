"""Data nodes: training sets, ACE and GRACE-FS potentials, an oracle's labels (:mod:`.labels`) and plain
operations on training sets (:mod:`.operations`)."""

from .grace_potential import GraceFSPotentialData
from .pace_potential import PacePotentialData, PotentialError
from .training_set import TrainingSetData, TrainingSetError

__all__ = (
    "GraceFSPotentialData",
    "PacePotentialData",
    "PotentialError",
    "TrainingSetData",
    "TrainingSetError",
    "labels",
    "operations",
)
