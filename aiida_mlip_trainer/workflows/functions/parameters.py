"""Calcfunctions that derive the settings of a fit from others: what a work chain changed in a fit's parameters is
in the graph, linked to what it was changed from."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

__all__ = ("with_maxiter",)


@calcfunction
def with_maxiter(parameters: orm.Dict, maxiter: orm.Int) -> orm.Dict:
    """pacemaker's ``parameters`` with ``fit.maxiter`` (BFGS iterations) set to ``maxiter``, everything else the
    same: the settings of a fine-tuning fit of ActiveLearningWorkChain (its input ``fine_tune_maxiter``)."""
    if isinstance(maxiter.value, bool) or maxiter.value < 1:
        raise ValueError(f"maxiter must be a positive integer, got {maxiter.value!r}")
    values = parameters.get_dict()
    values["fit"] = {**values.get("fit", {}), "maxiter": maxiter.value}
    return orm.Dict(values)
