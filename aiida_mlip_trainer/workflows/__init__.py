"""Work chains: training with automatic restarts, the end-to-end training workflow, labelling with an oracle."""

from .labeling import LabelingWorkChain
from .pace_train_base import PaceTrainBaseWorkChain
from .training import TrainingWorkChain

__all__ = ("LabelingWorkChain", "PaceTrainBaseWorkChain", "TrainingWorkChain")
