"""Calcfunctions of the work chains, grouped by concept: each data transformation a work chain records."""

__all__ = (
    "baseline",
    "labeling",
    "learning_curve",
    "oracles",
    "parameters",
    "potential",
    "properties",
    "selection",
    "training_set",
)
