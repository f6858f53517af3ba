"""CalcJobs wrapping the pacemaker command-line tools."""

from .pace_activeset import PaceActivesetCalculation
from .pace_select import PaceSelectCalculation
from .pace_train import PaceTrainCalculation

__all__ = ("PaceActivesetCalculation", "PaceSelectCalculation", "PaceTrainCalculation")
