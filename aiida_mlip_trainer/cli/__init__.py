"""`aiida-mlip-trainer`: the command line (:mod:`.commands`) and the YAML file of a training (:mod:`.training_yaml`).

The names of the former ``cli.py`` module are all here, for code written against them.
"""

from .commands import (  # noqa: F401
    CONTEXT,
    clean_errors,
    cli,
    data,
    data_import,
    data_show,
    format_versions,
    one_line,
    potential,
    potential_export,
    potential_show,
    read_structures,
    train,
    train_launch,
    train_status,
    yaml_problem,
)
from .training_yaml import LEGACY_KEYS, TRAINING_INPUT_KEYS, training_builder_from_yaml  # noqa: F401

__all__ = ("cli",)
