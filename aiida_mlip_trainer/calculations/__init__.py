"""CalcJobs wrapping pacemaker and its tools, gracemaker, exploration with the extrapolation grade, the ASE oracle,
materials properties."""

from .ase_oracle import AseOracleCalculation
from .explore import ExplorationCalculation
from .grace_train import GraceTrainCalculation
from .pace_activeset import PaceActivesetCalculation
from .pace_select import PaceSelectCalculation
from .pace_tool import PaceToolCalculation
from .pace_train import PaceTrainCalculation
from .properties import PropertyCalculation

__all__ = (
    "AseOracleCalculation",
    "ExplorationCalculation",
    "GraceTrainCalculation",
    "PaceActivesetCalculation",
    "PaceSelectCalculation",
    "PaceToolCalculation",
    "PaceTrainCalculation",
    "PropertyCalculation",
)
