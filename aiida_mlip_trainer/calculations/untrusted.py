"""Input validators meet nodes from archives: an altered node is refused like any other bad input."""

from __future__ import annotations

import functools

from ..data.pace_potential import PacePotentialData, PotentialError
from ..data.training_set import TrainingSetData, TrainingSetError

__all__ = ("refuses_altered_nodes",)


def refuses_altered_nodes(validator):
    """Wrap a CalcJob's inputs validator so that a node found corrupt or altered while it is checked (element
    symbols, baseline, files against the content hash) gives the validation message naming the node, instead of an
    exception at launch or while the job is prepared: every training set and potential among the inputs is verified
    first, and the process is refused before any job, like any other bad input."""

    @functools.wraps(validator)
    def wrapper(inputs, ctx):
        try:
            for node in inputs.values():
                if isinstance(node, TrainingSetData | PacePotentialData):
                    node.verify()
            return validator(inputs, ctx)
        except (TrainingSetError, PotentialError) as error:
            return str(error)

    return wrapper
