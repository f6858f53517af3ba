"""Input validators meet nodes from archives: an altered node is refused like any other bad input."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from ..data.pace_potential import PacePotentialData, PotentialError
from ..data.training_set import TrainingSetData, TrainingSetError

__all__ = ("refuses_altered_nodes", "walk_inputs")

Validator = Callable[[Any, Any], "str | None"]


def walk_inputs(inputs: Mapping, prefix: str = ""):
    """``(dotted port path, value)`` of every entry of nested ``inputs``, namespaces included (a namespace is given,
    then its entries)."""
    for name, value in inputs.items():
        path = f"{prefix}{name}"
        yield path, value
        if isinstance(value, Mapping):
            yield from walk_inputs(value, f"{path}.")


def _nodes(inputs: Mapping):
    """``(port path, node)`` of every training set and potential among ``inputs``, nested namespaces included."""
    kinds = TrainingSetData | PacePotentialData
    return ((path, value) for path, value in walk_inputs(inputs) if isinstance(value, kinds))


def refuses_altered_nodes(validator: Validator) -> Validator:
    """Wrap the inputs validator of a CalcJob or a work chain (or of one of its namespaces) so that an altered node
    gives a validation message, never an exception at launch nor a process that ends Excepted.

    Every :class:`TrainingSetData` and :class:`PacePotentialData` among the inputs, in nested namespaces too
    (``labeling.oracle.inputs``, ...), is verified first (``verify()``: element symbols, baseline, files against the
    content hash, the active set against the basis, ...); the message names the input port and the node. Then the
    validator runs; an exception it raises all the same (which it must not) becomes a message naming the process's
    inputs, so that a validator never raises."""

    @functools.wraps(validator)
    def wrapper(inputs, ctx):
        if isinstance(inputs, Mapping):
            for path, node in _nodes(inputs):
                try:
                    node.verify()
                except (TrainingSetError, PotentialError) as error:
                    return f"input {path!r}: {error}"
                except Exception as error:  # noqa: BLE001 - whatever a corrupt node raises is refused, not raised
                    return f"input {path!r}: {node.__class__.__name__}<{node.pk}> cannot be read: {_describe(error)}"
        try:
            return validator(inputs, ctx)
        except (TrainingSetError, PotentialError) as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - a validator returns a message, it never raises
            where = getattr(ctx, "name", None) or "inputs"
            return f"the {where!r} inputs could not be checked: {_describe(error)}"

    return wrapper


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__
