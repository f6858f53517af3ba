"""The calcfunction that records a fit's pacemaker settings: a named preset with the user's overrides."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

__all__ = ("generate_training_parameters",)


@calcfunction
def generate_training_parameters(preset: orm.Str, overrides: orm.Dict) -> orm.Dict:
    """The pacemaker settings of a named preset (``fast``, ``moderate``, ``precise``) with the user's overrides
    merged in section by section: the exact configuration of a fit as a node of the graph."""
    from ..protocols import get_preset_parameters, merge

    return orm.Dict(merge(get_preset_parameters(preset.value), overrides.get_dict()))
