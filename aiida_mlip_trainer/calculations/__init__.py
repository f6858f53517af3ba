"""CalcJobs wrapping the pacemaker command-line tools, exploration with the extrapolation grade, the ASE oracle."""

from .ase_oracle import AseOracleCalculation
from .explore import ExplorationCalculation
from .pace_activeset import PaceActivesetCalculation
from .pace_select import PaceSelectCalculation
from .pace_tool import PaceToolCalculation
from .pace_train import PaceTrainCalculation

__all__ = (
    "AseOracleCalculation",
    "ExplorationCalculation",
    "PaceActivesetCalculation",
    "PaceSelectCalculation",
    "PaceToolCalculation",
    "PaceTrainCalculation",
)
