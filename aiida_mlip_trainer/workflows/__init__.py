"""Work chains: training with automatic restarts, and the end-to-end training workflow."""

from .pace_train_base import PaceTrainBaseWorkChain
from .training import TrainingWorkChain

__all__ = ("PaceTrainBaseWorkChain", "TrainingWorkChain")
