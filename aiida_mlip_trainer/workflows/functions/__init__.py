"""Calcfunctions of the work chains, grouped by concept: each data transformation a work chain records."""

__all__ = ("baseline", "potential", "selection", "training_set")
