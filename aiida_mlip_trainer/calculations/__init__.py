"""CalcJobs wrapping the pacemaker command-line tools."""

from .pace_train import PaceTrainCalculation

__all__ = ("PaceTrainCalculation",)
