"""Work chains: training with automatic restarts, selection, the end-to-end training, labelling with an oracle, the
active-learning loop, training sets imported from finished calculations, and materials properties. Their
calcfunctions are in :mod:`.functions`, their protocols in :mod:`.protocols`."""

from .active_learning import ActiveLearningWorkChain
from .database_import import MixedSettingsError, import_processes
from .labeling import LabelingWorkChain
from .pace_train_base import PaceTrainBaseWorkChain
from .properties import PropertyWorkChain
from .selection import SelectionWorkChain
from .training import TrainingWorkChain

__all__ = (
    "ActiveLearningWorkChain",
    "LabelingWorkChain",
    "MixedSettingsError",
    "PaceTrainBaseWorkChain",
    "PropertyWorkChain",
    "SelectionWorkChain",
    "TrainingWorkChain",
    "import_processes",
)
