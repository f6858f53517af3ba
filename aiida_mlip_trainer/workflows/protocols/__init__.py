"""Protocols: named, complete sets of inputs for the work chains (aiida-quantumespresso's conventions).

A protocol file has ``default_protocol``, ``default_inputs`` (what every protocol shares) and ``protocols`` (each with
a ``description`` and only its differences). :meth:`ProtocolMixin.get_protocol_inputs` merges the defaults, the
protocol and the user's overrides, key by key; ``get_builder_from_protocol`` of a work chain turns the result into a
builder the user can read and edit before submitting.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ("ProtocolMixin", "merge")

PROTOCOLS_DIRECTORY = pathlib.Path(__file__).parent
TRAINING_PROTOCOLS = PROTOCOLS_DIRECTORY / "training.yaml"


def _copy(value: Any) -> Any:
    """A copy of nested dictionaries and lists; other values (numbers, strings, AiiDA nodes) as they are: a deep
    copy of a stored node would clone it."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in recursively: dictionaries are merged key by key, anything else (a None
    included) replaces. Nodes in either are kept as they are, not copied."""
    result = _copy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = _copy(value)
    return result


@functools.cache
def _load(path: pathlib.Path) -> dict:
    return yaml.safe_load(path.read_text())


class ProtocolMixin:
    """Class methods to read a work chain's protocol file; the class sets ``_protocol_file``."""

    _protocol_file: pathlib.Path

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return cls._protocol_file

    @classmethod
    def get_default_protocol(cls) -> str:
        return _load(cls._protocol_file)["default_protocol"]

    @classmethod
    def get_available_protocols(cls) -> dict[str, dict[str, str]]:
        """``{name: {"description": ...}}`` for every protocol of the file."""
        protocols = _load(cls._protocol_file)["protocols"]
        return {name: {"description": protocol["description"]} for name, protocol in protocols.items()}

    @classmethod
    def get_protocol_inputs(
        cls, protocol: str | None = None, overrides: Mapping[str, Any] | pathlib.Path | None = None
    ) -> dict[str, Any]:
        """The inputs of ``protocol`` (the default one when None): ``default_inputs`` merged with the protocol's
        differences and then with ``overrides`` (a dictionary, or a YAML file of one). A fresh copy."""
        data = _load(cls._protocol_file)
        name = protocol or data["default_protocol"]
        if name not in data["protocols"]:
            raise ValueError(f"unknown protocol {name!r}; available: {', '.join(data['protocols'])}")
        differences = {key: value for key, value in data["protocols"][name].items() if key != "description"}
        inputs = merge(data["default_inputs"], differences)
        if isinstance(overrides, pathlib.Path):
            overrides = yaml.safe_load(overrides.read_text()) or {}
        return merge(inputs, overrides or {})
