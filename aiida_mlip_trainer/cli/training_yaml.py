"""The YAML file of ``aiida-mlip-trainer train``: its keys and the builder it gives (through
``TrainingWorkChain.get_builder_from_protocol``)."""

from __future__ import annotations

import pathlib

from aiida import orm

from ..calculations.job_options import check_data_options, check_options_in
from .yaml_keys import TRAINING_KEYS

__all__ = ("TRAINING_INPUT_KEYS", "training_builder_from_yaml")


TRAINING_INPUT_KEYS = tuple(TRAINING_KEYS)
# Where job-script text is set instead of a YAML file: typed in Python on the builder.
PYTHON_OPTIONS_HINT = (
    "in Python on the builder, e.g. builder.training.pace.metadata.options.prepend_text of "
    "TrainingWorkChain.get_builder_from_protocol(...)"
)


def structures_file_path(spec_path: pathlib.Path, value: object) -> pathlib.Path:
    """The file named by ``structures_file`` of the YAML file at ``spec_path``: a relative path inside the YAML
    file's folder (its subfolders included). An absolute path, ``~``, ``..`` or a link out of that folder is
    refused (ValueError): a YAML file may come from someone else, and would read any file of this machine."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{spec_path}: structures_file must be a file name relative to the YAML file")
    relative = pathlib.PurePath(value)
    if relative.is_absolute() or value.startswith("~") or ".." in relative.parts:
        raise ValueError(
            f"{spec_path}: structures_file {value!r} must be a path inside the YAML file's folder (no absolute "
            "path, no ..): copy the file next to the YAML file, or import it first and give training_set"
        )
    folder = spec_path.parent.resolve()
    file_path = (folder / relative).resolve()
    if not file_path.is_relative_to(folder):
        raise ValueError(f"{spec_path}: structures_file {value!r} leads out of the YAML file's folder (a link)")
    return file_path


def training_builder_from_yaml(path: str | pathlib.Path):
    """A ``TrainingWorkChain`` builder from a YAML file, through ``get_builder_from_protocol``.

    Keys: ``codes`` (tool name → code label), ``trainer`` (``pacemaker``, the default, or ``gracemaker``: then
    ``codes`` maps ``gracemaker`` and ``pace_activeset``), ``structures_file`` (a path relative to the YAML file) or
    ``training_set`` (pk or UUID), optional ``protocol`` (fast, moderate, precise), ``overrides`` (merged into the
    protocol), ``options`` (every job's scheduler options), ``test_set`` and ``previous_potential`` (pk or UUID),
    ``physics_baseline``, ``short_range_check``. Unknown keys are refused.

    A YAML file is data: ``structures_file`` must lie inside the YAML file's folder, and ``options`` (and any
    ``options`` inside ``overrides``) hold only scheduler requests (resources, max_wallclock_seconds, queue_name,
    account, qos, max_memory_kb, withmpi, thread counts); job-script text (prepend_text, append_text, ...) is set in
    Python on the builder."""
    import yaml

    from ..workflows.training import TRAINERS, TrainingWorkChain

    path = pathlib.Path(path)
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict):
        raise ValueError(f"{path}: expected a mapping of TrainingWorkChain inputs")
    unknown = sorted(set(spec) - set(TRAINING_INPUT_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(TRAINING_INPUT_KEYS)}")
    codes = spec.pop("codes", None) or {}
    trainer = spec.pop("trainer", "pacemaker")
    if trainer not in TRAINERS:
        raise ValueError(f"{path}: trainer must be one of {', '.join(TRAINERS)}, got {trainer!r}")
    if not isinstance(codes, dict) or trainer not in codes:
        raise ValueError(
            f"{path}: `codes` must map at least `{trainer}` (and pace_activeset"
            + (", pace_yaml2yace, pace_select" if trainer == "pacemaker" else "")
            + ") to labels"
        )
    message = check_data_options(spec.get("options"), f"{path}: options", PYTHON_OPTIONS_HINT) or check_options_in(
        spec.get("overrides"), f"{path}: overrides", PYTHON_OPTIONS_HINT
    )
    if message is not None:
        raise ValueError(message)
    if "structures_file" in spec:
        file_path = structures_file_path(path, spec.pop("structures_file"))
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
        trainer=trainer,
        **extra,
    )
