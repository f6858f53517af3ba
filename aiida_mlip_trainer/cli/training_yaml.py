"""The YAML file of ``aiida-mlip-trainer train``: its keys, the keys of the first releases, and the builder it
gives (through ``TrainingWorkChain.get_builder_from_protocol``)."""

from __future__ import annotations

import pathlib

from aiida import orm

__all__ = ("LEGACY_KEYS", "TRAINING_INPUT_KEYS", "training_builder_from_yaml")


TRAINING_INPUT_KEYS = (
    "training_set",
    "structures_file",
    "test_set",
    "physics_baseline",
    "short_range_check",
    "previous_potential",
    "codes",
    "protocol",
    "overrides",
    "options",
)
# Keys of the first releases, still read: each is put where it belongs in `overrides`.
LEGACY_KEYS = {
    "preset": ("protocol",),
    "parameter_overrides": ("overrides", "training", "pace", "parameters"),
    "max_structures": ("overrides", "selection", "max_structures"),
    "max_iterations": ("overrides", "training", "max_iterations"),
    "test_fraction": ("overrides", "test_fraction"),
    "seed": ("overrides", "seed"),
}


def training_builder_from_yaml(path: str | pathlib.Path):
    """A ``TrainingWorkChain`` builder from a YAML file, through ``get_builder_from_protocol``.

    Keys: ``codes`` (tool name → code label), ``structures_file`` (a path relative to the YAML file) or
    ``training_set`` (pk or UUID), optional ``protocol`` (fast, moderate, precise), ``overrides`` (merged into the
    protocol), ``options`` (every job's scheduler options), ``test_set`` and ``previous_potential`` (pk or UUID),
    ``physics_baseline``. The keys of the first releases (``preset``, ``parameter_overrides``, ``max_structures``,
    ``max_iterations``, ``test_fraction``, ``seed``) are still read. Unknown keys are refused."""
    import yaml

    from ..workflows.protocols import merge
    from ..workflows.training import TrainingWorkChain

    path = pathlib.Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of TrainingWorkChain inputs")
    unknown = sorted(set(spec) - set(TRAINING_INPUT_KEYS) - set(LEGACY_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(TRAINING_INPUT_KEYS)}")
    for key, target in LEGACY_KEYS.items():
        if key in spec:
            value = spec.pop(key)
            for name in reversed(target[1:]):
                value = {name: value}
            spec[target[0]] = merge(spec.get(target[0]) or {}, value) if isinstance(value, dict) else value
    codes = spec.pop("codes", None) or {}
    if not isinstance(codes, dict) or "pacemaker" not in codes:
        raise ValueError(
            f"{path}: `codes` must map at least `pacemaker` (and pace_activeset, pace_yaml2yace, pace_select) to labels"
        )
    if "structures_file" in spec:
        file_path = (path.parent / spec.pop("structures_file")).resolve()
        if not file_path.is_file():
            raise ValueError(f"{path}: structures_file {file_path} does not exist")
        structures = orm.SinglefileData(file_path)
    elif "training_set" in spec:
        structures = orm.load_node(spec.pop("training_set"))
    else:
        raise ValueError(f"{path}: give `structures_file` (a path) or `training_set` (a pk or UUID)")
    extra = {key: orm.load_node(spec.pop(key)) for key in ("test_set", "previous_potential") if key in spec}
    if "physics_baseline" in spec:
        extra["physics_baseline"] = orm.Dict(spec.pop("physics_baseline"))
    if "short_range_check" in spec:
        extra["short_range_check"] = orm.Str(spec.pop("short_range_check"))
    return TrainingWorkChain.get_builder_from_protocol(
        codes,
        structures,
        protocol=spec.pop("protocol", None),
        overrides=spec.pop("overrides", None),
        options=spec.pop("options", None),
        **extra,
    )
