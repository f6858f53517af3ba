"""Parsers of the plugin's CalcJobs."""

from .ase_oracle import AseOracleParser
from .explore import ExplorationParser
from .grace_train import GraceTrainParser
from .pace_activeset import PaceActivesetParser
from .pace_select import PaceSelectParser
from .pace_train import PaceTrainParser
from .properties import PropertyParser

__all__ = (
    "AseOracleParser",
    "ExplorationParser",
    "GraceTrainParser",
    "PaceActivesetParser",
    "PaceSelectParser",
    "PaceTrainParser",
    "PropertyParser",
)
