"""Named pacemaker settings (presets) for `TrainingWorkChain`, overridable key by key."""

from __future__ import annotations

import copy
import functools
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ("PRESETS_FILE", "get_preset_parameters", "list_presets", "merge")

PRESETS_FILE = pathlib.Path(__file__).parent / "pace_train.yaml"


@functools.cache
def _load() -> dict:
    return yaml.safe_load(PRESETS_FILE.read_text())


def list_presets() -> list[str]:
    return list(_load()["presets"])


def get_preset_parameters(name: str | None = None) -> dict[str, Any]:
    """The pacemaker parameters of a preset (the default one when ``name`` is None); a fresh copy."""
    presets = _load()["presets"]
    name = name or _load()["default_preset"]
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(presets)}")
    return copy.deepcopy(presets[name]["parameters"])


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in recursively: dictionaries are merged key by key, anything else replaces."""
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
