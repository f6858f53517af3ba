"""Parsers of the plugin's CalcJobs."""

from .ase_oracle import AseOracleParser
from .explore import ExplorationParser
from .pace_activeset import PaceActivesetParser
from .pace_select import PaceSelectParser
from .pace_train import PaceTrainParser

__all__ = ("AseOracleParser", "ExplorationParser", "PaceActivesetParser", "PaceSelectParser", "PaceTrainParser")
