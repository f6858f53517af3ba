"""Parsers of the pacemaker CalcJobs."""

from .pace_activeset import PaceActivesetParser
from .pace_select import PaceSelectParser
from .pace_train import PaceTrainParser

__all__ = ("PaceActivesetParser", "PaceSelectParser", "PaceTrainParser")
