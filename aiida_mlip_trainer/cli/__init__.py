"""`aiida-mlip-trainer`: the command line (:mod:`.commands`) and the YAML file of a training (:mod:`.training_yaml`)."""

from .commands import cli

__all__ = ("cli",)
