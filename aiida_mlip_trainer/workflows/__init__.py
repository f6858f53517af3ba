"""Work chains: training with automatic restarts, selection, the end-to-end training, labelling with an oracle, and
the active-learning loop. Their calcfunctions are in :mod:`.functions`, their protocols in :mod:`.protocols`."""

from .active_learning import ActiveLearningWorkChain
from .labeling import LabelingWorkChain
from .pace_train_base import PaceTrainBaseWorkChain
from .selection import SelectionWorkChain
from .training import TrainingWorkChain

__all__ = (
    "ActiveLearningWorkChain",
    "LabelingWorkChain",
    "PaceTrainBaseWorkChain",
    "SelectionWorkChain",
    "TrainingWorkChain",
)
