"""Parsers of the pacemaker CalcJobs."""

from .pace_train import PaceTrainParser

__all__ = ("PaceTrainParser",)
